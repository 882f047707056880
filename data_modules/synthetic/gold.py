"""Gold object ids for the scene-graph nodes of an embedded-world sample: which world object each DSG box and
each TSG object node is, so the alignment diagnostics can score the links the model makes
(:class:`~finsta_pl.batch.GoldObjects`; ``align_link_precision``/``recall``).

DSG boxes are matched to the world's gold boxes of the same source frame (Hungarian, IoU >= 0.5, as
``finsta-pl sg-eval`` scores detections); a box left unmatched whose centre lies on a gold object (a grid
cell, a fragment) is that object (the smallest, where several overlap).  A TSG object node is the clip's object of its colour (colours are
distinct within a clip), else of its shape when that shape is unique in the clip; a node naming neither ("how
many objects", a wrong candidate's colour) has no gold.  Nothing here reaches the model's inputs.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from finsta_pl.data_modules.synthetic.world import COLORS
from finsta_pl.graphs.container import NODE, SceneGraph
from finsta_pl.tools.sg_eval import match_boxes
from finsta_pl.tools.sg_match import graph_links


class WorldGold:
    """Callable ``(video_key, frame_indices, dsg, tsgs) -> (dsg gold [n_dsg], [tsg gold [n_tsg]] per text)``,
    or ``None`` when the world has no gold scene graph for that video.  Picklable (DataLoader workers)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __call__(self, video_key: str, frame_indices: Sequence[int], dsg: SceneGraph,
                 tsgs: Sequence[SceneGraph]) -> tuple[Tensor, list[Tensor]] | None:
        gold = _read_gold(str(self.root / "scene_graphs" / f"{video_key}.json"))
        if gold is None:
            return None
        return dsg_gold(dsg, gold, frame_indices), [tsg_gold(g, gold["objects"]) for g in tsgs]


@lru_cache(maxsize=512)  # per worker: a clip's gold is read once, whichever of its texts comes first
def _read_gold(path: str) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None


def dsg_gold(g: SceneGraph, gold: dict[str, Any], frame_indices: Sequence[int]) -> Tensor:
    """[n] gold object id of each DSG object node (its box matched at its keyframe's source frame, else the
    object under its centre), else -1."""
    out = np.full(g.num_nodes, -1, dtype=np.int64)
    h, w = gold["frame_size"]
    boxes = g.node_box.numpy() * np.array([w, h, w, h], np.float32)
    is_object = (g.node_type == NODE["object"]).numpy()
    frames = g.node_frame.numpy()
    for k, source in enumerate(frame_indices):
        nodes = np.flatnonzero(is_object & (frames == k))
        gold_boxes = gold["frames"][int(source)]["boxes"]
        xyxy = np.array([b["box"] for b in gold_boxes], np.float32).reshape(-1, 4)
        for i, j in match_boxes(boxes[nodes], xyxy):
            out[nodes[i]] = gold_boxes[j]["object"]
        loose = nodes[out[nodes] < 0]
        if len(loose) and len(xyxy):
            centre = (boxes[loose, :2] + boxes[loose, 2:]) / 2  # [n, 2]
            inside = ((centre[:, None] >= xyxy[None, :, :2]) & (centre[:, None] < xyxy[None, :, 2:])).all(-1)
            area = np.where(inside, ((xyxy[:, 2:] - xyxy[:, :2]).prod(-1))[None, :], np.inf)
            hit = inside.any(1)
            out[loose[hit]] = np.array([b["object"] for b in gold_boxes])[area[hit].argmin(1)]
    return torch.from_numpy(out)


def tsg_gold(g: SceneGraph, objects: list[dict[str, Any]]) -> Tensor:
    """[n] gold object id of each TSG object node (by its colour attribute, else its unique shape), else -1."""
    out = torch.full((g.num_nodes,), -1, dtype=torch.long)
    by_color = {o["color"]: o["id"] for o in objects}
    shapes = Counter(o["shape"] for o in objects)
    by_shape = {o["shape"]: o["id"] for o in objects if shapes[o["shape"]] == 1}
    _, _, attributes, _ = graph_links(g)
    for i, kind in enumerate(g.node_type.tolist()):
        if kind != NODE["object"]:
            continue
        named = [a for a in attributes[i] if a in COLORS]
        if named:
            out[i] = by_color.get(named[0], -1)  # a colour the clip lacks (a wrong candidate): no gold
        elif g.node_label[i] in by_shape:
            out[i] = by_shape[g.node_label[i]]
    return out

