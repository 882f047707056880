"""Stop cleanly before a job's wall time runs out, or when the scheduler signals its end, with a checkpoint
to resume from (taken between two steps, so the resumed run continues exactly)."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Callable

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
    (a duration from the start of fit, ``DD:HH:MM:SS``); with none of them the clock never stops the run.  The
    ranks' decisions are reduced (any rank late or signalled stops all), so every rank stops at the same step
    (a rank that stopped alone would hang the others in their next collective).  The checkpoint is ``<dirpath>/walltime.ckpt`` (default: the
    ``ModelCheckpoint``'s folder): resume with ``--ckpt_path .../walltime.ckpt``.

    ``signals`` (default on): a ``SIGTERM`` (``scancel``, preemption, a pod eviction) also saves
    ``walltime.ckpt`` and stops at the end of the step it arrived in; Lightning alone only stops, without a
    checkpoint.  SLURM's requeue signal (``SIGUSR1`` with ``auto_requeue``) is deferred the same way:
    Lightning's own handler (HPC checkpoint + ``scontrol requeue``) runs at the end of the step instead of
    wherever the signal lands (mid-step, its checkpoint would hold half-updated loop counters), then the run
    stops.  Any rank's signal counts for all ranks.

    .. code-block:: yaml

        trainer:
          callbacks:
            - class_path: finsta_pl.callbacks.WallTimeGuard
              init_args: {margin: "00:10:00"}        # 10 minutes before SLURM's end (or max_time: "01:00:00:00")
    """

    def __init__(self, margin: str = "00:10:00", end_time: float | None = None, max_time: str | None = None,
                 dirpath: str | None = None, check_every_n_steps: int = 1, signals: bool = True) -> None:
        self.margin = parse_duration(margin)
        self.end_time, self.max_time = end_time, max_time
        self.dirpath = dirpath
        self.every = max(1, check_every_n_steps)
        self.signals = signals
        self.deadline: float | None = None
        self.checkpoint_path: str | None = None
        self.stopped_by: str | None = None  # "wall time", "SIGTERM" or "SIGUSR1" once the guard stopped the run
        self._requeue: tuple[int, Callable] | None = None  # (signal, Lightning's handler) while deferred
        self._requeue_pending = False

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

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Defer Lightning's SLURM requeue handler (registered by now) to the end of a step."""
        if not self.signals or not hasattr(signal, "SIGUSR1"):
            return
        from lightning.fabric.plugins.environments import SLURMEnvironment

        env = trainer._accelerator_connector.cluster_environment
        signum = env.requeue_signal if isinstance(env, SLURMEnvironment) else signal.SIGUSR1
        handler = signal.getsignal(signum) if signum is not None else None
        if callable(handler):  # only Lightning's (auto_requeue) or the user's own: never invent a requeue

            def defer(received: int, frame: FrameType | None) -> None:
                self._requeue_pending = True

            self._requeue = (signum, handler)
            signal.signal(signum, defer)

    def _restore_handler(self) -> None:
        if self._requeue is not None:
            signal.signal(*self._requeue)
            self._requeue = None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Give the requeue signal back to Lightning's handler."""
        self._restore_handler()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Give the requeue signal back to Lightning's handler."""
        self._restore_handler()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Past the deadline or signalled: save (all ranks take part; rank 0 writes) and stop."""
        if (self.deadline is None and not self.signals) or trainer.global_step % self.every:
            return
        late = self.deadline is not None and time.time() >= self.deadline
        sigterm = self.signals and bool(getattr(trainer, "received_sigterm", False))
        flags = torch.tensor([float(late), float(sigterm), float(self._requeue_pending)],
                             device=trainer.strategy.root_device)
        if trainer.world_size > 1:  # one collective per check: every rank takes the same decision
            flags = trainer.strategy.reduce(flags, reduce_op="max")
        late, sigterm, requeue = (bool(f > 0.5) for f in flags.tolist())
        if requeue and self._requeue is not None:
            self._requeue_pending, self.stopped_by = False, "SIGUSR1"
            signum, handler = self._requeue
            handler(signum, None)  # Lightning's: saves hpc_ckpt_<n>.ckpt and requeues the job
            trainer.should_stop = True
            return
        if not (late or sigterm):
            return
        self.stopped_by = "SIGTERM" if sigterm else "wall time"
        folder = Path(self.dirpath or (trainer.checkpoint_callback.dirpath if trainer.checkpoint_callback
                                       and trainer.checkpoint_callback.dirpath else trainer.default_root_dir))
        self.checkpoint_path = str(folder / "walltime.ckpt")
        trainer.save_checkpoint(self.checkpoint_path)
        trainer.should_stop = True
        why = "SIGTERM received" if sigterm else "wall time nearly over"
        rank_zero_info(f"WallTimeGuard: {why}; saved {self.checkpoint_path} and stopping "
                       f"(resume with --ckpt_path {self.checkpoint_path})")
