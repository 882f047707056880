"""Stop (or skip the step) when a loss or gradient is NaN/Inf, naming the samples of the batch."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from finsta_pl.errors import FinstaError


class NonFiniteError(FinstaError):
    """A training step produced a NaN/Inf loss or gradient."""


class NonFiniteGuard(L.Callback):
    """``action: stop`` raises :class:`NonFiniteError` naming the batch's sample ids; ``skip`` drops the step's
    gradients (the optimizer then changes nothing) and warns with the ids.

    Gradients are checked after backward, where DDP has already averaged them: a NaN on one rank is a NaN on
    every rank, and the loss flag is reduced over ranks too, so all ranks take the same decision (a rank that
    stopped alone would hang the others).

    .. code-block:: yaml

        trainer:
          callbacks:
            - class_path: finsta_pl.callbacks.NonFiniteGuard
              init_args: {action: skip}
    """

    def __init__(self, action: str = "stop") -> None:
        if action not in {"stop", "skip"}:
            raise ValueError(f"NonFiniteGuard: action must be 'stop' or 'skip', not {action!r}")
        self.action = action
        self.skipped_steps = 0
        self._ids: list[str] = []
        self._loss_finite = True

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        """Remember the batch's sample ids."""
        self._ids = list(getattr(batch, "ids", []) or [])
        self._loss_finite = True

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        """Note whether this rank's loss is finite."""
        self._loss_finite = bool(torch.isfinite(loss.detach()).all())

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Any) -> None:
        """Decide, the same on every rank, and stop or drop the gradients."""
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        finite = self._loss_finite and all(bool(torch.isfinite(g).all()) for g in grads)
        bad = trainer.strategy.reduce_boolean_decision(not finite, all=False)
        if not bad:
            return
        what = "loss" if not self._loss_finite else "gradient" if not finite else "loss or gradient on another rank"
        where = f"step {trainer.global_step}, samples {self._ids}"
        if self.action == "stop":
            raise NonFiniteError(f"non-finite {what} at {where}; stopping (NonFiniteGuard action: stop)")
        self.skipped_steps += 1
        rank_zero_warn(f"NonFiniteGuard: non-finite {what} at {where}; step skipped")
        optimizer.zero_grad(set_to_none=True)
