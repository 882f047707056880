"""Open-ended video-QA formats (DATASETS.md §2 and §4): which files a dataset ships, how they are read, and
which file stems its video keys may have on disk.

- ``msrvtt_qa``: ``{train,val,test}_qa.json``, 0-based ``video_id`` -> ``video{id}.mp4``.
- ``msvd_qa``: the same JSON, 1-based ``video_id`` -> ``vid{id}``; ``youtube_mapping.txt`` (``<clip> vid<N>``
  per line) names the MSVD ``YouTubeClips/<clip>.avi`` file of ``vid<N>`` when the clips keep their names.
- ``tgif_frameqa``: ``{Train,Test}_frameqa_question.csv``, tab-separated despite the name, columns
  ``gif_name, question, answer, type, vid_id, key, description``; ``<gif_name>.gif`` videos; the text's
  "rep" -> "FRAMEQA" find-and-replace artefact is undone; ``type`` (object/number/color/location) is the
  question type of the prior baseline.  Train and test only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from finsta_pl.data_modules.msrvtt_qa import SPLIT_FILES, QARecord, read_qa_file
from finsta_pl.errors import BadSampleError, DataNotFoundError

TGIF_TYPES = {"0": "object", "1": "number", "2": "color", "3": "location"}


def undo_tgif_artefact(text: str) -> str:
    """TGIF-QA's text went through a find-and-replace of "rep" by "FRAMEQA" ("fiFRAMEQAlace"): undo it."""
    return text.replace("FRAMEQA", "rep")


def read_tgif_frameqa(path: Path) -> list[QARecord]:
    """One TGIF-QA FrameQA file; a malformed row names the file and line."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    records = []
    for line, row in enumerate(rows, start=2):
        try:
            question = undo_tgif_artefact(str(row["question"]).strip())
            answer = undo_tgif_artefact(str(row["answer"]).strip().lower())
            if not question or not answer:
                raise ValueError("empty question or answer")
            qtype = TGIF_TYPES.get(str(row["type"]).strip(), str(row["type"]).strip())
            records.append(QARecord(str(row["key"]).strip(), str(row["gif_name"]).strip(), question, answer, qtype))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadSampleError(f"{path}:{line}: malformed FrameQA row ({type(exc).__name__}: {exc})") from None
    return records


def read_msvd_mapping(path: Path) -> dict[str, str]:
    """``youtube_mapping.txt``: ``vid<N>`` -> MSVD clip name (``-4wsuPCjDBc_5_15``)."""
    mapping = {}
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        parts = text.split()
        if len(parts) != 2:
            raise BadSampleError(f"{path}:{line}: expected '<clip name> vid<N>', got {text!r}")
        mapping[parts[1]] = parts[0]
    return mapping


@dataclass(frozen=True)
class QAFormat:
    """A QA dataset's files per split, its reader, and an optional mapping file of video names."""

    files: dict[str, str]
    read: Callable[[Path], list[QARecord]]
    mapping: str | None = None

    def video_keys(self, annotation_dir: Path) -> Callable[[str], tuple[str, ...]]:
        """The file stems a record's video key may have: itself, then its mapped name when there is a mapping."""
        if self.mapping is None:
            return lambda key: (key,)
        path = annotation_dir / self.mapping
        if not path.is_file():
            raise DataNotFoundError(f"{path}: the video-name mapping was not found (MSVD-QA ships youtube_mapping.txt)")
        mapping = read_msvd_mapping(path)
        return lambda key: (key, mapping[key]) if key in mapping else (key,)


#: dataset name -> format (``synthetic`` is the embedded world, written as MSRVTT-QA).
QA_FORMATS: dict[str, QAFormat] = {
    "synthetic": QAFormat(SPLIT_FILES, lambda path: read_qa_file(path, "video")),
    "msrvtt_qa": QAFormat(SPLIT_FILES, lambda path: read_qa_file(path, "video")),
    "msvd_qa": QAFormat(SPLIT_FILES, lambda path: read_qa_file(path, "vid"), "youtube_mapping.txt"),
    "tgif_frameqa": QAFormat({"train": "Train_frameqa_question.csv", "test": "Test_frameqa_question.csv"},
                             read_tgif_frameqa),
}
