"""``finsta-pl reproduce`` (command.py): does Finsta help, does post-training transfer, what each part costs.

plan.py says what runs (sizes, one :class:`Run` per number), runner.py runs them (in this process or a pool),
report.py turns the numbers into tables, plots and RESULTS.md.
"""

from finsta_pl.tools.reproduce.command import main, reproduce
from finsta_pl.tools.reproduce.plan import (CLIP4CLIP, HOST_LOSS_ONLY, HOST_ONLY, JOINT, METRIC, POSTTRAINED, SIZES,
                                            Run, Size, plan)
from finsta_pl.tools.reproduce.report import beyond_spread, tables, with_references
from finsta_pl.tools.reproduce.runner import execute, run_all

__all__ = ["CLIP4CLIP", "HOST_LOSS_ONLY", "HOST_ONLY", "JOINT", "METRIC", "POSTTRAINED", "SIZES", "Run", "Size",
           "beyond_spread", "execute", "main", "plan", "reproduce", "run_all", "tables", "with_references"]
