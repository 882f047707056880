"""Action recognition (Kinetics-400, Something-Something v2): a classifier on the clip feature (host pooling +
Finsta's DSG stream through the dual-stream-sum).  Clips carry no text, so no TSG or HSG is built."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from finsta_pl.batch import FinstaBatch
from finsta_pl.metrics import ClassAccuracy
from finsta_pl.tasks.base import Features, FinstaTask


class ActionRecognitionTask(FinstaTask):
    """Top-1, top-5 and mean class accuracy; labels outside the training classes count as wrong."""

    fused_features = ("video",)
    reads_targets = ("label", "index")
    epoch_metrics = "accuracy"
    uses_text = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.classes = list(self.info.labels)
        self.head = self.classifier(len(self.classes))
        self.accuracy = nn.ModuleDict({s: ClassAccuracy(len(self.classes)) for s in ("val", "test")})

    def task_step(self, batch: FinstaBatch, feats: Features, stage: str) -> Tensor:
        """Cross-entropy over known classes."""
        logits = self.head(feats.video.pooled)
        labels = batch.targets["label"]
        known = labels >= 0
        loss = F.cross_entropy(logits[known], labels[known]) if bool(known.any()) else logits.sum() * 0.0
        if stage in self.accuracy:
            self.accuracy[stage].update(batch.targets["index"], logits, labels)
        return loss


    def predict_step(self, batch: FinstaBatch, batch_idx: int) -> list[dict[str, Any]]:
        """``{"id", "label", "score"}`` per clip."""
        probs = self.head(self.features(batch).video.pooled).softmax(-1)
        score, best = probs.max(-1)
        return [{"id": i, "label": self.classes[int(b)], "score": float(s)} for i, b, s in zip(batch.ids, best, score)]
