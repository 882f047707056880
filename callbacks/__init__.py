"""Lightning callbacks for finsta-pl runs (importable as ``finsta_pl.callbacks``)."""

from finsta_pl.callbacks.run_summary import RunSummary

__all__ = ["RunSummary"]
