"""Open-ended video QA: classify the answer over the training answer vocabulary (MSRVTT-QA protocol)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from finsta_pl.batch import FinstaBatch
from finsta_pl.metrics import DedupMean
from finsta_pl.tasks.base import Features, FinstaTask


class VideoQATask(FinstaTask):
    """Answer classifier on the (dual-stream) joint feature; out-of-vocabulary answers count as wrong."""

    fused_features = ("joint",)
    reads_targets = ("label", "index")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answers: list[str] = list(self.info.labels)
        self.head = self.classifier(len(self.answers))
        self.accuracy = nn.ModuleDict({s: DedupMean() for s in ("val", "test")})

    def task_step(self, batch: FinstaBatch, feats: Features, stage: str) -> Tensor:
        """Cross-entropy over in-vocabulary answers; accuracy over all questions."""
        logits = self.head(feats.joint)
        labels = batch.targets["label"]
        known = labels >= 0
        loss = F.cross_entropy(logits[known], labels[known]) if bool(known.any()) else logits.sum() * 0.0
        if stage in self.accuracy:
            correct = (logits.argmax(-1) == labels).float()
            metric = self.accuracy[stage]
            metric.update(batch.targets["index"], correct)
            self.log(f"{stage}/acc", metric, batch_size=batch.batch_size, prog_bar=True)
        return loss

    def predict_step(self, batch: FinstaBatch, batch_idx: int) -> list[dict[str, Any]]:
        """``{"id", "answer", "score"}`` per question."""
        probs = self.head(self.features(batch).joint).softmax(-1)
        score, best = probs.max(-1)
        return [{"id": i, "answer": self.answers[int(b)], "score": float(s)} for i, b, s in zip(batch.ids, best, score)]
