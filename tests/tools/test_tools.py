"""Small CLI pieces: config composition with ``extends`` and the profile tool."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, TINY, run_cli
from finsta_pl.cli import expand_config_args


def test_extends_chain_is_expanded_base_first(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("trainer:\n  max_epochs: 3\n")
    (tmp_path / "mid.yaml").write_text("extends: base.yaml\nmodel:\n  x: 1\n")
    (tmp_path / "top.yaml").write_text("extends: [mid.yaml]\ndata:\n  y: 2\n")
    args = expand_config_args(["fit", "--config", str(tmp_path / "top.yaml"), "--trainer.devices=1"])
    configs = [args[i + 1] for i, a in enumerate(args) if a == "--config"]
    assert configs[0] == str((tmp_path / "base.yaml").resolve())
    assert yaml.safe_load(configs[1]) == {"model": {"x": 1}} and yaml.safe_load(configs[2]) == {"data": {"y": 2}}
    assert args[0] == "fit" and args[-1] == "--trainer.devices=1"


@pytest.mark.slow  # a whole fit or tool run; make test-slow (CI runs it) keeps it
def test_profile_prints_host_and_finsta_rows(tiny_world: Path, tmp_path: Path) -> None:
    proc = run_cli("profile", "--config", str(REPO / "experiments" / "videoqa.yaml"), "--config", str(TINY),
                   "--batch-size", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert "host" in rows and "Finsta" in rows and "adds" in proc.stdout
    adds = proc.stdout.split("Finsta adds")[1].split()
    assert float(adds[0].rstrip("%")) > 0 and float(adds[1].rstrip("%")) > 0
