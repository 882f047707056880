"""Text-video retrieval data: MSR-VTT, ActivityNet Captions, DiDeMo, LSMDC and YouCook2 annotations
(``caption_formats``), or the embedded world's MSR-VTT and ActivityNet copies; ``format`` picks the reader.

Training yields one sample per (video, caption) pair (CLIP4Clip's ``expand_msrvtt_sentences``); evaluation
yields one sample per video carrying all its captions as texts (``eval_captions: all``) or its first caption
only (``first``, the 1k-A protocol), so each video is decoded and embedded once and each caption once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from finsta_pl.data_info import DataInfo
from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec, TextSpec
from finsta_pl.data_modules.caption_formats import CaptionRecord
from finsta_pl.data_modules.registry import FORMATS
from finsta_pl.data_modules.synthetic import WorldConfig


class RetrievalDataModule(FinstaDataModule):
    """``dataset``: ``synthetic`` (generated on first use) or the folder name of a real dataset under the data
    root; ``format``: a ``caption`` format of :data:`~finsta_pl.data_modules.registry.FORMATS` (default:
    ``msrvtt``, or the dataset's name when it is one)."""

    task = "retrieval"
    target_keys = ("video_index",)
    text_target_keys = ("index",)

    def __init__(self, dataset: str = "synthetic", root: str | None = None, annotation_dir: str = "msrvtt",
                 video_dir: str = "videos", synthetic: WorldConfig | None = None, eval_captions: str = "all",
                 format: str | None = None, **kwargs: Any) -> None:
        """Shared arguments (clip, loader, graphs, split lists, ...) are :class:`FinstaDataModule`'s."""
        super().__init__(**kwargs)
        name = format or (dataset if dataset in FORMATS.names("caption") else "msrvtt")
        if eval_captions not in {"all", "first"}:
            raise ValueError(f"eval_captions must be 'all' or 'first', not {eval_captions!r}")
        self.eval_captions = eval_captions
        self.locate(FORMATS.get(name, "caption"), dataset, root, annotation_dir, video_dir, synthetic)
        self.records = self.read_annotations()
        self.build_vocab(r.caption for r in self.records["train"])

    def data_info(self) -> DataInfo:
        """Adds the random-ranking baseline of text-to-video R@1 on the validation videos."""
        videos = len({r.video for r in self.records.get("val", [])})
        return replace(super().data_info(), baselines={"random_ranking_r1": 1 / videos if videos else 0.0})

    def build_datasets(self) -> None:
        """Training: a sample per (video, caption); evaluation: a sample per video with its captions."""
        videos = self.find_videos(self.records)
        for split, records in self.records.items():
            order = {v: k for k, v in enumerate(dict.fromkeys(r.video for r in records))}
            if split == "train":
                specs = [SampleSpec(f"{r.video}#{r.id}", file, [TextSpec(r.caption, {"index": k})],
                                    {"video_index": order[r.video]}, window)
                         for k, r in enumerate(records) for file, window in [self._source(r, videos)]]
            else:
                specs = self._per_video(records, order, videos)
            self.datasets[split] = self.make_dataset(split, specs, videos)

    @staticmethod
    def _source(record: CaptionRecord, videos: dict[str, Any]) -> tuple[str, tuple[float, float] | None]:
        """The file key and window of an item: its own clip file when there is one (pre-cut clips), else the
        longer file it is a segment of, over its window."""
        if record.file is None or record.video in videos:
            return record.video, None
        return record.file, record.window

    def _per_video(self, records: list[CaptionRecord], order: dict[str, int], videos: dict[str, Any]) -> list[SampleSpec]:
        by_video: dict[str, list[tuple[int, CaptionRecord]]] = {}
        for k, r in enumerate(records):
            by_video.setdefault(r.video, []).append((k, r))
        specs = []
        for video, captions in by_video.items():
            keep = captions if self.eval_captions == "all" else captions[:1]
            file, window = self._source(captions[0][1], videos)
            specs.append(SampleSpec(video, file, [TextSpec(r.caption, {"index": k}) for k, r in keep],
                                    {"video_index": order[video]}, window))
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
