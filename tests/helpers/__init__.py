"""Helpers the test modules import (``from tests.helpers import REPO, run_cli``); fixtures stay in
``tests/conftest.py``."""

from tests.helpers.cli import recorded_fit, run_cli, run_cli_here
from tests.helpers.paths import RECORDED_FIT, REPO, RUNNERS, TESTS, TINY

__all__ = ["RECORDED_FIT", "REPO", "RUNNERS", "TESTS", "TINY", "recorded_fit", "run_cli", "run_cli_here"]
