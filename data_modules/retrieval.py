"""Text-video retrieval data: MSR-VTT captions in the official schema (DATASETS.md §1), or the embedded world's
copy of them.

Training yields one sample per (video, caption) pair (CLIP4Clip's ``expand_msrvtt_sentences``); evaluation
yields one sample per video carrying all its captions as texts (``eval_captions: all``) or its first caption
only (``first``, the 1k-A protocol), so each video is decoded and embedded once and each caption once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from finsta_pl.data_info import DataInfo
from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec, TextSpec
from finsta_pl.data_modules.msrvtt_captions import CaptionRecord, read_msrvtt_official
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.data_modules.video import index_videos
from finsta_pl.errors import DataNotFoundError

_WHERE = """MSR-VTT was not found at {root}.
Expected layout (docs/DATASETS.md, MSR-VTT):
  {root}/{ann}/train_val_videodatainfo.json, test_videodatainfo.json   (the official MSR-VTT release)
  {root}/{vid}/video0.mp4 ... video9999.mp4                           (any sub-folder)
Put the files there, or point data.init_args.root (or annotation_dir / video_dir) at them."""


class RetrievalDataModule(FinstaDataModule):
    """``dataset``: ``synthetic`` (generated on first use) or ``msrvtt`` (official files under ``root``)."""

    task = "retrieval"
    target_keys = ("video_index",)
    text_target_keys = ("index",)

    def __init__(self, dataset: str = "synthetic", root: str | None = None, annotation_dir: str = "msrvtt",
                 video_dir: str = "videos", synthetic: WorldConfig | None = None, eval_captions: str = "all",
                 **kwargs: Any) -> None:
        """Shared arguments (clip, loader, graphs, ...) are :class:`FinstaDataModule`'s."""
        super().__init__(**kwargs)
        if dataset not in {"synthetic", "msrvtt"}:
            raise ValueError(f"unknown retrieval dataset {dataset!r}; choose synthetic or msrvtt")
        if eval_captions not in {"all", "first"}:
            raise ValueError(f"eval_captions must be 'all' or 'first', not {eval_captions!r}")
        self.eval_captions = eval_captions
        self.root = self.resolve_root(dataset, root, synthetic)
        self.video_dir = self.root / video_dir
        if not (self.root / annotation_dir).is_dir() or not self.video_dir.is_dir():
            raise DataNotFoundError(_WHERE.format(root=self.root, ann=annotation_dir, vid=video_dir))
        self.records = read_msrvtt_official(self.root / annotation_dir)
        if "train" not in self.records:
            raise DataNotFoundError(f"{self.root / annotation_dir}: no training captions (split 'train')")
        self.build_vocab(r.caption for r in self.records["train"])

    def data_info(self) -> DataInfo:
        """Adds the random-ranking baseline of text-to-video R@1 on the validation videos."""
        videos = len({r.video for r in self.records.get("val", [])})
        return replace(super().data_info(), baselines={"random_ranking_r1": 1 / videos if videos else 0.0})

    def setup(self, stage: str | None = None) -> None:
        """Training: a sample per (video, caption); evaluation: a sample per video with its captions."""
        if self.datasets:
            return
        videos = index_videos(self.video_dir)
        for split, records in self.records.items():
            order = {v: k for k, v in enumerate(dict.fromkeys(r.video for r in records))}
            if split == "train":
                specs = [SampleSpec(f"{r.video}#{r.id}", r.video, [TextSpec(r.caption, {"index": k})],
                                    {"video_index": order[r.video]}) for k, r in enumerate(records)]
            else:
                specs = self._per_video(records, order)
            self.datasets[split] = self.make_dataset(specs, videos, train=split == "train")

    def _per_video(self, records: list[CaptionRecord], order: dict[str, int]) -> list[SampleSpec]:
        by_video: dict[str, list[tuple[int, CaptionRecord]]] = {}
        for k, r in enumerate(records):
            by_video.setdefault(r.video, []).append((k, r))
        specs = []
        for video, captions in by_video.items():
            keep = captions if self.eval_captions == "all" else captions[:1]
            specs.append(SampleSpec(video, video, [TextSpec(r.caption, {"index": k}) for k, r in keep],
                                    {"video_index": order[video]}))
        return specs


class CaptioningDataModule(RetrievalDataModule):
    """The same MSR-VTT files and samples as retrieval (training: each (video, caption); evaluation: each video
    with all its captions as references), described as captioning data; ``labels`` holds the most common
    training caption (the trivial baseline every clip gets)."""

    task = "captioning"

    def data_info(self) -> DataInfo:
        """Vocabulary and the most common training caption."""
        from collections import Counter

        common = Counter(r.caption for r in self.records["train"]).most_common(1)[0][0]
        return replace(super().data_info(), labels=(common,), baselines={})
