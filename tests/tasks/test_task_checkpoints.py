"""Checkpoints written before the tasks took their shared arguments once (``**kwargs`` to ``FinstaTask``, issue 25)
still load.

Two records, written by this file's ``__main__`` from the code as it stood before that change:
- ``tests/data/task_checkpoints/state_keys.json``: every task's parameter and buffer names and shapes, built from
  its shipped config shrunk by ``tests/configs/tiny.yaml``.  Equal names and shapes are what a checkpoint's
  ``state_dict`` needs to load strictly.
- ``tests/data/task_checkpoints/mcqa_tiny.ckpt``: a real one-step fit of ``mcqa.yaml`` (the task whose scorer
  became the base's ``classifier``), optimizer state left out to keep it small; loaded by Lightning as a user
  would, and through the CLI's ``validate --ckpt_path``.

    .venv/bin/python tests/tasks/test_task_checkpoints.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
RECORD = REPO / "tests" / "data" / "task_checkpoints"
#: one shipped config per task class.
TASK_CONFIGS = ("videoqa", "mcqa", "retrieval", "captioning", "action", "inference", "posttrain_synthetic")


def build_task(config: str) -> torch.nn.Module:
    """The task module of ``experiments/<config>.yaml`` at the tiny size (needs ``$FINSTA_PL_DATA`` set)."""
    from finsta_pl.cli import build_cli, expand_config_args

    args = ["--config", str(REPO / "experiments" / f"{config}.yaml"), "--config", str(TINY)]
    return build_cli(expand_config_args(args), run=False).model


def state_shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    """Every ``state_dict`` entry's shape, by name."""
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("config", TASK_CONFIGS)
def test_task_state_names_and_shapes_are_unchanged(config: str, tiny_world: Path) -> None:
    recorded = json.loads((RECORD / "state_keys.json").read_text())[config]
    torch.manual_seed(0)
    model = build_task(config)
    assert state_shapes(model) == recorded
    # A state dict of the recorded names and shapes loads strictly.
    model.load_state_dict({k: torch.zeros(shape) for k, shape in recorded.items()}, strict=True)


def test_a_checkpoint_from_before_loads_with_its_weights() -> None:
    from finsta_pl.tasks import MultipleChoiceQATask

    path = RECORD / "mcqa_tiny.ckpt"
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = MultipleChoiceQATask.load_from_checkpoint(path, map_location="cpu", strict=True)
    state = model.state_dict()
    assert state.keys() == saved["state_dict"].keys()
    assert all(torch.equal(state[k], v) for k, v in saved["state_dict"].items())
    assert asdict(model.host_config) == saved["hyper_parameters"]["host"]  # the CLI saved it as a dict


def test_the_cli_validates_a_checkpoint_from_before(tiny_world: Path, tmp_path: Path) -> None:
    from finsta_pl.cli import build_cli, expand_config_args

    args = ["validate", "--config", str(REPO / "experiments" / "mcqa.yaml"), "--config", str(TINY),
            f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--trainer.callbacks=[]", "--data.init_args.loader.num_workers=0",
            f"--ckpt_path={RECORD / 'mcqa_tiny.ckpt'}"]
    cli = build_cli(expand_config_args(args))
    assert "val/acc" in cli.trainer.callback_metrics


def _record() -> None:
    """Write the records from the code as it stands (see the module docstring)."""
    from finsta_pl.cli import build_cli, expand_config_args

    RECORD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FINSTA_PL_DATA"] = str(Path(tmp) / "data")
        shapes = {}
        for config in TASK_CONFIGS:
            torch.manual_seed(0)
            shapes[config] = state_shapes(build_task(config))
        (RECORD / "state_keys.json").write_text(json.dumps(shapes, indent=1) + "\n")
        out = Path(tmp) / "fit"
        build_cli(expand_config_args([
            "fit", "--config", str(REPO / "experiments" / "mcqa.yaml"), "--config", str(TINY),
            "--trainer.max_steps=1", "--trainer.limit_val_batches=0", f"--trainer.default_root_dir={out}",
            f"--trainer.logger.init_args.save_dir={out}", "--data.init_args.loader.num_workers=0"]))
        checkpoint = torch.load(next(out.rglob("last.ckpt")), map_location="cpu", weights_only=False)
        checkpoint["optimizer_states"], checkpoint["lr_schedulers"] = [], []  # not needed to load; 2/3 of the size
        torch.save(checkpoint, RECORD / "mcqa_tiny.ckpt")
    size = (RECORD / "mcqa_tiny.ckpt").stat().st_size
    print(f"recorded {len(shapes)} tasks' state names; mcqa_tiny.ckpt {size / 1e6:.2f} MB", file=sys.stderr)


if __name__ == "__main__":
    _record()
