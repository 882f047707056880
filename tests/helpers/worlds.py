"""Data modules on the tiny embedded world that several test modules share."""

from __future__ import annotations

from typing import Any


def tiny_qa_module(label_free: bool, batch_size: int = 12) -> Any:
    """A set-up VideoQADataModule on the tiny world (4 frames, no workers): the labelled motion detector with
    label links, or the label-free arm (no detector words, a class-agnostic DSG, links left to the model)."""
    from finsta_pl.data_modules import ClipConfig, LoaderConfig, VideoQADataModule
    from finsta_pl.data_modules.graph_builder import GraphConfig
    from finsta_pl.data_modules.synthetic import WorldConfig
    from finsta_pl.graphs.dsg import DSGConfig
    from finsta_pl.graphs.hsg import LinkConfig

    graphs = GraphConfig(detector_args={"shape_labels": False} if label_free else {},
                         dsg=DSGConfig(class_agnostic=label_free),
                         link=LinkConfig(method="embedding" if label_free else "auto"))
    dm = VideoQADataModule(synthetic=WorldConfig(num_train=24, num_val=12, num_test=8),
                           clip=ClipConfig(num_frames=4, frame_size=64),
                           loader=LoaderConfig(batch_size=batch_size, num_workers=0), graphs=graphs)
    dm.setup("fit")
    return dm
