"""LightningDataModules, dataset readers, video decoding and on-the-fly scene graphs (``finsta_pl.data_modules``)."""

from finsta_pl.data_modules.action import ActionDataModule
from finsta_pl.data_modules.base import ClipConfig, FinstaDataModule, LoaderConfig
from finsta_pl.data_modules.captions import CaptionDataModule
from finsta_pl.data_modules.graph_builder import GraphConfig
from finsta_pl.data_modules.inference import InferenceDataModule
from finsta_pl.data_modules.multiple_choice import MultipleChoiceDataModule
from finsta_pl.data_modules.retrieval import CaptioningDataModule, RetrievalDataModule
from finsta_pl.data_modules.videoqa import VideoQADataModule

__all__ = ["ActionDataModule", "CaptionDataModule", "CaptioningDataModule", "ClipConfig", "FinstaDataModule", "GraphConfig",
           "InferenceDataModule", "LoaderConfig", "MultipleChoiceDataModule", "RetrievalDataModule",
           "VideoQADataModule"]
