"""Finsta post-training (docs/DESIGN-NOTES.md §1): the host's own objective (video-text contrastive,
CLIP-style) plus OSC, PTC and distillation of the graph streams into the host; the result is exported as an
*enhanced host* that downstream tasks load with ``host.init_from`` and fine-tune without scene graphs."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from finsta_pl.batch import FinstaBatch
from finsta_pl.hosts.io import export_host
from finsta_pl.metrics import RetrievalRecall
from finsta_pl.nn.losses import info_nce
from finsta_pl.tasks.base import Features, FinstaTask


class PostTrainTask(FinstaTask):
    """Host contrastive loss on the *host's own* features (what gets exported), graph losses on top.

    Validation reports text-to-video retrieval of the host alone over the full similarity matrix.
    """

    fused_features: tuple[str, ...] = ()  # the exported host must stand alone: no dual-stream-sum here
    host_features = ("text", "video")
    reads_targets = ("index", "video_index")
    epoch_metrics = "retrieval"

    def __init__(
        self,
        export_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.export_path = export_path
        # The host's own temperature when it has one (CLIP's, pretrained), else a new one at CLIP's init.
        own = self.host.contrastive_scale()
        if own is not None:
            own.requires_grad_(True)
        else:
            self.host_logit_scale = nn.Parameter(torch.tensor(1 / 0.07).log())
        self.retrieval = nn.ModuleDict({s: RetrievalRecall() for s in ("val", "test")})
        self._log_dir: str | None = None

    def task_step(self, batch: FinstaBatch, feats: Features, stage: str) -> Tensor:
        """Symmetric InfoNCE between the host's pooled video and text features."""
        if stage in self.retrieval:
            t = batch.targets
            self.retrieval[stage].update(feats.text.pooled, feats.video.pooled, t["index"], t["video_index"])
        scale = self.host.contrastive_scale()
        return info_nce(feats.video.pooled, feats.text.pooled, scale if scale is not None else self.host_logit_scale)


    def on_fit_start(self) -> None:
        """Note the log folder on every rank (``trainer.log_dir`` is a collective under DDP)."""
        self._log_dir = self.trainer.log_dir

    def on_fit_end(self) -> None:
        """Export the enhanced host (rank zero) to ``export_path`` or ``<log_dir>/enhanced_host.pt``."""
        if self.trainer.is_global_zero:
            path = self.export_path or f"{self._log_dir or '.'}/enhanced_host.pt"
            written = export_host(self.host, self.data_info, path)
            rank_zero_info(f"enhanced host written to {written}")
