"""Models and batches the model benchmarks share: a task built from a shipped config (as ``finsta-pl profile``
does), real batches from its DataModule, and real samples whose clips are given a chosen number of objects per
frame and of frames, with their DSG, HSG and alignment lists rebuilt by the library's own graph builders.

The embedded synthetic world has ~2 objects per frame; the encoder and scaling benchmarks need 4 .. 32, so the
detections are synthetic (moving boxes whose labels are the clip's own, so cross-modal links still form) and
everything downstream of the detector is the pipeline's: tracking, spatial/motion predicates, linking.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

import finsta_pl  # noqa: F401  first: it makes a mismatched torchvision importable before lightning pulls it in
import torch

from finsta_pl.batch import FinstaBatch, Sample, SampleText, TextGraphs, collate_samples
from finsta_pl.graphs.container import NODE, SceneGraph
from finsta_pl.graphs.detect import Detection
from finsta_pl.graphs.dsg import build_dsg
from finsta_pl.graphs.hsg import LinkConfig, alignment_targets, build_hsg, link_objects

REPO = Path(__file__).resolve().parents[1]
#: composed after a task config in the benchmarks' ``tiny`` mode (the test suite): the tests' tiny world and model.
TINY_CONFIGS = ["tests/configs/tiny.yaml"]
_COLORS = ("red", "green", "blue", "yellow", "purple", "orange", "cyan", "pink")


def build_task(configs: list[str], overrides: list[str] = (), batch_size: int = 32) -> tuple[Any, Any]:
    """``(model, datamodule)`` of ``finsta-pl fit --config ...`` with ``overrides``, no workers, set up for fit."""
    from finsta_pl.cli import build_cli, expand_config_args

    args = expand_config_args([a for c in configs for a in ("--config", str(REPO / c))])
    args += [f"--data.init_args.loader.batch_size={batch_size}", "--data.init_args.loader.num_workers=0",
             "--trainer.logger=false", *overrides]
    cli = build_cli(args, run=False)
    cli.datamodule.setup("fit")
    return cli.model, cli.datamodule


def stream_inputs(model: Any, batch: FinstaBatch) -> tuple:
    """The arguments ``FinstaTask.features`` passes the streams for ``batch``: ``(batch, host, video, text,
    joint, true_texts)``, the host's features computed without gradient (``text``, ``joint``: ``None`` for
    text-less tasks)."""
    host = model.host
    with torch.no_grad():
        video = host.encode_video(batch.frames)
        text = host.encode_text(batch.text_ids) if batch.num_texts else None
        joint = host.fuse(video.select(batch.text_sample), text) if text is not None else None
    return batch, host, video, text, joint, model.true_texts(batch)


def train_batch(datamodule: Any) -> FinstaBatch:
    """The first training batch, loaded before any timing starts."""
    return next(iter(datamodule.train_dataloader()))


def _detections(objects: int, frames: int, side: int, labels: list[str], gen: np.random.Generator) -> list[list[Detection]]:
    """``objects`` boxes per frame moving at constant velocity (a few pixels per keyframe) inside the frame."""
    size = gen.uniform(0.08, 0.2, (objects, 2)) * side
    start = gen.uniform(0, 1, (objects, 2)) * (side - size)
    velocity = gen.uniform(-0.03, 0.03, (objects, 2)) * side
    out = []
    for t in range(frames):
        corner = np.clip(start + t * velocity, 0, side - size)
        dets = []
        for i in range(objects):
            x, y = corner[i]
            color = _COLORS[i % len(_COLORS)]
            dets.append(Detection((float(x), float(y), float(x + size[i, 0]), float(y + size[i, 1])),
                                  labels[i % len(labels)], 1.0, color, (0.0, 0.0, 0.0), [color]))
        out.append(dets)
    return out


def _object_labels(sample: Sample) -> list[str]:
    """Object labels of the clip's own DSG and of its texts' TSGs (so label linking finds pairs)."""
    graphs = [sample.dsg] + [t.graphs.tsg for t in sample.texts if t.graphs is not None]
    labels = [lab for g in graphs if g is not None
              for lab, kind in zip(g.node_label, g.node_type.tolist()) if kind == NODE["object"]]
    return list(dict.fromkeys(labels)) or ["object"]


def with_objects(sample: Sample, objects: int, frames: int, seed: int = 0, link: LinkConfig = LinkConfig()) -> Sample:
    """``sample`` with ``frames`` keyframes (its own, resampled) holding ``objects`` moving objects each: DSG
    from :func:`build_dsg`, HSG, links and OSC/PTC lists rebuilt for every text as the worker builds them."""
    gen = np.random.default_rng(seed)
    idx = np.linspace(0, sample.frames.shape[0] - 1, frames).round().astype(int)
    clip = np.ascontiguousarray(sample.frames[idx])
    side = int(max(clip.shape[1:3]))
    dsg: SceneGraph = build_dsg(_detections(objects, frames, side, _object_labels(sample), gen),
                                np.arange(frames) * 4, clip.shape[1:3])
    texts = []
    for text in sample.texts:
        tsg = text.graphs.tsg
        links = link_objects(tsg, dsg, link)
        osc, ptc = alignment_targets(tsg, dsg, links, link.hops)
        texts.append(SampleText(text.ids, TextGraphs(tsg, build_hsg(tsg, dsg, links), osc, ptc), text.targets))
    return dataclasses.replace(sample, frames=clip, texts=texts, dsg=dsg)


def object_batch(datamodule: Any, batch_size: int, objects: int, frames: int = 8, seed: int = 0) -> FinstaBatch:
    """A collated batch of the first ``batch_size`` training samples, each :func:`with_objects`."""
    ds = datamodule.datasets["train"]
    samples = [with_objects(ds[k % len(ds)], objects, frames, seed + k) for k in range(batch_size)]
    return collate_samples(samples, datamodule.vocab.encode_label)


def graph_sizes(batch: FinstaBatch) -> dict[str, tuple[int, int, int]]:
    """``(nodes, edges, largest graph)`` of each graph stream of ``batch``."""
    out = {}
    for name in ("tsg", "dsg", "hsg"):
        g = getattr(batch, name)
        if g is not None:
            nmax = int(torch.bincount(g.node_graph, minlength=g.num_graphs).max()) if g.num_nodes else 0
            out[name] = (g.num_nodes, int(g.edge_index.shape[1]), nmax)
    return out
