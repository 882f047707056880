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

Both were written before Finsta's objectives moved apart from its streams (issue 22, point 1).  The names record
was then updated by hand for that move alone (``finsta.logit_scale`` -> ``finsta.objectives.logit_scale``, ...; the
checkpoint keeps the old names): a state dict of the old names must still load, strictly, with the same outputs.
Rerunning ``__main__`` rewrites both records from the code as it stands.
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
#: settings the shipped configs changed after the records were written, set back to the records' so the names
#: compare the tasks' code: post-training turned token distillation on (issue 22, point 5), which adds its heads.
AS_RECORDED = {"posttrain_synthetic": ("--model.init_args.finsta.token_distill=false",)}


def build_task(config: str) -> torch.nn.Module:
    """The task module of ``experiments/<config>.yaml`` at the tiny size (needs ``$FINSTA_PL_DATA`` set)."""
    from finsta_pl.cli import build_cli, expand_config_args

    args = ["--config", str(REPO / "experiments" / f"{config}.yaml"), "--config", str(TINY),
            *AS_RECORDED.get(config, ())]
    return build_cli(expand_config_args(args), run=False).model


def old_name(key: str) -> str:
    """``key`` as it was before the objectives moved out of ``FinstaStreams`` (issue 22, point 1)."""
    return key.replace("finsta.objectives.", "finsta.", 1)


def state_shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    """Every ``state_dict`` entry's shape, by name."""
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("config", TASK_CONFIGS)
def test_task_state_names_and_shapes_are_unchanged(config: str, tiny_world: Path) -> None:
    recorded = json.loads((RECORD / "state_keys.json").read_text())[config]
    torch.manual_seed(0)
    model = build_task(config)
    assert state_shapes(model) == recorded
    # A state dict of the recorded names and shapes loads strictly, and so does one of the names before the move.
    model.load_state_dict({k: torch.zeros(shape) for k, shape in recorded.items()}, strict=True)
    old = {old_name(k): torch.full(shape, float(i)) for i, (k, shape) in enumerate(recorded.items())}
    model.load_state_dict(old, strict=True)
    state = model.state_dict()
    assert all(torch.equal(state[k], old[old_name(k)]) for k in recorded)  # each tensor under its new name


def test_shipped_post_training_adds_only_the_token_heads(tiny_world: Path) -> None:
    """The shipped post-training (token distillation on) has the recorded state plus the token-level heads;
    a post-training checkpoint from before loads with exactly those reported missing."""
    from finsta_pl.cli import build_cli, expand_config_args

    recorded = json.loads((RECORD / "state_keys.json").read_text())["posttrain_synthetic"]
    args = ["--config", str(REPO / "experiments" / "posttrain_synthetic.yaml"), "--config", str(TINY)]
    model = build_cli(expand_config_args(args), run=False).model
    shapes = state_shapes(model)
    added = set(shapes) - set(recorded)
    assert {k: v for k, v in shapes.items() if k in recorded} == recorded and added
    assert all(k.startswith("finsta.objectives.token_heads.") for k in added)
    result = model.load_state_dict({k: torch.zeros(shape) for k, shape in recorded.items()}, strict=False)
    assert set(result.missing_keys) == added and not result.unexpected_keys


def test_old_objective_names_are_exactly_the_objectives_parts() -> None:
    """The renaming pre-hook knows every name the objectives own, and nothing else (with every head on)."""
    from finsta_pl.nn.finsta import FinstaConfig
    from finsta_pl.nn.objectives import OBJECTIVE_NAMES, FinstaObjectives

    objectives = FinstaObjectives(FinstaConfig(token_distill=True), 8, texts=True, hsg_contrast=True, token_grid=True)
    assert {k.split(".", 1)[0] for k in objectives.state_dict()} == set(OBJECTIVE_NAMES)


def test_a_checkpoint_from_before_loads_with_its_weights(tiny_world: Path) -> None:
    from finsta_pl.tasks import MultipleChoiceQATask

    path = RECORD / "mcqa_tiny.ckpt"
    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert "finsta.logit_scale" in saved["state_dict"]  # recorded with the names from before the objectives moved
    model = MultipleChoiceQATask.load_from_checkpoint(path, map_location="cpu", strict=True)
    state = model.state_dict()
    assert {old_name(k) for k in state} == saved["state_dict"].keys()
    assert all(torch.equal(v, saved["state_dict"][old_name(k)]) for k, v in state.items())
    assert asdict(model.host_config) == saved["hyper_parameters"]["host"]  # the CLI saved it as a dict
    # Identical outputs: a model given the same weights under the new names, without the renaming, agrees exactly.
    from finsta_pl.cli import build_cli, expand_config_args

    args = ["--config", str(REPO / "experiments" / "mcqa.yaml"), "--config", str(TINY),
            "--data.init_args.loader.num_workers=0", "--trainer.logger=false"]
    cli = build_cli(expand_config_args(args), run=False)
    fresh = cli.model
    fresh.load_state_dict({k: saved["state_dict"][old_name(k)] for k in fresh.state_dict()}, strict=True)
    cli.datamodule.setup("fit")
    batch = next(iter(cli.datamodule.val_dataloader()))
    model.eval(), fresh.eval()
    with torch.no_grad():
        a, b = model.features(batch), fresh.features(batch)
    assert torch.equal(a.joint, b.joint) and torch.equal(a.video.pooled, b.video.pooled)
    assert a.finsta.losses.keys() == b.finsta.losses.keys() == {"osc", "ptc", "distill"}
    assert all(torch.equal(v, b.finsta.losses[k]) for k, v in a.finsta.losses.items())


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
