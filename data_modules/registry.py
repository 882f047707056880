"""The one table of annotation formats: name -> reader, the files it reads, its record id and fields.

Readers register themselves where they are defined (``@FORMATS.register("tgif_frameqa", ...)``, as mmaction2's
``@DATASETS.register_module()``); every DataModule looks its ``dataset`` / ``format`` up here, the missing-file
messages and ``data check`` take the file names from here, and docs/DATASETS.md's table of record ids, fields
and split files is generated from here (``python -m finsta_pl.data_modules.registry``, checked by a test).

A reader is either *per file* (``read(path, **options) -> records``, called once per split file present) or
*whole* (``read(folder, files, **options) -> {split: records}``, for formats that keep several splits in one
file or need several files for one split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from finsta_pl.errors import BadSampleError

F = TypeVar("F", bound=Callable[..., Any])


def same_key(key: str) -> tuple[str, ...]:
    """The file stem of a video key is the key itself."""
    return (key,)


@dataclass(frozen=True)
class DatasetFormat:
    """One annotation format.

    ``kind``: the record type its reader returns (``qa``, ``choice``, ``caption``, ``clip``, ``statement``), so
    a DataModule accepts only formats of its kind.  ``files``: split -> the annotation file that holds it
    (defaults; configs may override per split); ``extra_files``: files read for all splits (a label map, a
    name mapping, a training list).  ``record_id`` and ``fields`` say what a record is keyed by and what is
    read (the docs table).  ``video_keys``: the file stems a record's video key may have on disk; ``mapping``:
    a ``<file name> <video key>`` per line file that adds one.  ``max_text_len``: the default token budget,
    long enough for the format's texts (paragraphs need more than captions).
    """

    name: str
    kind: str
    title: str
    files: dict[str, str]
    record_id: str
    fields: tuple[str, ...]
    read: Callable[..., Any]
    per_file: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    extra_files: tuple[str, ...] = ()
    video_keys: Callable[[str], tuple[str, ...]] = same_key
    mapping: str | None = None
    max_text_len: int = 32
    source: str = ""

    def read_splits(self, folder: Path, files: dict[str, str], **options: Any) -> dict[str, list[Any]]:
        """Records per split from ``folder`` (``files``: split -> file name, defaults already merged).  Splits
        whose file is absent are left out (the DataModule decides which splits a stage needs)."""
        opts = {**self.options, **options}
        if not self.per_file:
            return self.read(folder, files, **opts)
        return {split: self.read(folder / name, **opts) for split, name in files.items() if (folder / name).is_file()}


class FormatRegistry:
    """Name -> :class:`DatasetFormat`; :meth:`register` is the decorator readers use."""

    def __init__(self) -> None:
        self._formats: dict[str, DatasetFormat] = {}

    def register(self, name: str, **spec: Any) -> Callable[[F], F]:
        """Register the decorated reader as format ``name`` (the other :class:`DatasetFormat` fields as
        keywords).  Stacked decorators register one reader under several names (with different files or
        options)."""
        def decorate(read: F) -> F:
            if name in self._formats:
                raise ValueError(f"annotation format {name!r} is registered twice")
            self._formats[name] = DatasetFormat(name=name, read=read, **spec)
            return read

        return decorate

    def get(self, name: str, kind: str) -> DatasetFormat:
        """Format ``name`` of ``kind``; an unknown name lists the ones that exist."""
        fmt = self._formats.get(name)
        if fmt is None or fmt.kind != kind:
            raise ValueError(f"unknown {kind} annotation format {name!r}; choose one of {self.names(kind)}")
        return fmt

    def names(self, kind: str | None = None) -> list[str]:
        """The registered names (of one kind)."""
        return sorted(n for n, f in self._formats.items() if kind is None or f.kind == kind)

    def __iter__(self) -> Iterator[DatasetFormat]:
        return iter(sorted(self._formats.values(), key=lambda f: (f.title, f.name)))

    def __contains__(self, name: str) -> bool:
        return name in self._formats


#: every annotation format of every reader (filled as the reader modules are imported).
FORMATS = FormatRegistry()

#: the splits each Lightning stage reads (``fit`` validates too, unless the trainer runs no validation).
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


def check_unique_ids(records: dict[str, list[Any]], where: str) -> None:
    """Record ids must be unique within a split (predictions are keyed by them): the first repeat names the
    split and id (TGIF-QA's ``key`` is per GIF, so it cannot be the id of a question)."""
    for split, split_records in records.items():
        seen: set[str] = set()
        for r in split_records:
            if r.id in seen and not getattr(r, "problem", ""):
                raise BadSampleError(f"{where}: record id {r.id!r} repeats in split {split!r}; ids must name one "
                                     "record each (predictions are keyed by them)")
            seen.add(r.id)


DOCS_BEGIN = "<!-- formats table: generated from data_modules/registry.py; do not edit by hand -->"
DOCS_END = "<!-- end of formats table -->"


def docs_table() -> str:
    """The docs/DATASETS.md table: per format, the record id, the fields read, and the split files fit needs."""
    import finsta_pl.data_modules  # noqa: F401  (imports every reader, so every format is registered)

    rows = ["| format (`dataset` / `format`) | dataset | record id | fields read | fit reads (train; val) | test reads "
            "| default `max_text_len` |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for f in FORMATS:
        def split_file(split: str) -> str:
            return f"`{f.files[split]}`" if split in f.files else "none shipped: set `files: {" + split + ": ...}`"

        extra = "".join(f" + `{x}`" for x in f.extra_files)
        fit = f"{split_file('train')}{extra}; {split_file('val')}"
        test = split_file("test") if "test" in f.files else "-"
        fields = ", ".join(f"`{x}`" for x in f.fields)
        rows.append(f"| `{f.name}` | {f.title} | {f.record_id} | {fields} | {fit} | {test} | {f.max_text_len} |")
    return "\n".join([DOCS_BEGIN, *rows, DOCS_END])


def main() -> None:
    """Rewrite the generated table in docs/DATASETS.md."""
    # Run as ``python -m``, this file is ``__main__``, whose FORMATS the readers never fill: use the package's.
    from finsta_pl.data_modules import registry

    path = Path(__file__).resolve().parents[1] / "docs" / "DATASETS.md"
    text = path.read_text()
    start, end = text.index(DOCS_BEGIN), text.index(DOCS_END) + len(DOCS_END)
    path.write_text(text[:start] + registry.docs_table() + text[end:])
    print(f"rewrote the formats table in {path}")


if __name__ == "__main__":
    main()
