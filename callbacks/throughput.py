"""Samples per second, step time, the share of each step spent waiting for data, worker time and ETA."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class Throughput(L.Callback):
    """Logs per training step (and shows in the progress bar):

    - ``throughput/samples_per_s``: clips per second over the last step, data wait included;
    - ``throughput/step_s``: the step itself (forward, backward, optimizer);
    - ``throughput/data_wait``: the share of the step's wall time spent waiting for the next batch (a share
      near 0 means the workers keep up; near 1, the model waits for data);
    - ``throughput/worker_<stage>_s``: per sample, the workers' own time per stage (``decode``, ``text``,
      ``detect``, ``track``, ``parse``, ``link``, ``collate``),
      measured inside the workers and carried by the batch;
    - ``throughput/eta_min``: minutes left in the fit at the average step time so far.

    .. code-block:: yaml

        trainer:
          callbacks:
            - class_path: finsta_pl.callbacks.Throughput
    """

    def __init__(self, prog_bar: bool = True) -> None:
        self.prog_bar = prog_bar
        self._last_end: float | None = None
        self._start = self._wait = 0.0
        self._total = 0.0
        self._steps = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The first batch of an epoch waits for worker start-up; count from the epoch start."""
        self._last_end = time.perf_counter()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        """Mark the step start; the time since the last step ended was spent waiting for this batch."""
        self._start = time.perf_counter()
        self._wait = self._start - (self._last_end if self._last_end is not None else self._start)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Log the figures of this step."""
        end = time.perf_counter()
        step, total = end - self._start, end - self._start + self._wait
        self._last_end = end
        self._total += total
        self._steps += 1
        clips = int(getattr(batch, "batch_size", 0) or 0)
        values = {"throughput/samples_per_s": clips / total if total > 0 else 0.0, "throughput/step_s": step,
                  "throughput/data_wait": self._wait / total if total > 0 else 0.0}
        for stage, seconds in (getattr(batch, "worker_seconds", None) or {}).items():
            values[f"throughput/worker_{stage}_s"] = seconds / max(clips, 1)
        remaining = max(0, trainer.estimated_stepping_batches - trainer.global_step)
        values["throughput/eta_min"] = remaining * (self._total / self._steps) / 60
        for name, value in values.items():
            pl_module.log(name, value, on_step=True, on_epoch=False, batch_size=max(clips, 1),
                          prog_bar=self.prog_bar and name in {"throughput/samples_per_s", "throughput/eta_min"})
