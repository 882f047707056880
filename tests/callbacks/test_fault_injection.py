"""A fit over a world with broken videos, odd captions and malformed records: with ``on_bad_sample: skip`` it
trains to the end and names every bad sample once (table and summary line); with ``raise`` the first one
stops the run with its path."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest

from tests.helpers import REPO, TINY
from tests.helpers.fault_injection import inject_faults
from finsta_pl.callbacks import BadSampleReport, RunSummary
from finsta_pl.errors import BadSampleError


def _broken_world(tiny_world: Path, tmp_path: Path):  # noqa: ANN202
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root, symlinks=True, ignore=shutil.ignore_patterns("datasets"))
    return root, inject_faults(root, num_frames=4)


def _fit(root: Path, tmp_path: Path, callbacks: list, *overrides: str) -> L.Trainer:
    from finsta_pl.cli import build_cli, expand_config_args

    args = expand_config_args(["--config", str(REPO / "experiments" / "videoqa.yaml"), "--config", str(TINY),
                               "--data.init_args.dataset=msrvtt_qa", f"--data.init_args.root={root}", *overrides])
    cli = build_cli(args, run=False)
    trainer = L.Trainer(max_epochs=1, limit_val_batches=1, logger=L.pytorch.loggers.CSVLogger(tmp_path),
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        default_root_dir=tmp_path, accelerator="cpu", devices=1, callbacks=callbacks)
    trainer.fit(cli.model, cli.datamodule)
    return trainer


def test_a_faulty_dataset_trains_to_the_end_naming_each_bad_sample_once(tiny_world: Path, tmp_path: Path) -> None:
    root, faults = _broken_world(tiny_world, tmp_path)
    report = BadSampleReport()
    with pytest.warns(UserWarning, match="skipping sample"):
        trainer = _fit(root, tmp_path, [report, RunSummary()])
    assert trainer.global_step == 8  # 49 records of 6 -> 8 full batches: every step ran, bad samples left out
    rows = [line.split("\t") for line in Path(report.written).read_text().splitlines()[1:]]
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) and set(ids) == set(faults.bad)  # each named once, no good sample among them
    for sample_id, path, reason, stage, _ in rows:
        assert faults.bad[sample_id] in path + reason and stage == "train"
    summary = (Path(trainer.log_dir) / "summary.txt").read_text()
    assert f"{len(faults.bad)} bad samples skipped" in summary
    dataset = trainer.datamodule.datasets["train"]
    short = next(i for i, s in enumerate(dataset.specs) if s.video == faults.short_video)
    sample = dataset[short]  # fewer frames than num_frames: frames repeat, the sample is good
    assert sample.frames.shape[0] == 4 and len(np.unique(sample.frames.reshape(4, -1), axis=0)) <= 2


def test_on_bad_sample_raise_stops_at_the_first_one_with_its_path(tiny_world: Path, tmp_path: Path) -> None:
    root, faults = _broken_world(tiny_world, tmp_path)
    with pytest.raises(BadSampleError) as info:
        _fit(root, tmp_path, [], "--data.init_args.on_bad_sample=raise")
    message = str(info.value)
    assert any(where in message for where in faults.bad.values()) and (str(root) in message)
