"""Video-language inference data: VIOLIN's ``violin_annotation.json`` (DATASETS.md §9), or the embedded world's
copy of it.  Each statement of a clip is a sample: the clip, the statement followed by the clip's subtitles
(the TSG is parsed from the statement only), and the label 1 (entailed, the "real" statement of a pair) or
0 (contradicted, the "fake" one)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from finsta_pl.data_info import DataInfo
from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec, TextSpec
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.data_modules.video import index_videos
from finsta_pl.errors import BadSampleError, DataNotFoundError

#: VIOLIN's split names -> ours (third-party loaders disagree on validate/val: accept both).
_SPLITS = {"train": "train", "validate": "val", "val": "val", "test": "test"}
_WHERE = """{name} was not found at {root}.
Expected layout (docs/DATASETS.md, VIOLIN):
  {root}/{ann}          (violin_annotation.json from the VIOLIN release)
  {root}/{vid}/<file>.mp4   (the clips, named by each record's "file"; any sub-folder)
Put the files there, or point data.init_args.root (or annotation / video_dir) at them."""


@dataclass(frozen=True)
class StatementRecord:
    """One statement about one clip, with the clip's subtitles and whether it is entailed."""

    id: str
    video: str
    statement: str
    subtitles: str
    label: int


def read_violin(path: Path) -> dict[str, list[StatementRecord]]:
    """Statements per split from the original annotation (clip id -> ``file``, ``split``, ``statement`` pairs
    ``[real, fake]``, ``sub`` entries ``[text, start, end]``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadSampleError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise BadSampleError(f"{path}: expected an object keyed by clip id, got {type(data).__name__}")
    out: dict[str, list[StatementRecord]] = {}
    for clip, item in data.items():
        try:
            split = _SPLITS[item["split"]]
            subtitles = " ".join(str(entry[0]).strip() for entry in item.get("sub", []))
            for k, pair in enumerate(item["statement"]):
                real, fake = (str(s).strip() for s in pair)
                if not real or not fake:
                    raise ValueError(f"empty statement in pair {k}")
                for label, text in ((1, real), (0, fake)):
                    out.setdefault(split, []).append(
                        StatementRecord(f"{clip}-{k}-{1 - label}", str(item["file"]), text, subtitles, label))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise BadSampleError(f"{path}: clip {clip!r} is malformed ({type(exc).__name__}: {exc})") from None
    return out


class InferenceDataModule(FinstaDataModule):
    """``dataset``: ``synthetic`` or ``violin``; ``annotation``: the annotation file under ``root``."""

    task = "inference"
    text_target_keys = ("label", "index")

    def __init__(self, dataset: str = "synthetic", root: str | None = None,
                 annotation: str = "violin/violin_annotation.json", video_dir: str = "videos",
                 synthetic: WorldConfig | None = None, **kwargs: Any) -> None:
        """Shared arguments (clip, loader, graphs, ...) are :class:`FinstaDataModule`'s."""
        super().__init__(**kwargs)
        if dataset not in {"synthetic", "violin"}:
            raise ValueError(f"unknown inference dataset {dataset!r}; choose synthetic or violin")
        self.root = self.resolve_root(dataset, root, synthetic)
        self.video_dir = self.root / video_dir
        path = self.root / annotation
        if not path.is_file() or not self.video_dir.is_dir():
            raise DataNotFoundError(_WHERE.format(name=dataset, root=self.root, ann=annotation, vid=video_dir))
        self.records = self.regroup(read_violin(path))
        if "train" not in self.records:
            raise DataNotFoundError(f"{path}: no training statements (split 'train')")
        self.build_vocab(f"{r.statement} {r.subtitles}" for r in self.records["train"])

    def data_info(self) -> DataInfo:
        """Adds chance and the majority label on validation (real and fake statements come in pairs)."""
        val = self.records.get("val", [])
        majority = max(sum(r.label for r in val), sum(1 - r.label for r in val)) / len(val) if val else 0.0
        return replace(super().data_info(), labels=("contradicted", "entailed"),
                       baselines={"chance": 0.5, "majority": majority})

    def setup(self, stage: str | None = None) -> None:
        """One sample per clip carrying all its statements (VIOLIN has six: three real/fake pairs), so the clip
        is decoded and its DSG built once; each text is a statement then the subtitles, its TSG from the
        statement, its targets the label and the statement's index (metrics count each statement once)."""
        if self.datasets:
            return
        videos = index_videos(self.video_dir)
        for split, records in self.records.items():
            by_clip: dict[str, list[TextSpec]] = {}
            for k, r in enumerate(records):
                by_clip.setdefault(r.video, []).append(TextSpec(f"{r.statement} {r.subtitles}".strip(),
                                                                {"label": r.label, "index": k}, len(r.statement)))
            specs = [SampleSpec(clip, clip, texts) for clip, texts in by_clip.items()]
            self.datasets[split] = self.make_dataset(specs, videos, train=split == "train")
