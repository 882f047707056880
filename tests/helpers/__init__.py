"""Helpers the test modules import (``from tests.helpers import REPO, run_cli``); fixtures stay in
``tests/conftest.py``."""

from tests.helpers.cli import recorded_fit, run_cli, run_cli_here
from tests.helpers.paths import RECORDED_FIT, REPO, RUNNERS, TESTS, TINY
from tests.helpers.worlds import tiny_qa_module

__all__ = ["RECORDED_FIT", "REPO", "RUNNERS", "TESTS", "TINY", "recorded_fit", "run_cli", "run_cli_here",
           "tiny_qa_module"]
