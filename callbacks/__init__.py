"""Lightning callbacks for finsta-pl runs (importable as ``finsta_pl.callbacks``)."""

from finsta_pl.callbacks.run_summary import RunSummary
from finsta_pl.callbacks.sg_pictures import SceneGraphPictures

__all__ = ["RunSummary", "SceneGraphPictures"]
