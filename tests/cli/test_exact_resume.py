"""Exact resume: a CPU fit stopped mid-epoch by SIGTERM or SLURM's SIGUSR1 and resumed ends with the weights
(bit-equal), the losses of every step, the metrics and the sample order of an uninterrupted fit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers import REPO, TINY, recorded_fit

SIGNAL_AT = 5  # global step 5 of 8: the second of the four steps of the second epoch


def _fit(out: Path, name: str, root: Path, signal_name: str = "-", ckpt: str = "-",
         env: dict[str, str] | None = None) -> dict[str, Any]:
    args = ["--config", str(REPO / "experiments" / "videoqa.yaml"), "--config", str(TINY), "--trainer.max_epochs=2",
            "--trainer.limit_train_batches=4", f"--trainer.default_root_dir={root}",
            f"--trainer.logger.init_args.save_dir={root}", "--trainer.accelerator=cpu", "--trainer.devices=1"]
    return recorded_fit(out, name, args, signal_name, SIGNAL_AT, ckpt, env)


@pytest.fixture(scope="module")
def uninterrupted(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("uninterrupted")
    return _fit(out, "reference", out / "run")


def _slurm(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'scontrol.log'}\n")
    (bin_dir / "scontrol").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "finsta",
            "SLURM_JOB_ID": "4242", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
            "SLURM_NODELIST": "localhost", "SLURM_NTASKS_PER_NODE": "1"}


# SIGUSR1 (SLURM's requeue signal) takes the same save path as SIGTERM after the guard's deferral; its
# requeue-and-resume is in the default run (test_callbacks.py), its bit-equality here in `make test-slow`.
@pytest.mark.parametrize("signal_name", ["SIGTERM", pytest.param("SIGUSR1", marks=pytest.mark.slow)])
def test_resume_after_a_signal_mid_epoch_equals_the_uninterrupted_fit(uninterrupted: dict[str, Any], tmp_path: Path,
                                                                      signal_name: str) -> None:
    env = _slurm(tmp_path) if signal_name == "SIGUSR1" else None
    stopped = _fit(tmp_path, "stopped", tmp_path / "run", signal_name, env=env)
    assert stopped["stopped_by"] == signal_name and stopped["steps"][-1]["step"] == SIGNAL_AT + 1
    if signal_name == "SIGTERM":  # WallTimeGuard's checkpoint; Lightning then exits the fit
        assert stopped["exited"] == "SIGTERMException" and Path(stopped["checkpoint"]).is_file()
        ckpt = stopped["checkpoint"]
    else:  # Lightning's HPC checkpoint, taken at the end of the step, and the requeue; found again by itself
        assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
        assert list((tmp_path / "run").glob("hpc_ckpt_*.ckpt"))
        ckpt = "-"
    resumed = _fit(tmp_path, "resumed", tmp_path / "run", ckpt=ckpt, env=env)

    reference = uninterrupted["steps"]
    both = stopped["steps"] + resumed["steps"]
    assert [s["step"] for s in both] == [s["step"] for s in reference] == list(range(1, 9))
    assert [s["ids"] for s in both] == [s["ids"] for s in reference]  # the order continues: nothing repeated or skipped
    first_epoch = [i for s in reference[:4] for i in s["ids"]]
    assert len(first_epoch) == len(set(first_epoch))
    assert [s["loss"] for s in both] == [s["loss"] for s in reference]  # bit-equal losses, step by step
    assert uninterrupted["state"].keys() == resumed["state"].keys()
    unequal = [k for k, v in uninterrupted["state"].items() if not torch.equal(v, resumed["state"][k])]
    assert not unequal, f"weights differ after resume: {unequal[:5]}"
    val = {k: v for k, v in uninterrupted["metrics"].items() if k.startswith("val/")}
    assert val and val == {k: v for k, v in resumed["metrics"].items() if k.startswith("val/")}
