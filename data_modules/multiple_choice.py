"""Multiple-choice video QA data: MSRVTT-MC in JSFusion's tab-separated form (DATASETS.md §3), TGIF-QA Action and
Transition (§4), How2QA's original CSV (§8, with its clip windows), or the embedded world's copy of MSRVTT-MC
(whose options differ from the true caption in one relation, binding or adverb).  ``dataset`` picks the
reader from :data:`READERS`.

A record is one clip and its candidate texts; the clip is decoded and its DSG built once, each candidate gets
its own TSG and HSG.  A question (TGIF-QA, How2QA) is prepended to every candidate.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from finsta_pl.data_info import DataInfo
from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec, TextSpec
from finsta_pl.data_modules.qa_formats import undo_tgif_artefact
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.errors import BadSampleError, DataNotFoundError

_WHERE = """{name} was not found at {root}.
Expected layout (docs/DATASETS.md, multiple-choice QA):
  {root}/{ann}/{files}   (tab-separated, header row; at least one split)
  {root}/{vid}/...       (the videos, any sub-folder)
Put the files there, or point data.init_args.root (or annotation_dir / video_dir / files) at them."""


@dataclass(frozen=True)
class ChoiceRecord:
    """One clip with its candidate texts and the index of the correct one."""

    id: str
    video: str
    options: tuple[str, ...]
    answer: int
    window: tuple[float, float] | None = None


def _read_mc_table(path: Path, video_of: Callable[[dict[str, str]], str], id_column: str,
                   fix_text: Callable[[str], str] = str) -> list[ChoiceRecord]:
    """Rows of a tab-separated multiple-choice file with a header: options ``a1``..``aN``, ``answer`` (index),
    an optional ``question`` prepended to every option; ``video_of(row)`` names the video."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    records = []
    for line, row in enumerate(rows, start=2):
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
            records.append(ChoiceRecord(str(row[id_column]).strip(), video_of(row), options, answer))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadSampleError(f"{path}:{line}: malformed multiple-choice row ({type(exc).__name__}: {exc})") from None
    return records


def read_jsfusion_mc(path: Path) -> list[ChoiceRecord]:
    """JSFusion's MSRVTT-MC: ``key, vid_key, a1..a5, answer`` (``vid_key`` ``msr<N>`` is ``video<N>``)."""
    def video(row: dict[str, str]) -> str:
        vid_key = str(row["vid_key"]).strip()
        return f"video{vid_key[3:]}" if re.fullmatch(r"msr\d+", vid_key) else vid_key

    return _read_mc_table(path, video, "key")


def read_tgif_mc(path: Path) -> list[ChoiceRecord]:
    """TGIF-QA Action / Transition: ``gif_name, question, a1..a5, answer, vid_id, key`` (tab-separated despite
    the ``.csv`` name); the video is ``<gif_name>.gif`` (or a transcode with the same stem)."""
    return _read_mc_table(path, lambda row: str(row["gif_name"]).strip(), "key", undo_tgif_artefact)


def _seeded_order(key: str, n: int) -> list[int]:
    # A permutation fixed by the record (not by Python's per-process hash seed), the same on every run and rank.
    seed = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "little")
    return [int(i) for i in np.random.default_rng(seed).permutation(n)]


def read_how2qa_csv(path: Path) -> list[ChoiceRecord]:
    """How2QA's original release: comma-separated, no header, ``youtube_id, "[start:end]", wrong_1..3, question,
    correct_answer``.  The correct answer is always last in the file, so the options are shuffled by a
    permutation fixed per record (position would otherwise give the answer away); the window is kept."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    records = []
    for line, row in enumerate(rows, start=1):
        try:
            if len(row) != 7:
                raise ValueError(f"{len(row)} columns instead of 7")
            video, span, *wrong, question, correct = (c.strip() for c in row)
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


def _tgif(kind: str) -> tuple[Callable[[Path], list[ChoiceRecord]], dict[str, str]]:
    # TGIF-QA has train and test only; a run that validates names its val file with ``files: {val: ...}``.
    return read_tgif_mc, {"train": f"Train_{kind}_question.csv", "test": f"Test_{kind}_question.csv"}


_JSFUSION_FILES = {"train": "MSR_MC_train.csv", "val": "MSR_MC_val.csv", "test": "MSR_MC_test.csv"}
#: dataset name -> (reader, annotation files per split).
READERS: dict[str, tuple[Callable[[Path], list[ChoiceRecord]], dict[str, str]]] = {
    "synthetic": (read_jsfusion_mc, _JSFUSION_FILES),
    "msrvtt_mc": (read_jsfusion_mc, _JSFUSION_FILES),
    "tgif_action": _tgif("action"),
    "tgif_transition": _tgif("transition"),
    "how2qa": (read_how2qa_csv, {"train": "how2QA_train_release.csv", "val": "how2QA_val_release.csv",
                                 "test": "how2QA_test_public_release.csv"}),
}


class MultipleChoiceDataModule(FinstaDataModule):
    """``dataset``: a name of :data:`READERS`.  ``files`` overrides the annotation file of a split."""

    task = "mcqa"
    target_keys = ("label", "index")

    def __init__(self, dataset: str = "synthetic", root: str | None = None, annotation_dir: str = "msrvtt_mc",
                 video_dir: str = "videos", files: dict[str, str] | None = None,
                 synthetic: WorldConfig | None = None, **kwargs: Any) -> None:
        """Shared arguments (clip, loader, graphs, ...) are :class:`FinstaDataModule`'s."""
        super().__init__(**kwargs)
        if dataset not in READERS:
            raise ValueError(f"unknown multiple-choice dataset {dataset!r}; choose one of {sorted(READERS)}")
        reader, default_files = READERS[dataset]
        names = {**default_files, **(files or {})}
        self.root = self.resolve_root(dataset, root, synthetic)
        ann, self.video_dir = self.root / annotation_dir, self.root / video_dir
        present = {split: ann / name for split, name in names.items() if (ann / name).is_file()}
        if not present or not self.video_dir.is_dir():
            raise DataNotFoundError(_WHERE.format(name=dataset, root=self.root, ann=annotation_dir,
                                                  vid=video_dir, files=", ".join(names.values())))
        self.records = self.regroup({split: reader(path) for split, path in present.items()})
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

    def setup(self, stage: str | None = None) -> None:
        """One sample per clip with its candidates as texts."""
        if self.datasets:
            return
        videos = self.find_videos()
        for split, records in self.records.items():
            specs = [SampleSpec(r.id, r.video, [TextSpec(o) for o in r.options], {"label": r.answer, "index": k},
                                r.window) for k, r in enumerate(records)]
            self.datasets[split] = self.make_dataset(specs, videos, train=split == "train")
