"""Video-caption pairs (MSR-VTT official format, or the embedded world's copy of it) for post-training and
retrieval: training yields every (video, caption) pair, evaluation one caption per video (the first), as the
1k-A protocol does."""

from __future__ import annotations

from typing import Any

from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec
from finsta_pl.data_modules.registry import FORMATS
from finsta_pl.data_modules.synthetic import WorldConfig


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
        self.locate(FORMATS.get("msrvtt", "caption"), dataset, root, annotation_dir, video_dir, synthetic)
        self.records = self.read_annotations()
        self.build_vocab(r.caption for r in self.records["train"])

    def build_datasets(self) -> None:
        """Training: every caption; evaluation: the first caption of each video."""
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
            self.datasets[split] = self.make_dataset(split, specs, videos)
