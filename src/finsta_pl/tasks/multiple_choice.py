"""Multiple-choice video QA (MSRVTT-MC, TGIF-QA action/transition, How2QA): each candidate text is scored with
the clip (host fusion + Finsta's HSG through the dual-stream-sum); the best-scoring candidate is the answer."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finsta_pl.batch import FinstaBatch
from finsta_pl.metrics import DedupMean
from finsta_pl.tasks.base import Features, FinstaTask


def candidate_positions(text_sample: Tensor, num_samples: int) -> tuple[Tensor, Tensor]:
    """Each text's position among its clip's candidates ``[M]``, and the candidates per clip ``[B]`` (texts of a
    clip are contiguous); counted by a sum, so nothing waits for the device."""
    counts = torch.zeros(num_samples, dtype=torch.long, device=text_sample.device).index_add_(
        0, text_sample, torch.ones_like(text_sample))
    position = torch.arange(text_sample.numel(), device=text_sample.device) - (torch.cumsum(counts, 0) - counts)[text_sample]
    return position, counts


def candidate_scores(scores: Tensor, text_sample: Tensor, num_samples: int) -> Tensor:
    """Per-text scores ``[M]`` as ``[B, K_max]`` (candidates in order; missing ones ``-inf``)."""
    position, counts = candidate_positions(text_sample, num_samples)
    out = scores.new_full((num_samples, int(counts.max()) if counts.numel() else 0), float("-inf"))
    out[text_sample, position] = scores
    return out


class MultipleChoiceQATask(FinstaTask):
    """A scorer on the joint feature of each (clip, candidate); cross-entropy over a clip's candidates."""

    fused_features = ("joint",)
    reads_targets = ("label", "index")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The task heads' shape with one output; no dropout, so no Dropout layer: the layers keep the indices
        # (scorer.0, scorer.2) that checkpoints written before it was built here hold.
        self.scorer = self.classifier(1, dropout=0.0)
        self.accuracy = nn.ModuleDict({s: DedupMean() for s in ("val", "test")})

    def true_texts(self, batch: FinstaBatch) -> Tensor | None:
        """The right candidate of each clip (where the batch has labels)."""
        labels = batch.targets.get("label")
        if labels is None:
            return None
        position, _ = candidate_positions(batch.text_sample, batch.batch_size)
        return position == labels[batch.text_sample]

    def scores(self, feats: Features, batch: FinstaBatch) -> Tensor:
        """``[B, K]`` candidate scores."""
        assert feats.joint is not None, "multiple choice needs candidate texts"
        return candidate_scores(self.scorer(feats.joint).squeeze(-1), batch.text_sample, batch.batch_size)

    def task_step(self, batch: FinstaBatch, feats: Features, stage: str) -> Tensor:
        """Cross-entropy over each clip's candidates; accuracy in evaluation."""
        scores = self.scores(feats, batch)
        labels = batch.targets["label"]
        loss = F.cross_entropy(scores, labels)
        if stage in self.accuracy:
            metric = self.accuracy[stage]
            metric.update(batch.targets["index"], (scores.argmax(-1) == labels).float())
            self.log(f"{stage}/acc", metric, batch_size=batch.batch_size, prog_bar=True)
        return loss

    def predict_step(self, batch: FinstaBatch, batch_idx: int) -> list[dict[str, Any]]:
        """``{"id", "answer", "scores"}`` per clip (``answer`` is the candidate index)."""
        scores = self.scores(self.features(batch), batch)
        return [{"id": i, "answer": int(s.argmax()), "scores": s.tolist()} for i, s in zip(batch.ids, scores)]
