"""MSRVTT-QA / MSVD-QA annotation reader (DATASETS.md §2) and the answer vocabulary.

Files: ``{train,val,test}_qa.json``, each a JSON list of ``{"answer", "id", "question", "video_id"}`` (MSRVTT-QA
adds ``category_id``).  MSRVTT-QA ids are 0-based and name ``video{id}.mp4``; MSVD-QA ids are 1-based and name
``vid{id}.avi`` (``video_prefix`` says which).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from finsta_pl.data_modules.annotation_io import load_json
from finsta_pl.data_modules.registry import FORMATS
from finsta_pl.errors import BadSampleError

SPLIT_FILES = {"train": "train_qa.json", "val": "val_qa.json", "test": "test_qa.json"}


@dataclass(frozen=True)
class QARecord:
    """One question: its id, the video key (``video123``), the text, the answer and the question type."""

    id: str
    video: str
    question: str
    answer: str
    qtype: str
    #: why the record is unusable (a malformed annotation record: a bad sample, skipped or raised in training)
    problem: str = ""


_QA_FIELDS = ("id", "video_id", "question", "answer", "category_id (MSRVTT-QA)")


@FORMATS.register("msrvtt_qa", kind="qa", title="MSRVTT-QA", files=SPLIT_FILES, record_id="`id` (per question)",
                  fields=_QA_FIELDS, options={"video_prefix": "video"},
                  source="xudejing/video-question-answering (Mendeley Data): train_qa.json, val_qa.json, test_qa.json")
@FORMATS.register("msvd_qa", kind="qa", title="MSVD-QA", files=SPLIT_FILES, record_id="`id` (per question)",
                  fields=_QA_FIELDS[:4], options={"video_prefix": "vid"}, extra_files=("youtube_mapping.txt",),
                  mapping="youtube_mapping.txt",
                  source="xudejing/video-question-answering: {train,val,test}_qa.json and youtube_mapping.txt")
def read_qa_file(path: Path, video_prefix: str = "video", strict: bool = False) -> list[QARecord]:
    """Parse one ``*_qa.json``.  A file that is not a JSON list raises :class:`BadSampleError`; a malformed
    record (missing field, empty question, not an object) raises too when ``strict``, else it is returned as a
    record with its ``problem`` (id ``<file>:<position>``), so the dataset counts it as a bad sample under
    ``on_bad_sample`` like an unreadable video.  A ``video_id`` that already carries the prefix (ClipBERT's
    ``"video6513"``) is kept as it is."""
    data = load_json(path, list)
    records = []
    for k, item in enumerate(data):
        try:
            question = str(item["question"]).strip()
            answer = str(item["answer"]).strip().lower()
            vid = str(item["video_id"]).strip()
            if not question:
                raise ValueError("empty question")
            qtype = str(item.get("category_id", question.split()[0].lower()))
            video = vid if vid.startswith(video_prefix) else f"{video_prefix}{vid}"
            records.append(QARecord(str(item.get("id", k)), video, question, answer, qtype))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problem = f"{path}: record {k} is malformed ({type(exc).__name__}: {exc}): {str(item)[:120]}"
            if strict:
                raise BadSampleError(problem) from None
            records.append(QARecord(f"{path.name}:{k}", f"{path}:{k}", "", "", "", problem))
    return records


class AnswerVocab:
    """The ``max_size`` most frequent training answers (ties by first appearance); others map to ``-1``."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.index = {a: i for i, a in enumerate(self.answers)}

    @classmethod
    def build(cls, train: list[QARecord], max_size: int = 1000) -> "AnswerVocab":
        """From the training records, as the original MSRVTT-QA code does (``value_counts()[:1000]``)."""
        return cls([a for a, _ in Counter(r.answer for r in train if not r.problem).most_common(max_size)])

    def __len__(self) -> int:
        return len(self.answers)

    def label(self, answer: str) -> int:
        """Class index of ``answer``; ``-1`` when out of vocabulary (always counted wrong)."""
        return self.index.get(answer, -1)


def prior_baselines(train: list[QARecord], evaluate: list[QARecord]) -> dict[str, float]:
    """Accuracy on ``evaluate`` of the majority training answer, and of the majority answer per question type
    (the best that the question text alone can do when types spread their answers evenly)."""
    train, evaluate = [r for r in train if not r.problem], [r for r in evaluate if not r.problem]
    if not train or not evaluate:
        return {"majority": 0.0, "question_type_prior": 0.0}
    majority = Counter(r.answer for r in train).most_common(1)[0][0]
    per_type: dict[str, Counter] = {}
    for r in train:
        per_type.setdefault(r.qtype, Counter())[r.answer] += 1
    best = {t: c.most_common(1)[0][0] for t, c in per_type.items()}
    n = len(evaluate)
    return {
        "majority": sum(r.answer == majority for r in evaluate) / n,
        "question_type_prior": sum(r.answer == best.get(r.qtype, majority) for r in evaluate) / n,
    }
