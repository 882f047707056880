"""Text-video retrieval (MSR-VTT 1k-A style): symmetric InfoNCE in training, full-matrix ranking in evaluation.

How Finsta serves retrieval while evaluation stays one pass per item (docs/DESIGN-NOTES.md §8): the TSG
stream enriches the caption side (dual-stream-sum into the text embedding) and the DSG stream the video side;
both run once per caption and once per video.  The HSG and the alignment losses need a known (video, caption) pair, so they
act in training, where every caption comes with its video.  Each video is embedded once, each caption once,
and the whole similarity matrix is ranked; no Finsta pass runs per (caption, video) pair.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from finsta_pl.batch import FinstaBatch
from finsta_pl.metrics import RetrievalRecall
from finsta_pl.nn.losses import info_nce
from finsta_pl.tasks.base import Features, FinstaTask


class RetrievalTask(FinstaTask):
    """Video and caption embeddings compared by cosine; negatives from the batch and (DDP) every rank."""

    fused_features = ("text", "video")
    reads_targets = ("video_index",)
    epoch_metrics = "retrieval"
    reads_text_targets = ("index",)

    def __init__(
        self,
        temperature: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.logit_scale = nn.Parameter(torch.tensor(1 / temperature).log())
        self.retrieval = nn.ModuleDict({s: RetrievalRecall() for s in ("val", "test")})

    def embed(self, feats: Features, batch: FinstaBatch) -> tuple[Tensor, Tensor]:
        """Caption embeddings ``[M, d]`` and the embedding of each caption's video ``[M, d]``."""
        assert feats.text is not None, "retrieval needs captions"
        return feats.text.pooled, feats.video.pooled[batch.text_sample]

    def task_step(self, batch: FinstaBatch, feats: Features, stage: str) -> Tensor:
        """InfoNCE over the batch's (caption, video) pairs; captions of one video are not each other's
        negatives (the video id is the key).  Evaluation also feeds the full-matrix metric."""
        text, video = self.embed(feats, batch)
        video_index = batch.targets["video_index"][batch.text_sample]
        if stage in self.retrieval:
            self.retrieval[stage].update(text, video, batch.text_targets["index"], video_index)
        return info_nce(video, text, self.logit_scale, keys=video_index)


    def predict_step(self, batch: FinstaBatch, batch_idx: int) -> dict[str, Any]:
        """Embeddings to rank offline: ``{"ids", "video", "text", "text_sample"}``."""
        feats = self.features(batch)
        text, _ = self.embed(feats, batch)
        return {"ids": batch.ids, "video": feats.video.pooled, "text": text, "text_sample": batch.text_sample}
