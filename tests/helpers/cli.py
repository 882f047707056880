"""Running ``finsta-pl`` from tests: in a new process (:func:`run_cli`), in this one (:func:`run_cli_here`), or
as a recorded fit through ``tests/runners/resume_runner.py`` (:func:`recorded_fit`)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import RECORDED_FIT


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
    """One ``finsta-pl fit`` in a fresh process through ``tests/runners/resume_runner.py`` (optionally signalled at step
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
