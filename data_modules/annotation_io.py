"""Reading annotation files strictly: JSON whose errors name ``file:line:column``, and tables whose rows are
checked for their field count against the expected columns, naming ``file:line``.

Every reader goes through these two, so a malformed release file stops the run with one message that says
where to look, instead of a shifted row being read as other fields (a TGIF row without its answer once read
its type as the answer and its description as the id).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from finsta_pl.errors import BadSampleError, DataNotFoundError


def load_json(path: Path, kind: type | None = None) -> Any:
    """The JSON document of ``path``; a syntax error names ``file:line:column`` (and the character offset,
    since DiDeMo's and ActivityNet's files are one line); ``kind`` (``list``, ``dict``) checks the top level."""
    if not path.is_file():
        raise DataNotFoundError(f"{path}: annotation file not found")
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadSampleError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}, character "
                             f"{exc.pos}: {text[max(0, exc.pos - 30):exc.pos + 30]!r})") from None
    if kind is not None and not isinstance(data, kind):
        raise BadSampleError(f"{path}: expected a JSON {kind.__name__} at the top level, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class Table:
    """How a tabular annotation file is laid out: delimiter (``None``: sniffed among ``,``, ``;`` and tab,
    for files whose public copies differ), whether the first line is a header, whether ``"`` quotes fields
    (LSMDC and TGIF do not quote: a ``"`` is text), and the columns the reader needs."""

    columns: tuple[str, ...]
    delimiter: str | None = ","
    header: bool = True
    quoted: bool = True
    #: columns a header may lack (Kinetics' test CSV has no ``label`` / ``is_cc``)
    optional: tuple[str, ...] = ()


def read_table(path: Path, table: Table) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each non-empty row of ``path``.  With a header, rows are keyed by its names,
    which must include ``table.columns`` (less ``optional``); without one, by ``table.columns`` in order.  A
    row whose field count differs from the header's (or the columns') raises :class:`BadSampleError` naming
    ``file:line`` and the expected columns."""
    if not path.is_file():
        raise DataNotFoundError(f"{path}: annotation file not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        delimiter = table.delimiter
        if delimiter is None:
            first = next((line for line in f if line.strip()), ",")
            f.seek(0)
            delimiter = (csv.Sniffer().sniff(first, delimiters=",;\t").delimiter
                         if any(d in first for d in ",;\t") else ",")
        rows = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if table.quoted else csv.QUOTE_NONE)
        names: Sequence[str] = table.columns
        expected = _describe(table.columns, delimiter)
        header_pending = table.header
        for row in rows:
            line = rows.line_num  # the physical line (a quoted field may span lines)
            if not row or not any(cell.strip() for cell in row):
                continue
            if header_pending:
                header_pending = False
                names = [c.strip() for c in row]
                lacking = [c for c in table.columns if c not in names and c not in table.optional]
                if lacking:
                    raise BadSampleError(f"{path}:{line}: the header {row} lacks the column(s) {lacking}; "
                                         f"expected {expected}")
                expected = _describe(tuple(names), delimiter)
                continue
            if len(row) != len(names):
                raise BadSampleError(f"{path}:{line}: {len(row)} fields where {len(names)} are expected "
                                     f"({expected}): {delimiter.join(row)[:160]!r}")
            yield line, dict(zip(names, row))


def _describe(columns: Sequence[str], delimiter: str) -> str:
    name = {"\t": "tab", ",": "comma", ";": "semicolon", " ": "space"}.get(delimiter, repr(delimiter))
    return f"{name}-separated {', '.join(columns)}"
