"""One SLURM job attempt for ``test_slurm_requeue``: ``finsta-pl fit`` under a simulated SLURM environment.

    python tests/runners/slurm_requeue_runner.py OUT SIGNAL_AT_STEP -- <finsta-pl fit args>

Writes ``OUT/attempt<N>.json`` with the global step the fit started from and ended at.  With
``SIGNAL_AT_STEP >= 0`` the process sends itself SIGUSR1 after that step (SLURM's ``--signal=SIGUSR1@90``) and
then dies as a preempted job does (``os._exit``), after Lightning's handler has saved and requeued.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import finsta_pl  # noqa: F401  before lightning: makes a mismatched torchvision importable
import lightning as L


class _Record(L.Callback):
    def __init__(self, out: Path, signal_at: int) -> None:
        self.out, self.signal_at, self.start = out, signal_at, None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.signal_at:
            self._write(trainer, preempted=True)
            os.kill(os.getpid(), signal.SIGUSR1)  # Lightning's handler: hpc checkpoint + scontrol requeue
            os._exit(0)  # SLURM then ends the job

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, preempted=False)

    def _write(self, trainer: L.Trainer, preempted: bool) -> None:
        attempt = len(list(self.out.glob("attempt*.json")))
        (self.out / f"attempt{attempt}.json").write_text(json.dumps(
            {"start": self.start, "end": trainer.global_step, "preempted": preempted}))


def main(argv: list[str]) -> int:
    out, signal_at = Path(argv[0]), int(argv[1])
    from finsta_pl.cli import build_cli, expand_config_args

    cli = build_cli(expand_config_args(argv[3:]), run=False)
    cli.trainer.callbacks.append(_Record(out, signal_at))
    cli.trainer.fit(cli.model, cli.datamodule)  # no ckpt_path: Lightning finds the HPC checkpoint itself
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
