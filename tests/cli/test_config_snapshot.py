"""Every shipped config resolves (``finsta-pl fit --config experiments/<name>.yaml --print_config``) to what it
resolved to before the configs were rebuilt on shared bases (``experiments/base/``, issue 25).

The snapshot, ``tests/data/print_config/<name>.yaml``, was written by this file's ``__main__`` from the code
as it stood before that change; refresh it the same way only for a change that is meant to alter a resolved
config (a new field of a task or DataModule, a changed default):

    .venv/bin/python tests/cli/test_config_snapshot.py
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "experiments").glob("*.yaml"))
SNAPSHOT = REPO / "tests" / "data" / "print_config"
#: variables the shipped configs read through ``${oc.env:...}``: unset, so their defaults show.
ENV_READ_BY_CONFIGS = ("FINSTA_PL_DATA_ROOT", "FINSTA_PL_CLIP")


def resolved_config(config: Path) -> str:
    """What ``finsta-pl fit --config <config> --print_config`` prints, run from the repository root."""
    from finsta_pl.cli import main

    out = io.StringIO()
    cwd, environ = os.getcwd(), dict(os.environ)
    os.chdir(REPO)
    for key in ENV_READ_BY_CONFIGS:
        os.environ.pop(key, None)
    try:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
            main(["fit", "--config", f"experiments/{config.name}", "--print_config"])
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
    assert stop.value.code in (None, 0), f"{config.name}: --print_config exited with {stop.value.code}"
    return out.getvalue()


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_resolved_config_is_unchanged(config: Path) -> None:
    expected = SNAPSHOT / config.name
    assert expected.is_file(), f"no snapshot for {config.name}: a new config? record it (see this file's docstring)"
    # The same settings; the order of keys within a mapping is not compared (a task's own arguments print before
    # the shared ones it hands on to FinstaTask), the order of lists (callbacks) is.
    resolved, recorded = yaml.safe_load(resolved_config(config)), yaml.safe_load(expected.read_text())
    assert resolved == recorded, f"{config.name} resolves differently than recorded"


def test_every_snapshot_has_its_config() -> None:
    """A config that was removed or renamed takes its snapshot with it."""
    assert sorted(p.name for p in SNAPSHOT.glob("*.yaml")) == [c.name for c in CONFIGS]


if __name__ == "__main__":  # record the snapshot
    SNAPSHOT.mkdir(parents=True, exist_ok=True)
    for path in CONFIGS:
        (SNAPSHOT / path.name).write_text(resolved_config(path))
        print(f"recorded {path.name}", file=sys.stderr)
