"""Action recognition data: Kinetics-400 CSVs (DATASETS.md §11), Something-Something v2 JSON (§12), or the
embedded world's copy of the Kinetics files.  ``dataset`` names a ``clip`` format of the registry.

Kinetics: columns ``label, youtube_id, time_start, time_end, split[, is_cc]``; classes are the distinct
training labels in alphabetical order (the usual index).  Trimmed clips are found by ``video_pattern`` (the
name ``{youtube_id}_{time_start:06d}_{time_end:06d}`` by default) anywhere under the video folder; with
``windows: true`` the files are the full YouTube videos (``{youtube_id}``) and each sample decodes its
``[time_start, time_end]`` window by seeking.  SSv2: ``{"id", "label", "template", "placeholders"}`` lists and
the label map (template without brackets -> index as a string), videos ``<id>.webm``.  Samples have no text:
the model runs the DSG stream only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from finsta_pl.data_info import DataInfo
from finsta_pl.data_modules.annotation_io import Table, load_json, read_table
from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec
from finsta_pl.data_modules.registry import FORMATS
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.errors import BadSampleError, DataNotFoundError

KINETICS_TRIMMED = "{youtube_id}_{time_start:06d}_{time_end:06d}"


@dataclass(frozen=True)
class ClipRecord:
    """One labelled clip; ``window`` is its ``(start, end)`` seconds when the file is a longer video."""

    id: str
    video: str
    label: str
    window: tuple[float, float] | None = None


#: the official Kinetics CSV columns; the test CSV has no ``label`` (and no ``is_cc``).
KINETICS_TABLE = Table(("label", "youtube_id", "time_start", "time_end", "split", "is_cc"),
                       optional=("label", "split", "is_cc"))
_KINETICS_FILES = {"train": "kinetics_train.csv", "val": "kinetics_val.csv", "test": "kinetics_test.csv"}


@FORMATS.register("kinetics400", kind="clip", title="Kinetics-400", files=_KINETICS_FILES,
                  record_id="`<youtube_id>_<time_start>_<time_end>`", fields=KINETICS_TABLE.columns[:4],
                  options={"video_pattern": KINETICS_TRIMMED},
                  source="deepmind kinetics400.tar.gz (mmaction2's names kinetics_{train,val,test}.csv)")
def read_kinetics_csv(path: Path, video_pattern: str = KINETICS_TRIMMED, windows: bool = False) -> list[ClipRecord]:
    """Rows of a Kinetics CSV; the video key is ``video_pattern`` filled from the row; ``windows``: keep
    ``[time_start, time_end]`` as the window to decode (full videos).  The official test CSV has no ``label``
    column: its records get the label ``""`` (predictable, never scored as right)."""
    records = []
    for line, row in read_table(path, KINETICS_TABLE):
        try:
            labelled = "label" in row
            label = row["label"].strip() if labelled else ""
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


_SSV2_FILES = {"train": "something-something-v2-train.json", "val": "something-something-v2-validation.json"}
SSV2_LABELS = "something-something-v2-labels.json"


@FORMATS.register("ssv2", kind="clip", title="Something-Something v2", files=_SSV2_FILES,
                  record_id="`id` (a string)", fields=("id", "template"), extra_files=(SSV2_LABELS,),
                  options={"video_pattern": "{id}"}, source="Qualcomm (20bn) something-something-v2 labels")
def read_ssv2(path: Path, video_pattern: str = "{id}", windows: bool = False) -> list[ClipRecord]:
    """An SSv2 list (``id``, ``template``); the class is the template without brackets (``label`` is the
    filled-in caption, not the class).  A test list (``id`` only) gives unlabelled records."""
    records = []
    for k, item in enumerate(load_json(path, list)):
        try:
            label = ssv2_class(str(item["template"])) if "template" in item else ""
            records.append(ClipRecord(str(item["id"]), video_pattern.format(id=item["id"]), label))
        except (KeyError, TypeError, AttributeError) as exc:
            raise BadSampleError(f"{path}: entry {k} is malformed ({type(exc).__name__}: {exc})") from None
    return records


def read_ssv2_labels(folder: Path, name: str = SSV2_LABELS) -> list[str]:
    """Class names in index order from the label map ``{"<template without brackets>": "<index>"}``."""
    path = folder / name
    if not path.is_file():
        raise DataNotFoundError(f"{path}: the SSv2 label map was not found (something-something-v2-labels.json)")
    mapping = load_json(path, dict)
    order = sorted(mapping.items(), key=lambda item: int(item[1]))
    if [int(i) for _, i in order] != list(range(len(order))):
        raise BadSampleError(f"{path}: label indices are not 0..{len(order) - 1}")
    return [name for name, _ in order]


class ActionDataModule(FinstaDataModule):
    """``dataset``: a ``clip`` format of the registry (``synthetic``: the embedded world's Kinetics files, one
    file per clip id); ``files`` overrides a split's annotation file."""

    task = "action"
    target_keys = ("label", "index")

    def __init__(self, dataset: str = "synthetic", root: str | None = None, annotation_dir: str = "kinetics",
                 video_dir: str = "videos", video_pattern: str | None = None, windows: bool = False,
                 files: dict[str, str] | None = None, synthetic: WorldConfig | None = None, **kwargs: Any) -> None:
        """Shared arguments (clip, loader, graphs, split lists, ...) are :class:`FinstaDataModule`'s.
        ``video_pattern`` here names the file from the CSV's own fields (``{youtube_id}``, ``{time_start}``,
        ``{time_end}``; SSv2: ``{id}``), so it replaces the shared ``{id}`` pattern."""
        super().__init__(**kwargs)
        fmt = FORMATS.get("kinetics400" if dataset == "synthetic" else dataset, "clip")
        self.locate(fmt, dataset, root, annotation_dir, video_dir, synthetic, files)
        # The embedded world and full videos (``windows``) name files by the YouTube id alone.
        default = "{youtube_id}" if windows or dataset == "synthetic" else fmt.options["video_pattern"]
        self.records = self.read_annotations(video_pattern=video_pattern or default, windows=windows)
        self.classes = (read_ssv2_labels(self.annotation_dir) if SSV2_LABELS in fmt.extra_files
                        else sorted({r.label for r in self.records["train"]}))
        self.build_vocab(self.classes)  # class names: the only text (hosts need a vocabulary)

    def data_info(self) -> DataInfo:
        """Class names and the majority-class baseline on validation."""
        train, val = self.records["train"], self.records.get("val", [])
        majority = Counter(r.label for r in train).most_common(1)[0][0]
        base = sum(r.label == majority for r in val) / len(val) if val else 0.0
        return replace(super().data_info(), labels=tuple(self.classes), baselines={"majority_class": base})

    def build_datasets(self) -> None:
        """One text-less sample per clip; labels outside the classes are ``-1`` (counted wrong), and so are
        unlabelled records (predictable only; reported as unlabelled, not as unknown)."""
        videos = self.find_videos()
        index = {c: i for i, c in enumerate(self.classes)}
        for split, records in self.records.items():
            unlabelled = sum(not r.label for r in records)
            unknown = sum(bool(r.label) and r.label not in index for r in records)
            self.report_unknown_labels(split, unknown, len(records), "class", unlabelled)
            specs = [SampleSpec(r.id, r.video, [], {"label": index.get(r.label, -1), "index": k}, r.window)
                     for k, r in enumerate(records)]
            self.datasets[split] = self.make_dataset(split, specs, videos)
