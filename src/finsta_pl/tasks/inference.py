"""Video-language inference (VIOLIN): is the statement entailed by the clip and its subtitles?  A binary
classifier on the joint feature of (clip, statement + subtitles), with Finsta's HSG of the statement."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from finsta_pl.batch import FinstaBatch
from finsta_pl.metrics import DedupMean
from finsta_pl.tasks.base import Features, FinstaTask


class VideoLanguageInferenceTask(FinstaTask):
    """Entailed (1) or contradicted (0); accuracy over all statements."""

    fused_features = ("joint",)
    reads_text_targets = ("label", "index")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.head = self.classifier(2)
        self.accuracy = nn.ModuleDict({s: DedupMean() for s in ("val", "test")})

    def true_texts(self, batch: FinstaBatch) -> Tensor | None:
        """The entailed statements (where the batch has labels): a contradicted one describes what is not there."""
        labels = batch.text_targets.get("label")
        return None if labels is None else labels == 1

    def logits(self, feats: Features) -> Tensor:
        """``[M, 2]``: one row per statement (a clip carries all of its statements)."""
        assert feats.joint is not None, "inference needs statements"
        return self.head(feats.joint)

    def task_step(self, batch: FinstaBatch, feats: Features, stage: str) -> Tensor:
        """Cross-entropy over statements; accuracy in evaluation, each statement counted once."""
        logits = self.logits(feats)
        labels = batch.text_targets["label"]
        if stage in self.accuracy:
            metric = self.accuracy[stage]
            metric.update(batch.text_targets["index"], (logits.argmax(-1) == labels).float())
            self.log(f"{stage}/acc", metric, batch_size=labels.numel(), prog_bar=True)
        return F.cross_entropy(logits, labels)

    def predict_step(self, batch: FinstaBatch, batch_idx: int) -> list[dict[str, Any]]:
        """``{"id", "statement", "entailed", "score"}`` per statement (``statement``: its index in the file)."""
        probs = self.logits(self.features(batch)).softmax(-1)
        clips = [batch.ids[int(c)] for c in batch.text_sample]
        return [{"id": clip, "statement": int(k), "entailed": bool(p[1] > 0.5), "score": float(p[1])}
                for clip, k, p in zip(clips, batch.text_targets["index"], probs)]
