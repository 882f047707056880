"""Open-ended video QA data: MSRVTT-QA / MSVD-QA files, or the embedded synthetic world in the same format."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec
from finsta_pl.data_modules.msrvtt_qa import SPLIT_FILES, AnswerVocab, QARecord, prior_baselines, read_qa_file
from finsta_pl.data_modules.video import index_videos
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.data_info import DataInfo
from finsta_pl.errors import DataNotFoundError

log = logging.getLogger(__name__)

_WHERE = """\
{name} was not found at {root}.
Expected layout (DATASETS.md §2):
  {root}/{ann}/train_qa.json, val_qa.json, test_qa.json   (from the MSRVTT-QA / MSVD-QA release)
  {root}/{vid}/{prefix}<id>.mp4 (or .avi/.webm, any sub-folder) (the dataset's video clips)
Put the files there, or point data.init_args.root (or annotation_dir / video_dir) at them."""


class VideoQADataModule(FinstaDataModule):
    """Question + clip -> answer class.  ``dataset: synthetic`` generates the embedded world on first use
    (``$FINSTA_PL_DATA`` or ``root`` moves its cache); ``msrvtt_qa`` / ``msvd_qa`` read real files from ``root``.
    ``tokenizer``: ``words`` (a vocabulary of the training questions, for the built-in host) or the folder of
    the host checkpoint's `transformers` tokenizer (CLIP4Clip)."""

    task = "videoqa"
    target_keys = ("label", "index")

    def __init__(
        self,
        dataset: str = "synthetic",
        root: str | None = None,
        annotation_dir: str = "msrvtt_qa",
        video_dir: str = "videos",
        synthetic: WorldConfig | None = None,
        max_answers: int = 1000,
        **kwargs: Any,
    ) -> None:
        """Shared arguments (clip, loader, graphs, tokenizer, ...) are :class:`FinstaDataModule`'s."""
        super().__init__(**kwargs)
        if dataset not in {"synthetic", "msrvtt_qa", "msvd_qa"}:
            raise ValueError(f"unknown video-QA dataset {dataset!r}; choose synthetic, msrvtt_qa or msvd_qa")
        self.dataset = dataset
        self.prefix = "vid" if dataset == "msvd_qa" else "video"
        self.root = self.resolve_root(dataset, root, synthetic)
        self.annotation_dir = self.root / annotation_dir
        self.video_dir = self.root / video_dir
        if not self.annotation_dir.is_dir() or not self.video_dir.is_dir():
            raise DataNotFoundError(_WHERE.format(name=dataset, root=self.root, ann=annotation_dir, vid=video_dir,
                                                  prefix=self.prefix))
        # Annotations are read now (cheap) because the model's sizes depend on them (LightningCLI links them).
        self.records: dict[str, list[QARecord]] = self.regroup({
            split: read_qa_file(self.annotation_dir / name, self.prefix)
            for split, name in SPLIT_FILES.items()
            if (self.annotation_dir / name).is_file() or split == "train"
        })
        self.answers = AnswerVocab.build(self.records["train"], max_answers)
        self.build_vocab(r.question for r in self.records["train"])
        self.baselines = prior_baselines(self.records["train"], self.records.get("val", []))

    def data_info(self) -> DataInfo:
        """Vocabulary, answer list and the prior baselines (for the run summary)."""
        return replace(super().data_info(), labels=tuple(self.answers.answers), baselines=self.baselines)

    def setup(self, stage: str | None = None) -> None:
        """Index the videos and build the split datasets (training keeps only in-vocabulary answers)."""
        if self.datasets:
            return
        videos = index_videos(self.video_dir)
        for split, records in self.records.items():
            unknown = sum(self.answers.label(r.answer) < 0 for r in records)
            self.report_unknown_labels(split, unknown, len(records), "answer")
            if split == "train":
                records = [r for r in records if self.answers.label(r.answer) >= 0]
            specs = [SampleSpec.single(r.id, r.video, r.question, {"label": self.answers.label(r.answer), "index": k})
                     for k, r in enumerate(records)]
            self.datasets[split] = self.make_dataset(specs, videos, train=split == "train")
