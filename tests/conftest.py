"""Shared fixtures: a tiny synthetic world generated once per session, CLI runner, tiny batches."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import finsta_pl  # noqa: F401  first: it makes a mismatched torchvision importable before lightning pulls it in

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
RECORDED_FIT = REPO / "tests" / "resume_runner.py"


@pytest.fixture(autouse=True)
def _restore_determinism() -> Iterator[None]:
    """A Trainer built from a shipped config turns on ``torch.use_deterministic_algorithms`` for the whole
    process; each test gets back the mode it started with, so no test depends on which ran before it."""
    import torch

    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


@pytest.fixture(scope="session")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private ``FINSTA_PL_DATA`` so tests never touch the user's cache."""
    home = tmp_path_factory.mktemp("finsta_data")
    os.environ["FINSTA_PL_DATA"] = str(home)
    return home


@pytest.fixture(scope="session")
def tiny_world(data_home: Path) -> Path:
    """The tiny synthetic world of ``tests/configs/tiny.yaml`` (24/12/8 videos)."""
    from finsta_pl.data_modules.synthetic import WorldConfig, ensure_world

    return ensure_world(WorldConfig(num_train=24, num_val=12, num_test=8))


@pytest.fixture(scope="session")
def tiny_datamodule(tiny_world: Path):  # noqa: ANN201
    """A set-up VideoQADataModule on the tiny world, graphs on, no workers."""
    from finsta_pl.data_modules import ClipConfig, LoaderConfig, VideoQADataModule
    from finsta_pl.data_modules.synthetic import WorldConfig

    dm = VideoQADataModule(
        synthetic=WorldConfig(num_train=24, num_val=12, num_test=8),
        clip=ClipConfig(num_frames=4, frame_size=64),
        loader=LoaderConfig(batch_size=6, num_workers=0),
    )
    dm.setup("fit")
    return dm


@pytest.fixture(scope="session")
def tiny_batch(tiny_datamodule):  # noqa: ANN001, ANN201
    """The first training batch of the tiny world."""
    return next(iter(tiny_datamodule.train_dataloader()))


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m finsta_pl.cli`` like the console script, capturing output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "finsta_pl.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def run_cli_here(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
                 env: dict | None = None) -> subprocess.CompletedProcess:
    """``finsta-pl ARGS`` through the console script's own ``main``, in this process: its exit status and what it
    printed, without the ten seconds a new interpreter spends importing Lightning.  For the CLI's messages
    (``--print_config``, errors that stop a run before it trains); fits that should finish use :func:`run_cli`."""
    from finsta_pl.cli import main

    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(cwd)
    capfd.readouterr()
    environ = dict(os.environ)  # the CLI sets some (Lightning's PL_GLOBAL_SEED): none may leak into later tests
    # Lightning's loggers hold the stderr of whichever test first imported Lightning, closed once that test
    # ended: point them at this test's stderr while the CLI runs (else each INFO line prints "Logging error").
    handlers = [h for name in ("lightning.pytorch", "lightning.fabric", "lightning")
                for h in logging.getLogger(name).handlers if type(h) is logging.StreamHandler]
    streams = [h.setStream(sys.stderr) for h in handlers]
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:  # argparse, --print_config and main's one-line errors all end this way
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        os.environ.clear()
        os.environ.update(environ)
        for handler, stream in zip(handlers, streams):
            handler.setStream(stream)
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(["finsta-pl", *args], code, out, err)


def recorded_fit(out: Path, name: str, fit_args: list[str], signal_name: str = "-", signal_at: int = 0,
                 ckpt: str = "-", env: dict[str, str] | None = None) -> dict[str, Any]:
    """One ``finsta-pl fit`` in a fresh process through ``tests/resume_runner.py`` (optionally signalled at step
    ``signal_at``, or resumed from ``ckpt``): its record (per-step ids and losses, final metrics, how it stopped)
    with the final ``state`` dict."""
    import torch

    done = subprocess.run([sys.executable, str(RECORDED_FIT), str(out), name, signal_name, str(signal_at), ckpt, "--",
                           *fit_args], env={**os.environ, **(env or {})}, cwd=out, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads((out / f"{name}.json").read_text())
    result["state"] = torch.load(out / f"{name}.pt", weights_only=True)
    return result
