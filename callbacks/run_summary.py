"""One closing line per fit: the monitored metric next to the data's prior baselines, time and checkpoint."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only


class RunSummary(L.Callback):
    """Prints e.g. ``videoqa: val/acc 0.812 (best 0.826, epoch 9) | majority-answer baseline 0.118 | ...``.

    Baselines come from the DataModule's ``info()["baselines"]`` when it has them; the line is also written
    to ``summary.txt`` in the logger's folder so sweeps can grep it.
    """

    def __init__(self, monitor: str = "val/acc") -> None:
        self.monitor = monitor
        self._start = 0.0
        self._log_dir: str | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Start the clock; note the log folder now (``trainer.log_dir`` broadcasts, so every rank must ask)."""
        self._start = time.time()
        self._log_dir = trainer.log_dir

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Compose and print the summary line."""
        info: dict[str, Any] = getattr(pl_module, "data_info", {}) or {}
        task = info.get("task", type(pl_module).__name__)
        run = trainer.logger.name if trainer.logger is not None else None
        # The run's name (the config file's) says which row this is: videoqa_host_only is a videoqa run.
        name = f"{task} ({run})" if run and run != task else task
        parts = [f"{name}: {trainer.current_epoch} epochs"]
        last = trainer.callback_metrics.get(self.monitor)
        if last is not None:
            parts.append(f"{self.monitor} {float(last):.3f}")
        ckpt = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor == self.monitor), None)
        if ckpt is not None and ckpt.best_model_score is not None:
            parts[-1] += f" (best {float(ckpt.best_model_score):.3f})"
        for name, value in (info.get("baselines") or {}).items():
            parts.append(f"{name.replace('_', '-')} baseline {value:.3f}")
        from finsta_pl.callbacks.bad_samples import BadSampleReport

        report = next((c for c in trainer.callbacks if isinstance(c, BadSampleReport)), None)
        if report is not None:  # gathered over ranks at the end of training, before any on_fit_end
            bad = report.merged if report.merged is not None else report.seen
            parts.append(f"{len(bad)} bad sample{'s' if len(bad) != 1 else ''} skipped")
        parts.append(f"{time.time() - self._start:.0f}s")
        if ckpt is not None and ckpt.best_model_path:
            parts.append(f"checkpoint {ckpt.best_model_path}")
        line = " | ".join(parts)
        print(f"\n{line}")
        if self._log_dir:
            Path(self._log_dir).mkdir(parents=True, exist_ok=True)
            (Path(self._log_dir) / "summary.txt").write_text(line + "\n")
