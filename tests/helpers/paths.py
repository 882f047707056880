"""Paths the tests share: the repository root, the tiny config overlay and the subprocess runners."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
TINY = TESTS / "configs" / "tiny.yaml"
#: the scripts tests start in their own processes (DDP ranks, signalled fits, SLURM attempts, memory soak)
RUNNERS = TESTS / "runners"
RECORDED_FIT = RUNNERS / "resume_runner.py"
