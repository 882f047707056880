"""Multiple-choice video QA data: MSRVTT-MC in JSFusion's tab-separated form (DATASETS.md §3), TGIF-QA Action and
Transition (§4), How2QA's original CSV (§8, with its clip windows), or the embedded world's copy of MSRVTT-MC
(whose options differ from the true caption in one relation, binding or adverb).  ``dataset`` names a
``choice`` format of the registry (:data:`~finsta_pl.data_modules.registry.FORMATS`).

A record is one clip and its candidate texts; the clip is decoded and its DSG built once, each candidate gets
its own TSG and HSG.  A question (TGIF-QA, How2QA) is prepended to every candidate.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from finsta_pl.data_info import DataInfo
from finsta_pl.data_modules.annotation_io import Table, read_table
from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec, TextSpec
from finsta_pl.data_modules.qa_formats import undo_tgif_artefact
from finsta_pl.data_modules.registry import FORMATS
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.errors import BadSampleError


@dataclass(frozen=True)
class ChoiceRecord:
    """One clip with its candidate texts and the index of the correct one."""

    id: str
    video: str
    options: tuple[str, ...]
    answer: int
    window: tuple[float, float] | None = None


#: JSFusion's MSRVTT-MC columns (tab-separated, header row).
JSFUSION_MC_TABLE = Table(("key", "vid_key", "a1", "a2", "a3", "a4", "a5", "answer"), delimiter="\t", quoted=False)
#: TGIF-QA Action / Transition columns (tab-separated despite the ``.csv`` name, header row).
TGIF_MC_TABLE = Table(("gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id", "key"),
                      delimiter="\t", quoted=False)


def _read_mc_table(path: Path, table: Table, video_of: Callable[[dict[str, str]], str], id_column: str,
                   fix_text: Callable[[str], str] = str) -> list[ChoiceRecord]:
    """Rows of a tab-separated multiple-choice file with a header (field counts checked): options
    ``a1``..``aN``, ``answer`` (index), an optional ``question`` prepended to every option; ``video_of(row)``
    names the video, ``id_column`` the record."""
    records = []
    for line, row in read_table(path, table):
        try:
            columns = sorted((k for k in row if re.fullmatch(r"a\d+", k or "")), key=lambda k: int(k[1:]))
            options = tuple(fix_text(str(row[k]).strip()) for k in columns)
            if not options or any(not o for o in options):
                raise ValueError("empty candidate")
            answer = int(row["answer"])
            if not 0 <= answer < len(options):
                raise ValueError(f"answer {answer} outside 0..{len(options) - 1}")
            question = fix_text((row.get("question") or "").strip())
            if question:
                options = tuple(f"{question} {o}" for o in options)
            record_id = str(row[id_column]).strip()
            if not record_id:
                raise ValueError(f"empty {id_column}")
            records.append(ChoiceRecord(record_id, video_of(row), options, answer))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadSampleError(f"{path}:{line}: malformed multiple-choice row ({type(exc).__name__}: {exc})") from None
    return records


_JSFUSION_FILES = {"train": "MSR_MC_train.csv", "val": "MSR_MC_val.csv", "test": "MSR_MC_test.csv"}


@FORMATS.register("msrvtt_mc", kind="choice", title="MSRVTT-MC", files=_JSFUSION_FILES,
                  record_id="`key`", fields=JSFUSION_MC_TABLE.columns,
                  source="JSFusion's MSR_MC_test.csv (test only; the train/val names are the embedded world's)")
def read_jsfusion_mc(path: Path) -> list[ChoiceRecord]:
    """JSFusion's MSRVTT-MC: ``key, vid_key, a1..a5, answer`` (``vid_key`` ``msr<N>`` is ``video<N>``)."""
    def video(row: dict[str, str]) -> str:
        vid_key = str(row["vid_key"]).strip()
        return f"video{vid_key[3:]}" if re.fullmatch(r"msr\d+", vid_key) else vid_key

    return _read_mc_table(path, JSFUSION_MC_TABLE, video, "key")


_TGIF_MC = dict(kind="choice", record_id="`vid_id` (per question; `key` is per GIF)",
                fields=("gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id"),
                source="YunseokJANG/tgif-qa dataset/ (questions) and the TGIF release (GIFs)")


# TGIF-QA has train and test only; a run that validates names its val file with ``files: {val: ...}``.
@FORMATS.register("tgif_action", title="TGIF-QA Action", **_TGIF_MC,
                  files={"train": "Train_action_question.csv", "test": "Test_action_question.csv"})
@FORMATS.register("tgif_transition", title="TGIF-QA Transition", **_TGIF_MC,
                  files={"train": "Train_transition_question.csv", "test": "Test_transition_question.csv"})
def read_tgif_mc(path: Path) -> list[ChoiceRecord]:
    """TGIF-QA Action / Transition: ``gif_name, question, a1..a5, answer, vid_id, key`` (tab-separated despite
    the ``.csv`` name); the record id is ``vid_id`` (``key`` numbers the GIF, shared by its questions); the
    video is ``<gif_name>.gif`` (or a transcode with the same stem)."""
    return _read_mc_table(path, TGIF_MC_TABLE, lambda row: str(row["gif_name"]).strip(), "vid_id",
                          undo_tgif_artefact)


def _seeded_order(key: str, n: int) -> list[int]:
    # A permutation fixed by the record (not by Python's per-process hash seed), the same on every run and rank.
    seed = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "little")
    return [int(i) for i in np.random.default_rng(seed).permutation(n)]


#: How2QA's original CSV: comma-separated, no header, standard quoting.
HOW2QA_TABLE = Table(("youtube_id", "[start:end]", "wrong_1", "wrong_2", "wrong_3", "question", "correct_answer"),
                     header=False)


@FORMATS.register("how2qa", kind="choice", title="How2QA",
                  files={"train": "how2QA_train_release.csv", "val": "how2QA_val_release.csv",
                         "test": "how2QA_test_public_release.csv"},
                  record_id="`<file stem>:<line>`", fields=HOW2QA_TABLE.columns,
                  source="ych133/How2R-and-How2QA how2QA/")
def read_how2qa_csv(path: Path) -> list[ChoiceRecord]:
    """How2QA's original release: comma-separated, no header, ``youtube_id, "[start:end]", wrong_1..3, question,
    correct_answer``.  The correct answer is always last in the file, so the options are shuffled by a
    permutation fixed per record (position would otherwise give the answer away); the window is kept."""
    records = []
    for line, row in read_table(path, HOW2QA_TABLE):
        try:
            video, span, *wrong, question, correct = (row[c].strip() for c in HOW2QA_TABLE.columns)
            match = re.fullmatch(r"\[\s*([\d.]+)\s*:\s*([\d.]+)\s*\]", span)
            if match is None:
                raise ValueError(f"interval {span!r} is not [start:end]")
            start, end = float(match[1]), float(match[2])
            if end <= start:
                raise ValueError(f"interval {span!r} ends before it starts")
            options = [correct, *wrong]
            if not question or any(not o for o in options):
                raise ValueError("empty question or candidate")
            order = _seeded_order(f"{video}|{span}|{question}", len(options))
            records.append(ChoiceRecord(f"{path.stem}:{line}", video, tuple(f"{question} {options[i]}" for i in order),
                                        order.index(0), (start, end)))
        except ValueError as exc:
            raise BadSampleError(f"{path}:{line}: malformed How2QA row ({exc})") from None
    return records


class MultipleChoiceDataModule(FinstaDataModule):
    """``dataset``: a ``choice`` format of the registry (``synthetic``: the embedded world, as MSRVTT-MC);
    ``files`` overrides the annotation file of a split."""

    task = "mcqa"
    target_keys = ("label", "index")

    def __init__(self, dataset: str = "synthetic", root: str | None = None, annotation_dir: str = "msrvtt_mc",
                 video_dir: str = "videos", files: dict[str, str] | None = None,
                 synthetic: WorldConfig | None = None, **kwargs: Any) -> None:
        """Shared arguments (clip, loader, graphs, ...) are :class:`FinstaDataModule`'s."""
        super().__init__(**kwargs)
        fmt = FORMATS.get("msrvtt_mc" if dataset == "synthetic" else dataset, "choice")
        self.locate(fmt, dataset, root, annotation_dir, video_dir, synthetic, files)
        # MSRVTT-MC is test-only: any one split will do to build the vocabulary (fit then asks for train).
        self.records = self.read_annotations(need_train=False)
        vocab_split = "train" if "train" in self.records else next(iter(self.records))
        self.build_vocab(o for r in self.records[vocab_split] for o in r.options)

    def data_info(self) -> DataInfo:
        """Adds chance and the answer-position prior (the text-independent baselines) on validation."""
        train, val = self.records.get("train", []), self.records.get("val", [])
        if not val:
            return super().data_info()
        chance = sum(1 / len(r.options) for r in val) / len(val)
        position = Counter(r.answer for r in train).most_common(1)[0][0] if train else 0
        prior = sum(r.answer == position for r in val) / len(val)
        return replace(super().data_info(), baselines={"chance": chance, "answer_position_prior": prior})

    def build_datasets(self) -> None:
        """One sample per clip with its candidates as texts."""
        videos = self.find_videos()
        for split, records in self.records.items():
            specs = [SampleSpec(r.id, r.video, [TextSpec(o) for o in r.options], {"label": r.answer, "index": k},
                                r.window) for k, r in enumerate(records)]
            self.datasets[split] = self.make_dataset(split, specs, videos)
