"""Lightning callbacks for finsta-pl runs (importable as ``finsta_pl.callbacks``); each works alone from any
LightningCLI config or a Python ``Trainer``."""

from finsta_pl.callbacks.alignment_monitor import AlignmentMonitor
from finsta_pl.callbacks.bad_samples import BadSampleReport
from finsta_pl.callbacks.nonfinite_guard import NonFiniteError, NonFiniteGuard
from finsta_pl.callbacks.run_summary import RunSummary
from finsta_pl.callbacks.sg_pictures import SceneGraphPictures
from finsta_pl.callbacks.throughput import Throughput
from finsta_pl.callbacks.wall_time import WallTimeGuard

__all__ = ["AlignmentMonitor", "BadSampleReport", "NonFiniteError", "NonFiniteGuard", "RunSummary", "SceneGraphPictures",
           "Throughput", "WallTimeGuard"]
