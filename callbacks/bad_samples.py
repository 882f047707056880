"""Every bad sample of a run named once, and a table of them written at the end (gathered over ranks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from finsta_pl.batch import BadSample


class BadSampleReport(L.Callback):
    """Collects the :class:`~finsta_pl.batch.BadSample` markers that batches carry (samples a worker could
    not load and skipped), warns once per sample, and at the end of fit/validate/test writes
    ``bad_samples.tsv`` (``id, path, reason, stage, epoch``) in the logger's folder (or ``path``), gathered
    over all ranks and de-duplicated by sample id.

    .. code-block:: yaml

        trainer:
          callbacks:
            - class_path: finsta_pl.callbacks.BadSampleReport
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.seen: dict[str, tuple[str, str, str, int]] = {}  # id -> (path, reason, stage, epoch)
        self.merged: dict[str, tuple[str, str, str, int]] | None = None  # over all ranks, once gathered
        self.written: str | None = None

    def _collect(self, trainer: L.Trainer, batch: Any, stage: str) -> None:
        for bad in getattr(batch, "bad_samples", ()) or ():
            if isinstance(bad, BadSample) and bad.id not in self.seen:
                self.seen[bad.id] = (bad.path, bad.reason, stage, trainer.current_epoch)
                rank_zero_warn(f"bad sample {bad.id} ({bad.path}): {bad.reason}")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        """Collect from training batches."""
        self._collect(trainer, batch, "train")

    def on_validation_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                                  batch_idx: int, dataloader_idx: int = 0) -> None:
        """Collect from validation batches."""
        self._collect(trainer, batch, "val")

    def on_test_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int,
                            dataloader_idx: int = 0) -> None:
        """Collect from test batches."""
        self._collect(trainer, batch, "test")

    def _gather(self, trainer: L.Trainer) -> dict[str, tuple[str, str, str, int]]:
        gathered = [self.seen]
        if trainer.world_size > 1:
            import torch.distributed as dist

            gathered = [None] * trainer.world_size
            dist.all_gather_object(gathered, self.seen)
        merged: dict[str, tuple[str, str, str, int]] = {}
        for part in gathered:
            for sample_id, row in (part or {}).items():
                merged.setdefault(sample_id, row)
        self.merged = merged
        return merged

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Gather over ranks (every rank), before any callback's ``on_fit_end`` (the run summary counts them)."""
        self._gather(trainer)

    def _write(self, trainer: L.Trainer, gathered: bool = False) -> None:
        merged = self.merged if gathered and self.merged is not None else self._gather(trainer)
        if trainer.global_rank != 0:
            return
        folder = Path(self.path or trainer.log_dir or trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "bad_samples.tsv" if folder.suffix != ".tsv" else folder
        rows = "".join(f"{i}\t{p}\t{r}\t{s}\t{e}\n" for i, (p, r, s, e) in sorted(merged.items()))
        target.write_text("id\tpath\treason\tstage\tepoch\n" + rows)
        self.written = str(target)
        rank_zero_info(f"BadSampleReport: {len(merged)} bad sample(s) listed in {target}")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the table gathered at the end of training (rank 0)."""
        self._write(trainer, gathered=True)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the table after a test run."""
        self._write(trainer)
