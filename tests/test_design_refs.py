"""Docstrings that cite the design notes by section (``docs/DESIGN-NOTES.md §N``) point at a section that exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = [p for d in ("src", "callbacks", "data_modules", "benchmarks") for p in sorted((REPO / d).rglob("*.py"))]


def _sections() -> set[str]:
    text = (REPO / "docs" / "DESIGN-NOTES.md").read_text()
    return set(re.findall(r"^#+ §(\d+)\b", text, re.M))


def test_every_cited_section_exists() -> None:
    sections = _sections()
    cited = [(p.relative_to(REPO), n) for p in CODE for n in re.findall(r"DESIGN-NOTES\.md §(\d+)", p.read_text())]
    assert cited, "no citations found: has the citation form changed?"
    assert not [(p, n) for p, n in cited if n not in sections]


def test_no_docstring_cites_a_file_outside_the_repository() -> None:
    stale = [p.relative_to(REPO) for p in CODE if re.search(r"(?<![-/\w])DESIGN\.md §", p.read_text())]
    assert not stale
