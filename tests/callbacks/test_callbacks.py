"""The cluster callbacks, each in a real (tiny) fit: WallTimeGuard stops with a resumable checkpoint,
NonFiniteGuard stops or skips naming the samples, BadSampleReport lists each bad sample once, Throughput logs
its figures."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch

from tests.helpers import REPO, TINY
from finsta_pl.callbacks import BadSampleReport, NonFiniteError, NonFiniteGuard, Throughput, WallTimeGuard
from finsta_pl.callbacks.wall_time import parse_duration, slurm_end_time


def _model_and_data(tmp_path: Path, *overrides: str):  # noqa: ANN202
    from finsta_pl.cli import build_cli, expand_config_args

    args = expand_config_args(["--config", str(REPO / "experiments" / "videoqa.yaml"), "--config", str(TINY), *overrides])
    cli = build_cli(args, run=False)
    return cli.model, cli.datamodule


def _trainer(tmp_path: Path, callbacks: list, **kwargs) -> L.Trainer:  # noqa: ANN003
    settings = dict(max_epochs=1, limit_train_batches=3, limit_val_batches=1, logger=L.pytorch.loggers.CSVLogger(tmp_path),
                    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                    default_root_dir=tmp_path, accelerator="cpu", devices=1, log_every_n_steps=1)
    return L.Trainer(callbacks=callbacks, **{**settings, **kwargs})


def test_durations_and_slurm_end_time() -> None:
    assert parse_duration("01:00:00:30") == 86430 and parse_duration("10:00") == 600 and parse_duration("90") == 90
    assert slurm_end_time({"SLURM_JOB_END_TIME": "1767225600"}) == 1767225600.0
    assert slurm_end_time({}) is None and slurm_end_time({"SLURM_JOB_END_TIME": "0"}) is None


def test_wall_time_guard_stops_with_a_checkpoint_that_resumes(tiny_world: Path, tmp_path: Path) -> None:
    model, dm = _model_and_data(tmp_path)
    guard = WallTimeGuard(margin="0", max_time="0")  # the deadline is the start: stop after the first step
    trainer = _trainer(tmp_path, [guard], max_epochs=2)
    trainer.fit(model, dm)
    assert trainer.global_step == 1 and guard.checkpoint_path and Path(guard.checkpoint_path).is_file()
    resumed_model, dm2 = _model_and_data(tmp_path)
    resumed = _trainer(tmp_path / "resumed", [], max_epochs=2)
    resumed.fit(resumed_model, dm2, ckpt_path=guard.checkpoint_path)
    assert resumed.global_step == 6  # continued from step 1 to the end of epoch 2 (3 steps per epoch)


@pytest.mark.parametrize("action", ["stop", "skip"])
def test_non_finite_guard_names_the_samples(tiny_world: Path, tmp_path: Path, action: str) -> None:
    model, dm = _model_and_data(tmp_path)
    original = model.training_step
    poisoned: list[list[str]] = []

    def step(batch, batch_idx):  # noqa: ANN001, ANN202
        loss = original(batch, batch_idx)
        if batch_idx == 1:
            poisoned.append(list(batch.ids))
            return loss * float("nan")
        return loss

    model.training_step = step
    guard = NonFiniteGuard(action=action)
    trainer = _trainer(tmp_path, [guard])
    if action == "stop":
        with pytest.raises(NonFiniteError, match=r"non-finite loss at step 1, samples \[") as info:
            trainer.fit(model, dm)
        assert poisoned[0][0] in str(info.value)
        return
    trainer.fit(model, dm)
    assert guard.skipped_steps == 1 and trainer.global_step == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the NaN step changed nothing


def test_bad_sample_report_lists_each_bad_sample_once(tiny_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root, symlinks=True)
    import json

    first = json.loads((root / "msrvtt_qa" / "train_qa.json").read_text())[0]
    (root / "videos" / f"video{first['video_id']}.mp4").write_bytes(b"not a video")
    model, dm = _model_and_data(tmp_path, "--data.init_args.dataset=msrvtt_qa", f"--data.init_args.root={root}")
    report = BadSampleReport()
    trainer = _trainer(tmp_path, [report], max_epochs=2, limit_train_batches=None)
    with pytest.warns(UserWarning):
        trainer.fit(model, dm)
    lines = Path(report.written).read_text().splitlines()
    assert lines[0] == "id\tpath\treason\tstage\tepoch"
    ids = [line.split("\t")[0] for line in lines[1:]]
    assert len(ids) == len(set(ids)) >= 1  # once each, though every epoch met them
    assert all(f"video{first['video_id']}.mp4" in line and "cannot decode" in line for line in lines[1:])


def test_throughput_logs_rates_wait_share_worker_time_and_eta(tiny_world: Path, tmp_path: Path) -> None:
    model, dm = _model_and_data(tmp_path)
    trainer = _trainer(tmp_path, [Throughput()])
    trainer.fit(model, dm)
    metrics = trainer.callback_metrics
    assert float(metrics["throughput/samples_per_s"]) > 0 and float(metrics["throughput/step_s"]) > 0
    assert 0.0 <= float(metrics["throughput/data_wait"]) <= 1.0
    assert float(metrics["throughput/worker_decode_s"]) > 0 and float(metrics["throughput/worker_detect_s"]) > 0
    assert math.isclose(float(metrics["throughput/eta_min"]), 0.0, abs_tol=1e-9)  # the last step: nothing left


def test_slurm_requeue_saves_requeues_and_resumes_without_a_flag(tiny_world: Path, tmp_path: Path) -> None:
    """Lightning's SLURM environment as the sbatch script uses it: SIGUSR1 saves an HPC checkpoint and calls
    ``scontrol requeue <job>`` (a stand-in records the call); the requeued attempt resumes from the checkpoint
    with no ``--ckpt_path``."""
    import json
    import os
    import subprocess
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'scontrol.log'}\n")
    (bin_dir / "scontrol").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "finsta",
           "SLURM_JOB_ID": "4242", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
           "SLURM_NODELIST": "localhost", "SLURM_NTASKS_PER_NODE": "1"}
    args = ["--config", str(REPO / "experiments" / "videoqa.yaml"), "--config", str(TINY), "--trainer.max_epochs=2",
            "--trainer.limit_train_batches=3", f"--trainer.default_root_dir={tmp_path / 'run'}",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'run'}", "--trainer.accelerator=cpu", "--trainer.devices=1"]
    runner = REPO / "tests" / "runners" / "slurm_requeue_runner.py"
    for signal_at in (2, -1):  # the first attempt is preempted after step 2; the requeued one runs to the end
        done = subprocess.run([sys.executable, str(runner), str(tmp_path), str(signal_at), "--", *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    first, second = (json.loads((tmp_path / f"attempt{k}.json").read_text()) for k in (0, 1))
    assert first == {"start": 0, "end": 2, "preempted": True}
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    assert list((tmp_path / "run").glob("hpc_ckpt_*.ckpt"))
    assert second == {"start": 2, "end": 6, "preempted": False}  # resumed from the HPC checkpoint by itself
