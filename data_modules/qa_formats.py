"""Open-ended video-QA formats beyond MSRVTT-QA / MSVD-QA (``msrvtt_qa.py``): TGIF-QA FrameQA (DATASETS.md §4).

``tgif_frameqa``: ``{Train,Test}_frameqa_question.csv``, tab-separated despite the name, with the header
``gif_name, question, answer, type, vid_id, key, description``; ``<gif_name>.gif`` videos; the text's "rep" ->
"FRAMEQA" find-and-replace artefact is undone; ``type`` (object/number/color/location) is the question type
of the prior baseline.  The record id is ``vid_id`` (``FRAMEQA1159``, one per question): ``key`` numbers the
GIF, which several questions share.  Train and test only.
"""

from __future__ import annotations

from pathlib import Path

from finsta_pl.data_modules.annotation_io import Table, read_table
from finsta_pl.data_modules.msrvtt_qa import QARecord
from finsta_pl.data_modules.registry import FORMATS
from finsta_pl.errors import BadSampleError

TGIF_TYPES = {"0": "object", "1": "number", "2": "color", "3": "location"}
#: the official header of the FrameQA files (YunseokJANG/tgif-qa ``dataset/``).
FRAMEQA_TABLE = Table(("gif_name", "question", "answer", "type", "vid_id", "key", "description"), delimiter="\t",
                      quoted=False)


def undo_tgif_artefact(text: str) -> str:
    """TGIF-QA's text went through a find-and-replace of "rep" by "FRAMEQA" ("fiFRAMEQAlace"): undo it."""
    return text.replace("FRAMEQA", "rep")


@FORMATS.register("tgif_frameqa", kind="qa", title="TGIF-QA FrameQA",
                  files={"train": "Train_frameqa_question.csv", "test": "Test_frameqa_question.csv"},
                  record_id="`vid_id` (per question; `key` is per GIF)",
                  fields=("gif_name", "question", "answer", "type", "vid_id"),
                  source="YunseokJANG/tgif-qa dataset/ (questions) and the TGIF release (GIFs)")
def read_tgif_frameqa(path: Path) -> list[QARecord]:
    """One TGIF-QA FrameQA file; a malformed row names the file and line."""
    records = []
    for line, row in read_table(path, FRAMEQA_TABLE):
        question = undo_tgif_artefact(row["question"].strip())
        answer = undo_tgif_artefact(row["answer"].strip().lower())
        qid, gif = row["vid_id"].strip(), row["gif_name"].strip()
        if not question or not answer or not qid or not gif:
            raise BadSampleError(f"{path}:{line}: malformed FrameQA row (empty gif_name, question, answer or vid_id)")
        qtype = TGIF_TYPES.get(row["type"].strip(), row["type"].strip())
        records.append(QARecord(qid, gif, question, answer, qtype))
    return records


def read_msvd_mapping(path: Path) -> dict[str, str]:
    """``youtube_mapping.txt``: ``vid<N>`` -> MSVD clip name (``-4wsuPCjDBc_5_15``), two space-separated fields
    per line."""
    mapping = {}
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        parts = text.split()
        if len(parts) != 2:
            raise BadSampleError(f"{path}:{line}: {len(parts)} fields where 2 are expected (space-separated "
                                 f"<clip name> vid<N>): {text!r}")
        mapping[parts[1]] = parts[0]
    return mapping
