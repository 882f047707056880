"""Action recognition data: Kinetics-400 CSVs (DATASETS.md §11), Something-Something v2 JSON (§12), or the
embedded world's copy of the Kinetics files.  ``dataset`` picks the format from :data:`FORMATS`.

Kinetics: columns ``label, youtube_id, time_start, time_end, split[, is_cc]``; classes are the distinct
training labels in alphabetical order (the usual index).  Trimmed clips are found by ``video_pattern`` (the
name ``{youtube_id}_{time_start:06d}_{time_end:06d}`` by default) anywhere under the video folder; with
``windows: true`` the files are the full YouTube videos (``{youtube_id}``) and each sample decodes its
``[time_start, time_end]`` window by seeking.  SSv2: ``{"id", "label", "template", "placeholders"}`` lists and
the label map (template without brackets -> index as a string), videos ``<id>.webm``.  Samples have no text:
the model runs the DSG stream only.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from finsta_pl.data_info import DataInfo
from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.errors import BadSampleError, DataNotFoundError

_WHERE = """{name} was not found at {root}.
Expected layout (docs/DATASETS.md, {name}):
  {root}/{ann}/{files}
  {root}/{vid}/...   (the videos, any sub-folder)
Put the files there, or point data.init_args.root (or annotation_dir / video_dir / files) at them."""
KINETICS_TRIMMED = "{youtube_id}_{time_start:06d}_{time_end:06d}"


@dataclass(frozen=True)
class ClipRecord:
    """One labelled clip; ``window`` is its ``(start, end)`` seconds when the file is a longer video."""

    id: str
    video: str
    label: str
    window: tuple[float, float] | None = None


def read_kinetics_csv(path: Path, video_pattern: str = KINETICS_TRIMMED, windows: bool = False) -> list[ClipRecord]:
    """Rows of a Kinetics CSV; the video key is ``video_pattern`` filled from the row; ``windows``: keep
    ``[time_start, time_end]`` as the window to decode (full videos).  The official test CSV has no ``label``
    column: its records get the label ``""`` (predictable, never scored as right)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows, labelled = list(reader), "label" in (reader.fieldnames or ())
    records = []
    for line, row in enumerate(rows, start=2):
        try:
            label = str(row["label"]).strip() if labelled else ""
            if labelled and not label:
                raise ValueError("empty label")
            start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            if end <= start:
                raise ValueError(f"time_end {end} <= time_start {start}")
            key = video_pattern.format(youtube_id=row["youtube_id"], time_start=start, time_end=end)
            records.append(ClipRecord(f"{row['youtube_id']}_{start}_{end}", key, label,
                                      (float(start), float(end)) if windows else None))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise BadSampleError(f"{path}:{line}: malformed Kinetics row ({type(exc).__name__}: {exc})") from None
    return records


def ssv2_class(template: str) -> str:
    """The label-map key of an SSv2 template: its text without the placeholder brackets."""
    return template.replace("[", "").replace("]", "")


def read_ssv2(path: Path) -> list[ClipRecord]:
    """An SSv2 list (``id``, ``template``); the class is the template without brackets (``label`` is the
    filled-in caption, not the class)."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadSampleError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    records = []
    for k, item in enumerate(items):
        try:
            records.append(ClipRecord(str(item["id"]), str(item["id"]), ssv2_class(str(item["template"]))))
        except (KeyError, TypeError) as exc:
            raise BadSampleError(f"{path}: entry {k} is malformed ({type(exc).__name__}: {exc})") from None
    return records


def read_ssv2_labels(folder: Path, name: str) -> list[str]:
    """Class names in index order from the label map ``{"<template without brackets>": "<index>"}``."""
    path = folder / name
    if not path.is_file():
        raise DataNotFoundError(f"{path}: the SSv2 label map was not found (something-something-v2-labels.json)")
    mapping = json.loads(path.read_text(encoding="utf-8"))
    order = sorted(mapping.items(), key=lambda item: int(item[1]))
    if [int(i) for _, i in order] != list(range(len(order))):
        raise BadSampleError(f"{path}: label indices are not 0..{len(order) - 1}")
    return [name for name, _ in order]


@dataclass(frozen=True)
class ActionFormat:
    """An action dataset's files per split, how one is read (given the module's ``video_pattern`` and
    ``windows``), and where the class list comes from (``None``: the sorted training labels)."""

    files: dict[str, str]
    read: Callable[[Path, str, bool], list[ClipRecord]]
    default_pattern: str = "{youtube_id}"
    class_map: str | None = None


_KINETICS_FILES = {"train": "kinetics_train.csv", "val": "kinetics_val.csv", "test": "kinetics_test.csv"}
_SSV2_FILES = {"train": "something-something-v2-train.json", "val": "something-something-v2-validation.json"}
#: dataset name -> format.  The embedded world keeps one file per clip id, Kinetics names trimmed clips by id
#: and window, SSv2 by id.
FORMATS: dict[str, ActionFormat] = {
    "synthetic": ActionFormat(_KINETICS_FILES, read_kinetics_csv),
    "kinetics400": ActionFormat(_KINETICS_FILES, read_kinetics_csv, KINETICS_TRIMMED),
    "ssv2": ActionFormat(_SSV2_FILES, lambda path, pattern, windows: read_ssv2(path), "{id}",
                         "something-something-v2-labels.json"),
}


class ActionDataModule(FinstaDataModule):
    """``dataset``: a name of :data:`FORMATS`; ``files`` overrides a split's annotation file."""

    task = "action"
    target_keys = ("label", "index")

    def __init__(self, dataset: str = "synthetic", root: str | None = None, annotation_dir: str = "kinetics",
                 video_dir: str = "videos", video_pattern: str | None = None, windows: bool = False,
                 files: dict[str, str] | None = None, synthetic: WorldConfig | None = None, **kwargs: Any) -> None:
        """Shared arguments (clip, loader, graphs, split lists, ...) are :class:`FinstaDataModule`'s.
        ``video_pattern`` here names the file from the CSV's own fields (``{youtube_id}``, ``{time_start}``,
        ``{time_end}``; SSv2: ``{id}``), so it replaces the shared ``{id}`` pattern."""
        super().__init__(**kwargs)
        if dataset not in FORMATS:
            raise ValueError(f"unknown action dataset {dataset!r}; choose one of {sorted(FORMATS)}")
        fmt = FORMATS[dataset]
        pattern = video_pattern or ("{youtube_id}" if windows else fmt.default_pattern)
        names = {**fmt.files, **(files or {})}
        self.root = self.resolve_root(dataset, root, synthetic)
        ann, self.video_dir = self.root / annotation_dir, self.root / video_dir
        present = {split: ann / name for split, name in names.items() if (ann / name).is_file()}
        if "train" not in present or not self.video_dir.is_dir():
            raise DataNotFoundError(_WHERE.format(name=dataset, root=self.root, ann=annotation_dir, vid=video_dir,
                                                  files=", ".join(names.values())))
        self.records = self.regroup({split: fmt.read(path, pattern, windows) for split, path in present.items()})
        self.classes = (read_ssv2_labels(ann, fmt.class_map) if fmt.class_map
                        else sorted({r.label for r in self.records["train"]}))
        self.build_vocab(self.classes)  # class names: the only text (hosts need a vocabulary)

    def data_info(self) -> DataInfo:
        """Class names and the majority-class baseline on validation."""
        train, val = self.records["train"], self.records.get("val", [])
        majority = Counter(r.label for r in train).most_common(1)[0][0]
        base = sum(r.label == majority for r in val) / len(val) if val else 0.0
        return replace(super().data_info(), labels=tuple(self.classes), baselines={"majority_class": base})

    def setup(self, stage: str | None = None) -> None:
        """One text-less sample per clip; labels outside the classes are ``-1`` (counted wrong)."""
        if self.datasets:
            return
        videos = self.find_videos()
        index = {c: i for i, c in enumerate(self.classes)}
        for split, records in self.records.items():
            self.report_unknown_labels(split, sum(r.label not in index for r in records), len(records), "class")
            specs = [SampleSpec(r.id, r.video, [], {"label": index.get(r.label, -1), "index": k}, r.window)
                     for k, r in enumerate(records)]
            self.datasets[split] = self.make_dataset(specs, videos, train=split == "train")
