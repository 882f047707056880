"""Task LightningModules over the shared host + Finsta backbone."""

from finsta_pl.tasks.base import FinstaTask, OptimConfig
from finsta_pl.tasks.posttrain import PostTrainTask
from finsta_pl.tasks.videoqa import VideoQATask

__all__ = ["FinstaTask", "OptimConfig", "PostTrainTask", "VideoQATask"]
