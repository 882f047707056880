"""docs/DATASETS.md states, per format of the registry, the record id, the fields read and the split files fit
needs: its table is the one the registry generates, and every DataModule reads its formats through it."""

from __future__ import annotations

from tests.helpers import REPO
from finsta_pl.data_modules.registry import FORMATS, docs_table


def test_the_docs_table_is_the_registrys() -> None:
    text = (REPO / "docs" / "DATASETS.md").read_text()
    assert docs_table() in text, "docs/DATASETS.md is stale: run python -m finsta_pl.data_modules.registry"


def test_every_format_states_id_fields_and_the_files_fit_needs() -> None:
    table = docs_table()
    for fmt in FORMATS:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{fmt.name}` |"))
        assert fmt.record_id in row and all(f"`{field}`" in row for field in fmt.fields)
        assert f"`{fmt.files['train']}`" in row  # fit always reads train
        assert fmt.max_text_len >= (128 if fmt.kind in {"statement"} or "paragraph" in fmt.record_id else 32)


def test_one_registry_for_every_kind_of_reader() -> None:
    assert {f.kind for f in FORMATS} == {"qa", "choice", "caption", "clip", "statement"}
    assert len(FORMATS.names()) == 18
