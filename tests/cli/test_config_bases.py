"""Shared config bases (``experiments/base/``) and ``extends:`` lists (issue 25).  That every shipped config still
resolves as before is ``test_config_snapshot.py``'s."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"


def _extends(path: Path) -> list[str]:
    base = yaml.safe_load(path.read_text()).get("extends") or []
    return [base] if isinstance(base, str) else list(base)


def test_every_task_config_takes_trainer_and_logger_from_the_bases() -> None:
    """A config either extends another shipped config or is a task config built on the shared bases; no config
    carries its own trainer block from scratch."""
    for path in sorted(EXPERIMENTS.glob("*.yaml")):
        bases = _extends(path)
        assert bases, f"{path.name}: extends nothing"
        if not any((EXPERIMENTS / b).parent == EXPERIMENTS for b in bases):  # a task config: on the bases
            assert {"base/trainer.yaml", "base/logger.yaml"} <= set(bases), path.name
            assert "seed_everything" not in yaml.safe_load(path.read_text()), path.name


def test_bases_sit_outside_the_task_list() -> None:
    """``make train TASK=...`` lists ``experiments/*.yaml``: the bases are no task of their own."""
    assert not list(EXPERIMENTS.glob("trainer.yaml")) and (EXPERIMENTS / "base" / "trainer.yaml").is_file()


def test_an_extends_list_composes_in_order(tmp_path: Path) -> None:
    from finsta_pl.cli import expand_config_args

    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "a.yaml").write_text("trainer: {max_epochs: 1}\n")
    (tmp_path / "base" / "b.yaml").write_text("extends: a.yaml\ntrainer: {max_epochs: 2}\n")
    (tmp_path / "c.yaml").write_text("trainer: {max_epochs: 3}\n")
    (tmp_path / "run.yaml").write_text("extends: [base/b.yaml, c.yaml]\ntrainer: {devices: 1}\n")
    args = expand_config_args(["fit", "--config", str(tmp_path / "run.yaml")])
    configs = [args[i + 1] for i, a in enumerate(args) if a == "--config"]
    # a.yaml (b's base), b.yaml less its own `extends`, c.yaml, then the config itself
    assert len(configs) == 4
    assert configs[0] == str((tmp_path / "base" / "a.yaml").resolve())
    assert yaml.safe_load(configs[1]) == {"trainer": {"max_epochs": 2}}
    assert configs[2] == str((tmp_path / "c.yaml").resolve())
    assert yaml.safe_load(configs[3]) == {"trainer": {"devices": 1}}


def test_an_extends_cycle_is_named(tmp_path: Path) -> None:
    from finsta_pl.cli import expand_config_args
    from finsta_pl.errors import FinstaError

    (tmp_path / "a.yaml").write_text("extends: [b.yaml]\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(FinstaError, match="'extends' cycle"):
        expand_config_args(["--config", str(tmp_path / "a.yaml")])
