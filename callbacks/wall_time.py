"""Stop cleanly before a job's wall time runs out, with a checkpoint to resume from."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info


def parse_duration(value: str) -> float:
    """``DD:HH:MM:SS`` / ``HH:MM:SS`` / ``MM:SS`` (Lightning's ``max_time`` strings) or plain seconds -> seconds."""
    parts = [float(p) for p in str(value).split(":")]
    if len(parts) > 4:
        raise ValueError(f"not a duration: {value!r} (DD:HH:MM:SS)")
    scale = (86400, 3600, 60, 1)[-len(parts):]
    return sum(p * s for p, s in zip(parts, scale))


def slurm_end_time(environ: dict[str, str] | None = None) -> float | None:
    """The job's end as a Unix time from SLURM (``SLURM_JOB_END_TIME``, set by SLURM >= 21.08), else ``None``."""
    value = (environ if environ is not None else os.environ).get("SLURM_JOB_END_TIME")
    return float(value) if value and value.isdigit() and int(value) > 0 else None


class WallTimeGuard(L.Callback):
    """Saves a resumable checkpoint and stops ``margin`` before the job ends.

    The end comes from ``end_time`` (Unix seconds), else SLURM's ``SLURM_JOB_END_TIME``, else ``max_time``
    (a duration from the start of fit, ``DD:HH:MM:SS``); with none of them the guard does nothing.  Rank 0
    decides and broadcasts, so every rank stops at the same step (a rank that stopped alone would hang the
    others in their next collective).  The checkpoint is ``<dirpath>/walltime.ckpt`` (default: the
    ``ModelCheckpoint``'s folder): resume with ``--ckpt_path .../walltime.ckpt``.

    .. code-block:: yaml

        trainer:
          callbacks:
            - class_path: finsta_pl.callbacks.WallTimeGuard
              init_args: {margin: "00:10:00"}        # 10 minutes before SLURM's end (or max_time: "01:00:00:00")
    """

    def __init__(self, margin: str = "00:10:00", end_time: float | None = None, max_time: str | None = None,
                 dirpath: str | None = None, check_every_n_steps: int = 1) -> None:
        self.margin = parse_duration(margin)
        self.end_time, self.max_time = end_time, max_time
        self.dirpath = dirpath
        self.every = max(1, check_every_n_steps)
        self.deadline: float | None = None
        self.checkpoint_path: str | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Fix the deadline: explicit end, SLURM's end, or ``max_time`` from now."""
        end = self.end_time or slurm_end_time()
        if end is None and self.max_time is not None:
            end = time.time() + parse_duration(self.max_time)
        self.deadline = None if end is None else end - self.margin
        if self.deadline is not None:
            rank_zero_info(f"WallTimeGuard: stopping with a checkpoint after "
                           f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.deadline))} "
                           f"({timedelta(seconds=round(self.margin))} before the job's end)")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Past the deadline: save ``walltime.ckpt`` (all ranks take part; rank 0 writes) and stop."""
        if self.deadline is None or trainer.global_step % self.every:
            return
        late = torch.tensor(float(time.time() >= self.deadline))
        late = trainer.strategy.broadcast(late, src=0)
        if float(late) < 0.5:
            return
        folder = Path(self.dirpath or (trainer.checkpoint_callback.dirpath if trainer.checkpoint_callback
                                       and trainer.checkpoint_callback.dirpath else trainer.default_root_dir))
        self.checkpoint_path = str(folder / "walltime.ckpt")
        trainer.save_checkpoint(self.checkpoint_path)
        trainer.should_stop = True
        rank_zero_info(f"WallTimeGuard: wall time nearly over; saved {self.checkpoint_path} and stopping "
                       f"(resume with --ckpt_path {self.checkpoint_path})")
