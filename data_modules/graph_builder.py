"""Scene graphs of one sample, built in the DataLoader worker: TSG from text, DSG from frames, HSG, targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from finsta_pl.graphs.container import SceneGraph
from finsta_pl.graphs.detect import make_detector
from finsta_pl.graphs.dsg import DSGConfig, build_dsg
from finsta_pl.graphs.hsg import LinkConfig, alignment_targets, build_hsg, link_objects
from finsta_pl.graphs.parsers import PARSERS, CachedTSGBuilder, make_parser
from finsta_pl.text import char_to_token_spans


@dataclass
class GraphConfig:
    """How scene graphs are built: parser, detector, DSG thresholds, linking and corruption."""

    parser: str = "rule"
    detector: str = "motion"
    detector_args: dict[str, Any] = field(default_factory=dict)
    dsg: DSGConfig = field(default_factory=DSGConfig)
    link: LinkConfig = field(default_factory=LinkConfig)
    node_drop: float = 0.0  # robustness study: drop this fraction of TSG and DSG nodes


class GraphBuilder:
    """Callable that turns (frames, text) into the TSG, DSG, HSG and the OSC/PTC alignment lists."""

    def __init__(self, config: GraphConfig) -> None:
        if config.parser not in PARSERS:
            raise ValueError(f"unknown parser {config.parser!r}; choose one of {list(PARSERS)}")
        self.config = config
        self.parser = make_parser(config.parser)
        self.detector = make_detector(config.detector, **config.detector_args)
        self._tsg = CachedTSGBuilder(self.parser)  # repeated captions/questions are parsed once per worker

    def __call__(
        self, frames: np.ndarray, frame_indices: np.ndarray, text: str, token_offsets: list[tuple[int, int]],
        seed: int = 0,
    ) -> dict[str, Any]:
        """Graphs of one sample; TSG spans are mapped onto the host's token positions via ``token_offsets``."""
        tsg = self._tsg(text)
        spans = char_to_token_spans([tuple(s) for s in tsg.node_span.tolist()], token_offsets)
        tsg = SceneGraph(**{**tsg.__dict__, "node_span": torch.tensor(spans, dtype=torch.long).reshape(-1, 2)})
        detections = self.detector(frames)
        dsg = build_dsg(detections, frame_indices, frames.shape[1:3], self.config.dsg)
        if self.config.node_drop > 0:
            gen = torch.Generator().manual_seed(seed)
            tsg = tsg.drop_nodes(self.config.node_drop, gen)
            dsg = dsg.drop_nodes(self.config.node_drop, gen)
        links = link_objects(tsg, dsg, self.config.link)
        osc, ptc = alignment_targets(tsg, dsg, links, self.config.link.hops)
        return {"tsg": tsg, "dsg": dsg, "hsg": build_hsg(tsg, dsg, links), "osc": osc, "ptc": ptc}
