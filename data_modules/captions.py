"""Video-caption pairs (MSR-VTT official format, or the embedded world's copy of it) for post-training and
retrieval: training yields every (video, caption) pair, evaluation one caption per video (the first), as the
1k-A protocol does."""

from __future__ import annotations

from typing import Any

from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec
from finsta_pl.data_modules.msrvtt_captions import read_msrvtt_official
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.errors import DataNotFoundError


class CaptionDataModule(FinstaDataModule):
    """``dataset: synthetic`` (generated on first use) or ``msrvtt`` (files under ``root``); ``tokenizer`` as in
    :class:`VideoQADataModule`."""

    task = "posttrain"
    target_keys = ("index", "video_index")

    def __init__(
        self,
        dataset: str = "synthetic",
        root: str | None = None,
        annotation_dir: str = "msrvtt",
        video_dir: str = "videos",
        synthetic: WorldConfig | None = None,
        **kwargs: Any,
    ) -> None:
        """Shared arguments (clip, loader, graphs, tokenizer, ...) are :class:`FinstaDataModule`'s."""
        super().__init__(**kwargs)
        if dataset not in {"synthetic", "msrvtt"}:
            raise ValueError(f"unknown caption dataset {dataset!r}; choose synthetic or msrvtt")
        self.root = self.resolve_root(dataset, root, synthetic)
        self.video_dir = self.root / video_dir
        if not self.video_dir.is_dir():
            raise DataNotFoundError(f"MSR-VTT videos not found: expected {self.video_dir}/video<N>.mp4")
        self.records = self.regroup(read_msrvtt_official(self.root / annotation_dir))
        if "train" not in self.records:
            raise DataNotFoundError(f"{self.root / annotation_dir}: no training captions")
        self.build_vocab(r.caption for r in self.records["train"])

    def setup(self, stage: str | None = None) -> None:
        """Training: every caption; evaluation: the first caption of each video."""
        if self.datasets:
            return
        videos = self.find_videos()
        for split, records in self.records.items():
            if split != "train":
                first: dict[str, Any] = {}
                for r in records:
                    first.setdefault(r.video, r)
                records = list(first.values())
            order = {v: k for k, v in enumerate(dict.fromkeys(r.video for r in records))}
            specs = [SampleSpec.single(r.id, r.video, r.caption, {"index": k, "video_index": order[r.video]})
                     for k, r in enumerate(records)]
            self.datasets[split] = self.make_dataset(specs, videos, train=split == "train")
