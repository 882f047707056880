"""Task LightningModules over the shared host + Finsta backbone."""

from finsta_pl.tasks.action import ActionRecognitionTask
from finsta_pl.tasks.base import FinstaTask, OptimConfig
from finsta_pl.tasks.captioning import CaptioningTask
from finsta_pl.tasks.inference import VideoLanguageInferenceTask
from finsta_pl.tasks.multiple_choice import MultipleChoiceQATask
from finsta_pl.tasks.posttrain import PostTrainTask
from finsta_pl.tasks.retrieval import RetrievalTask
from finsta_pl.tasks.videoqa import VideoQATask

__all__ = ["ActionRecognitionTask", "CaptioningTask", "FinstaTask", "MultipleChoiceQATask", "OptimConfig", "PostTrainTask",
           "RetrievalTask", "VideoLanguageInferenceTask", "VideoQATask"]
