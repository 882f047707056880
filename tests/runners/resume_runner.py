"""One recorded fit (``tests.helpers.recorded_fit``: exact-resume and determinism tests), optionally interrupted by
a real signal.

    python tests/runners/resume_runner.py OUT NAME SIGNAL STEP CKPT -- <finsta-pl fit args>

``SIGNAL`` (``SIGTERM``/``SIGUSR1``, or ``-``) is sent to the process itself in the middle of the training
step that starts at global step ``STEP`` (after the forward, before the backward: where a scheduler's signal
usually lands); ``WallTimeGuard`` then saves and stops at the end of that step.  ``CKPT`` is a checkpoint to
resume from (``-``: none, or whatever Lightning finds itself, e.g. SLURM's HPC checkpoint).  Writes
``OUT/NAME.json`` (per step: global step, sample ids, loss; the final metrics; how the guard stopped) and
``OUT/NAME.pt`` (the final state_dict).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import finsta_pl  # noqa: F401  before lightning: makes a mismatched torchvision importable
import lightning as L
import torch


class _Record(L.Callback):
    def __init__(self, signal_name: str, signal_at: int) -> None:
        self.signal_name, self.signal_at = signal_name, signal_at
        self.steps: list[dict[str, Any]] = []

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        if self.signal_name != "-" and trainer.global_step == self.signal_at:
            os.kill(os.getpid(), getattr(signal, self.signal_name))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.steps.append({"step": trainer.global_step, "epoch": trainer.current_epoch, "ids": list(batch.ids),
                           "loss": float(loss)})


def main(argv: list[str]) -> int:
    out, name, signal_name, signal_at, ckpt = Path(argv[0]), argv[1], argv[2], int(argv[3]), argv[4]
    from finsta_pl.callbacks import WallTimeGuard
    from finsta_pl.cli import build_cli, expand_config_args

    cli = build_cli(expand_config_args(argv[6:]), run=False)
    record, guard = _Record(signal_name, signal_at), WallTimeGuard(margin="0")
    cli.trainer.callbacks[:0] = [guard, record]
    exited = None
    try:
        cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=None if ckpt == "-" else ckpt)
    except SystemExit as exc:  # Lightning ends a SIGTERM'd fit with SIGTERMException after the guard saved
        exited = type(exc).__name__
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if v.numel() == 1}
    (out / f"{name}.json").write_text(json.dumps({"steps": record.steps, "metrics": metrics, "exited": exited,
                                                  "stopped_by": guard.stopped_by, "checkpoint": guard.checkpoint_path}))
    torch.save(cli.model.state_dict(), out / f"{name}.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
