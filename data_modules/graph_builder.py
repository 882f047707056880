"""Scene graphs of one sample, built in the DataLoader worker: TSG from text, DSG from frames, HSG, targets."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from finsta_pl.batch import TextGraphs
from finsta_pl.graphs.container import SceneGraph
from finsta_pl.graphs.cache import DetectionCache, DSGCache, cache_key, cached_content_hash, detections_key
from finsta_pl.graphs.dsg import DSGConfig, build_dsg
from finsta_pl.graphs.hsg import (LinkConfig, alignment_targets, build_hsg, has_track_labels, link_objects,
                                  ptc_candidates)
from finsta_pl.graphs.parsers import PARSERS, CachedTSGBuilder, make_parser
from finsta_pl.graphs.precomputed import FrameDetectorSource, PrecomputedDetector, make_source
from finsta_pl.text import char_to_token_spans


@dataclass
class GraphConfig:
    """How scene graphs are built: parser, detector, DSG thresholds, linking, corruption and the DSG cache.

    ``detector``: ``motion``, ``grid`` or ``precomputed`` (``detector_args``: ``root`` of the sidecars,
    ``tolerance``, ``min_score``, ``max_objects``, ``missing``; see ``graphs.precomputed``).  ``cache``: keep
    on disk under ``cache_dir`` (default ``$FINSTA_PL_DATA/dsg_cache``) the detections of every source frame
    a frame detector has seen, and whole DSGs of clips whose keyframes repeat (see ``graphs.cache``).
    """

    parser: str = "rule"
    detector: str = "motion"
    detector_args: dict[str, Any] = field(default_factory=dict)
    cache: bool = False
    cache_dir: str | None = None
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
        self.source = make_source(config.detector, **config.detector_args)
        self.cache = DSGCache(config.cache_dir) if config.cache else None
        frame_detector = isinstance(self.source, FrameDetectorSource)
        self.frame_cache = DetectionCache(config.cache_dir) if config.cache and frame_detector else None
        self._tsg = CachedTSGBuilder(self.parser)  # repeated captions/questions are parsed once per worker
        #: seconds per stage (``detect``, ``track``, ``parse``, ``link``) of the last call, for the sample's
        #: ``timings`` (the Throughput callback and ``make bench`` read them from the batch).
        self.timings: dict[str, float] = {}

    def __call__(
        self, frames: np.ndarray, frame_indices: np.ndarray, texts: Sequence[tuple[str, list[tuple[int, int]]]],
        seed: int = 0, video_key: str = "", video_path: str | Path | None = None, repeatable: bool = True,
    ) -> tuple[SceneGraph, list[TextGraphs]]:
        """The clip's DSG (built once) and, per ``(text, token_offsets)``, its TSG, HSG and alignment lists.
        TSG spans are mapped onto the host's token positions via the offsets; the parsed text may be a prefix
        of the encoded one (a statement before its subtitles).

        ``video_key`` finds precomputed detections; ``video_path`` keys the caches (no cache without it).
        ``repeatable``: these keyframes will come again (evaluation, fixed offsets), so the whole DSG is worth
        caching; training's random offsets are not (their frames' detections are cached all the same).
        """
        self.timings = {"detect": 0.0, "track": 0.0, "parse": 0.0, "link": 0.0}
        dsg = self._dsg(frames, frame_indices, video_key, video_path, repeatable)
        gen = torch.Generator().manual_seed(seed) if self.config.node_drop > 0 else None
        if gen is not None:
            dsg = dsg.drop_nodes(self.config.node_drop, gen)
        link = self.config.link
        labelled = has_track_labels(dsg)
        by_embedding = link.method in {"embedding", "label_embedding"} or (link.method == "auto" and not labelled)
        by_label = link.method == "label_embedding" and labelled  # else the region embedding: no labels to embed
        out = []
        for text, token_offsets in texts:
            parse_start = time.perf_counter()
            tsg = self._tsg(text)
            link_start = time.perf_counter()
            self.timings["parse"] += link_start - parse_start
            spans = char_to_token_spans([tuple(s) for s in tsg.node_span.tolist()], token_offsets)
            tsg = SceneGraph(**{**tsg.__dict__, "node_span": torch.tensor(spans, dtype=torch.long).reshape(-1, 2)})
            if gen is not None:
                tsg = tsg.drop_nodes(self.config.node_drop, gen)
            # Embedding links need the host: the model adds them (and their OSC pairs); none are made here.
            links = [] if by_embedding else link_objects(tsg, dsg, link)
            osc, ptc = alignment_targets(tsg, dsg, links, link.hops)
            if by_embedding:  # the model links: PTC pairs for every link it may make, kept if it makes them
                ptc = ptc_candidates(tsg, dsg, link.hops)
            request = (link.embedding_threshold, link.top_k, by_label) if by_embedding else None
            out.append(TextGraphs(tsg, build_hsg(tsg, dsg, links), osc, ptc, request))
            self.timings["link"] += time.perf_counter() - link_start
        return dsg, out

    def _dsg(self, frames: np.ndarray, frame_indices: np.ndarray, video_key: str,
             video_path: str | Path | None, repeatable: bool) -> SceneGraph:
        def build() -> SceneGraph:
            start = time.perf_counter()
            detections = self._detections(frames, frame_indices, video_key, video_path)
            detected = time.perf_counter()
            graph = build_dsg(detections, frame_indices, frames.shape[1:3], self.config.dsg)
            self.timings["detect"] += detected - start
            self.timings["track"] += time.perf_counter() - detected
            return graph

        if self.cache is None or video_path is None or not repeatable:
            return build()
        detector = self._detector_config()
        if isinstance(self.source, PrecomputedDetector) and self.source.sidecar_path(video_key).is_file():
            detector["sidecar"] = cached_content_hash(self.source.sidecar_path(video_key))  # edited sidecar = miss
        key = cache_key(cached_content_hash(video_path), self.config.dsg, detector, frame_indices,
                        frame_size=frames.shape[1:3])
        return self.cache.get_or_build(key, build)

    def _detections(self, frames: np.ndarray, frame_indices: np.ndarray, video_key: str,
                    video_path: str | Path | None) -> list:
        """Per keyframe, the detections: from the per-frame cache for frame detectors when caching, else the
        source's (sidecars are read, not detected, so they need no second cache)."""
        if self.frame_cache is None or video_path is None:
            return self.source.detections(video_key, frames, frame_indices)
        key = detections_key(cached_content_hash(video_path), self._detector_config(), frames.shape[1:3])
        return self.frame_cache.detections(key, self.source.detector, frames, frame_indices)

    def _detector_config(self) -> dict[str, Any]:
        """The detector's name and arguments: what both cache keys depend on."""
        return {"name": self.config.detector, **self.config.detector_args}
