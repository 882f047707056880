"""Action recognition data: Kinetics-400 CSVs (DATASETS.md §11), or the embedded world's copy of them.

Columns ``label, youtube_id, time_start, time_end, split[, is_cc]``; classes are the distinct training labels in
alphabetical order (the usual index).  Clips are found by ``video_pattern`` (the trimmed-clip name
``{youtube_id}_{time_start:06d}_{time_end:06d}`` by default) anywhere under the video folder.  Samples have no
text: the model runs the DSG stream only.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from finsta_pl.data_info import DataInfo
from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.data_modules.video import index_videos
from finsta_pl.errors import BadSampleError, DataNotFoundError

_WHERE = """{name} was not found at {root}.
Expected layout (docs/DATASETS.md, Kinetics-400):
  {root}/{ann}/{files}   (the official CSVs, mmaction2's names)
  {root}/{vid}/<label>/<youtube_id>_<start>_<end>.mp4      (trimmed clips, any sub-folder)
Put the files there, or point data.init_args.root (or annotation_dir / video_dir) at them."""
_FILES = {"train": "kinetics_train.csv", "val": "kinetics_val.csv", "test": "kinetics_test.csv"}


@dataclass(frozen=True)
class ClipRecord:
    """One labelled clip."""

    id: str
    video: str
    label: str


def read_kinetics_csv(path: Path, video_pattern: str) -> list[ClipRecord]:
    """Rows of a Kinetics CSV; the video key is ``video_pattern`` filled from the row."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    records = []
    for line, row in enumerate(rows, start=2):
        try:
            label = str(row["label"]).strip()
            if not label:
                raise ValueError("empty label")
            start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            key = video_pattern.format(youtube_id=row["youtube_id"], time_start=start, time_end=end)
            records.append(ClipRecord(f"{row['youtube_id']}_{start}_{end}", key, label))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadSampleError(f"{path}:{line}: malformed Kinetics row ({type(exc).__name__}: {exc})") from None
    return records


class ActionDataModule(FinstaDataModule):
    """``dataset``: ``synthetic`` or ``kinetics400``."""

    task = "action"
    target_keys = ("label", "index")

    def __init__(self, dataset: str = "synthetic", root: str | None = None, annotation_dir: str = "kinetics",
                 video_dir: str = "videos", video_pattern: str | None = None,
                 synthetic: WorldConfig | None = None, **kwargs: Any) -> None:
        """Shared arguments (clip, loader, graphs, ...) are :class:`FinstaDataModule`'s."""
        super().__init__(**kwargs)
        if dataset not in {"synthetic", "kinetics400"}:
            raise ValueError(f"unknown action dataset {dataset!r}; choose synthetic or kinetics400")
        # The embedded world keeps one file per clip id; Kinetics names trimmed clips by id and window.
        pattern = video_pattern or ("{youtube_id}" if dataset == "synthetic" else "{youtube_id}_{time_start:06d}_{time_end:06d}")
        self.root = self.resolve_root(dataset, root, synthetic)
        ann, self.video_dir = self.root / annotation_dir, self.root / video_dir
        present = {split: ann / name for split, name in _FILES.items() if (ann / name).is_file()}
        if "train" not in present or not self.video_dir.is_dir():
            raise DataNotFoundError(_WHERE.format(name=dataset, root=self.root, ann=annotation_dir, vid=video_dir,
                                                  files=", ".join(_FILES.values())))
        self.records = self.regroup({split: read_kinetics_csv(path, pattern) for split, path in present.items()})
        self.classes = sorted({r.label for r in self.records["train"]})
        self.build_vocab(self.classes)  # class names: the only text (hosts need a vocabulary)

    def data_info(self) -> DataInfo:
        """Class names and the majority-class baseline on validation."""
        train, val = self.records["train"], self.records.get("val", [])
        majority = Counter(r.label for r in train).most_common(1)[0][0]
        base = sum(r.label == majority for r in val) / len(val) if val else 0.0
        return replace(super().data_info(), labels=tuple(self.classes), baselines={"majority_class": base})

    def setup(self, stage: str | None = None) -> None:
        """One text-less sample per clip; labels outside the training classes are ``-1`` (counted wrong)."""
        if self.datasets:
            return
        videos = index_videos(self.video_dir)
        index = {c: i for i, c in enumerate(self.classes)}
        for split, records in self.records.items():
            self.report_unknown_labels(split, sum(r.label not in index for r in records), len(records), "class")
            specs = [SampleSpec(r.id, r.video, [], {"label": index.get(r.label, -1), "index": k})
                     for k, r in enumerate(records)]
            self.datasets[split] = self.make_dataset(specs, videos, train=split == "train")
