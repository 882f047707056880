"""Open-ended video QA data: MSRVTT-QA, MSVD-QA and TGIF-QA FrameQA files (the ``qa`` formats of the registry),
or the embedded synthetic world in MSRVTT-QA's format."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec, TextSpec
from finsta_pl.data_modules.msrvtt_qa import AnswerVocab, QARecord, prior_baselines
from finsta_pl.data_modules.qa_formats import read_tgif_frameqa  # noqa: F401  (registers tgif_frameqa)
from finsta_pl.data_modules.registry import FORMATS
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.data_info import DataInfo

log = logging.getLogger(__name__)


class VideoQADataModule(FinstaDataModule):
    """Question + clip -> answer class.  ``dataset: synthetic`` generates the embedded world on first use
    (``$FINSTA_PL_DATA`` or ``root`` moves its cache, written as MSRVTT-QA); the ``qa`` formats of the registry
    read real files from ``root``.
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
        files: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Shared arguments (clip, loader, graphs, tokenizer, ...) are :class:`FinstaDataModule`'s."""
        super().__init__(**kwargs)
        self.dataset = dataset
        fmt = FORMATS.get("msrvtt_qa" if dataset == "synthetic" else dataset, "qa")
        self.locate(fmt, dataset, root, annotation_dir, video_dir, synthetic, files)
        # Annotations are read now (cheap) because the model's sizes depend on them (LightningCLI links them).
        self.records: dict[str, list[QARecord]] = self.read_annotations()
        self.answers = AnswerVocab.build(self.records["train"], max_answers)
        self.build_vocab(r.question for r in self.records["train"] if not r.problem)
        # TGIF-QA has no validation split: its prior baselines are measured on test.
        self.baselines = prior_baselines(self.records["train"], self.records.get("val") or self.records.get("test", []))

    def data_info(self) -> DataInfo:
        """Vocabulary, answer list and the prior baselines (for the run summary)."""
        return replace(super().data_info(), labels=tuple(self.answers.answers), baselines=self.baselines)

    def build_datasets(self) -> None:
        """Index the videos and build the split datasets (training keeps only in-vocabulary answers)."""
        videos = self.find_videos(self.records)
        for split, records in self.records.items():
            unknown = sum(self.answers.label(r.answer) < 0 and not r.problem for r in records)
            self.report_unknown_labels(split, unknown, len(records), "answer")
            if split == "train":  # malformed records stay: the dataset counts them as bad samples
                records = [r for r in records if self.answers.label(r.answer) >= 0 or r.problem]
            specs = [SampleSpec(r.id, r.video, [TextSpec(r.question)], {"label": self.answers.label(r.answer), "index": k},
                                problem=r.problem) for k, r in enumerate(records)]
            self.datasets[split] = self.make_dataset(split, specs, videos)
