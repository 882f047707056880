"""Dynamic scene graphs (DSG): per-keyframe scene graphs plus temporal coreference edges.

Detections are linked across keyframes by Hungarian matching on box overlap, centre distance and colour
(:func:`track`); spatial predicates come from box geometry in each frame (plus annotated relations when the
detections carry them: Action Genome, VidVRD/VidOR sidecars), motion predicates (move, grow, appear, approach)
from the tracks, with direction and speed as adverb nodes, the same Levi-graph vocabulary
as the TSG so both live in one space.  Nodes are ordered by frame, which the recurrent stream relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from finsta_pl.graphs.container import EDGE, NODE, SceneGraph
from finsta_pl.graphs.detection import Detection
from finsta_pl.graphs.precomputed import given_tracks


@dataclass(frozen=True)
class DSGConfig:
    """Thresholds of the DSG builder (speeds in frame sides per source frame, distances in frame sides)."""

    move_speed: float = 0.006
    quick_speed: float = 0.02
    grow_rate: float = 0.015  # relative growth of sqrt(area) per source frame
    near_distance: float = 0.25
    # Spatial and approach predicates only between an object and its ``spatial_neighbours`` nearest others in
    # the frame (a pair is kept when either sees the other): all pairs would grow the graph with the square of
    # the objects per frame (16 objects: 120 relations a frame), this keeps it linear.  5 keeps every pair of
    # the motion detector's at most 6 objects; detectors that keep more (grid >= 3, torchvision's top_k,
    # sidecars) get fewer spatial relations than before stop 19.
    spatial_neighbours: int = 5
    # Class-agnostic DSGs (the label-free arm of issue 22): tracked boxes and the graph's structure only, every
    # node named by its kind ("object", "relation"); no colour, shape, direction or speed word in a label,
    # attribute or predicate (attribute and adverb nodes are left out).  What moves where is in the boxes.
    class_agnostic: bool = False

    def __post_init__(self) -> None:
        if self.spatial_neighbours < 1:
            raise ValueError(f"DSGConfig.spatial_neighbours must be >= 1, got {self.spatial_neighbours}")
    approach_rate: float = 0.006  # decrease of the centre distance per source frame
    match_cost: float = 0.8  # above this a detection starts a new track
    color_weight: float = 0.5
    # Tracking of real detections (see :func:`track`): a class change costs ``class_weight`` (two specific
    # labels; generic ones never), appearance features ``appearance_weight`` x cosine distance (sidecar
    # ``feature`` vectors), a lost track is predicted forward at its last velocity and stays matchable for
    # ``max_age`` keyframes.  ``class_weight: 0, appearance_weight: 0, max_age: 0 (unbounded), predict: false``
    # is the tracker of stop 16 (``sg-eval --tracking`` compares the two).
    class_weight: float = 0.3  # 0.3, not a hard gate: the motion detector's shape labels flicker (sg-eval --tracking)
    appearance_weight: float = 0.5
    max_age: int = 0
    predict: bool = True


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a [n, 4]`` and ``b [m, 4]``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-9)


_GENERIC_LABELS = {"object", "region", "thing"}


def track(detections: list[list[Detection]], frame_side: float, config: DSGConfig = DSGConfig()) -> list[list[int]]:
    """Track id of every detection: keyframe-to-keyframe Hungarian matching of detections to live tracks on
    (1 - IoU), centre distance, colour, class and appearance (see :class:`DSGConfig`).

    A track missed in a keyframe is not dropped: it is matched at its last box moved by its last velocity
    (``predict``) until ``max_age`` keyframes have passed without it.  Annotated tracks (sidecar ``track`` ids,
    e.g. VidVRD/VidOR ``tid``) are used as they are when every detection of the clip has one.
    """
    given = given_tracks(detections)
    if given is not None:
        return given
    clip = _ClipArrays.of(detections)
    ids: list[list[int]] = []
    # Live tracks as parallel lists: track id, its last detection (clip index), velocity (px per keyframe),
    # keyframe last seen.
    live_id: list[int] = []
    live_det: list[int] = []
    live_vel: list[np.ndarray] = []
    live_seen: list[int] = []
    next_id = 0
    for k, dets in enumerate(detections):
        cur = [-1] * len(dets)
        if config.max_age > 0:
            keep = [i for i, seen in enumerate(live_seen) if k - seen <= config.max_age]
            live_id, live_det = [live_id[i] for i in keep], [live_det[i] for i in keep]
            live_vel, live_seen = [live_vel[i] for i in keep], [live_seen[i] for i in keep]
        first = clip.start[k]
        if live_id and dets:
            cost = _match_cost(clip, live_det, live_vel, live_seen, first, len(dets), k, frame_side, config)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] <= config.match_cost:
                    cur[c] = live_id[r]
        slot = {t: i for i, t in enumerate(live_id)}
        for j in range(len(dets)):
            if cur[j] < 0:
                cur[j], next_id = next_id, next_id + 1
                live_id.append(cur[j])
                live_det.append(first + j)
                live_vel.append(np.zeros(2))
                live_seen.append(k)
                continue
            i = slot[cur[j]]
            gap = max(k - live_seen[i], 1)
            live_vel[i] = (clip.center[first + j] - clip.center[live_det[i]]) / gap
            live_det[i], live_seen[i] = first + j, k
        ids.append(cur)
    return ids


@dataclass(frozen=True)
class _ClipArrays:
    """A clip's detections as arrays (boxes, centres, mean colours) indexed by position in the flattened clip,
    so the matcher builds its cost matrices with a few array operations instead of attribute walks."""

    start: list[int]  # clip index of each keyframe's first detection
    box: np.ndarray  # [N, 4]
    center: np.ndarray  # [N, 2]
    rgb: np.ndarray  # [N, 3]
    label: list[str]
    feature: list

    @staticmethod
    def of(detections: list[list[Detection]]) -> "_ClipArrays":
        """The arrays of ``detections`` (one list per keyframe)."""
        flat = [d for dets in detections for d in dets]
        sizes = [len(dets) for dets in detections]
        box = np.array([d.box for d in flat], dtype=np.float64).reshape(-1, 4)
        return _ClipArrays(
            start=np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist(), box=box,
            center=np.stack([(box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2], 1),
            rgb=np.array([d.mean_rgb for d in flat], dtype=np.float64).reshape(-1, 3),
            label=[d.label for d in flat], feature=[getattr(d, "feature", None) for d in flat])


def _norm(x: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis (``np.linalg.norm``'s arithmetic without its dispatch)."""
    return np.sqrt((x * x).sum(-1))


def _match_cost(clip: _ClipArrays, live_det: list[int], live_vel: list[np.ndarray], live_seen: list[int],
                first: int, count: int, k: int, frame_side: float, config: DSGConfig) -> np.ndarray:
    """``[tracks, detections]`` matching cost of keyframe ``k`` (its detections are clip indices
    ``first .. first + count``); a track's box is moved to where its velocity puts it now."""
    last = np.array(live_det)
    now = slice(first, first + count)
    if config.predict:
        shift = np.array(live_vel) * (k - np.array(live_seen, dtype=np.float64))[:, None]
    else:
        shift = np.zeros((len(live_det), 2))
    a = clip.box[last] + np.concatenate([shift, shift], 1)
    b = clip.box[now]
    dist = _norm((clip.center[last] + shift)[:, None] - clip.center[now][None]) / (0.25 * frame_side)
    col = _norm(clip.rgb[last][:, None] - clip.rgb[now][None]) / 441.7
    cost = 0.5 * (1 - _iou(a, b)) + 0.5 * np.minimum(dist, 1.0) + config.color_weight * col
    if config.class_weight:
        la = [clip.label[i] for i in live_det]
        lb = clip.label[now]
        differ = np.array([[x != y and x not in _GENERIC_LABELS and y not in _GENERIC_LABELS for y in lb]
                           for x in la])
        cost = cost + config.class_weight * differ
    if config.appearance_weight:
        fa = [clip.feature[i] for i in live_det]
        fb = clip.feature[now]
        if all(f is not None for f in fa + fb) and fa and fb:
            ua = np.array(fa, float)
            ub = np.array(fb, float)
            ua /= np.maximum(np.linalg.norm(ua, axis=1, keepdims=True), 1e-9)
            ub /= np.maximum(np.linalg.norm(ub, axis=1, keepdims=True), 1e-9)
            cost = cost + config.appearance_weight * (1 - ua @ ub.T) / 2
    return cost


class _Graph:
    def __init__(self, h: int, w: int, agnostic: bool = False) -> None:
        self.h, self.w = h, w
        self.agnostic = agnostic  # every object "object", every predicate "relation", no adverbs
        self.type: list[int] = []
        self.label: list[str] = []
        self.frame: list[int] = []
        self.track: list[int] = []
        self.box: list[tuple[float, float, float, float]] = []
        self.edges: list[tuple[int, int, int]] = []

    def node(self, kind: str, label: str, frame: int, track_id: int = -1, box: tuple = (0.0, 0.0, 0.0, 0.0)) -> int:
        if self.agnostic and kind == "object":
            label = "object"
        self.type.append(NODE[kind])
        self.label.append(label)
        self.frame.append(frame)
        self.track.append(track_id)
        self.box.append(box)
        return len(self.type) - 1

    def relation(self, label: str, frame: int, subj: int, obj: int | None = None, adverbs: tuple[str, ...] = ()) -> None:
        if self.agnostic:
            label, adverbs = "relation", ()
        r = self.node("relation", label, frame)
        self.edges.append((subj, r, EDGE["subject"]))
        if obj is not None:
            self.edges.append((r, obj, EDGE["object"]))
        for adv in adverbs:
            self.edges.append((r, self.node("adverb", adv, frame), EDGE["adverb"]))


def _neighbour_pairs(centers: list[tuple[float, float]], k: int) -> np.ndarray:
    """``bool [n, n]``, symmetric: the pairs where one object is among the other's ``k`` nearest (centre
    distance, ties by detection order); every pair when no object has more than ``k`` others."""
    n = len(centers)
    if n - 1 <= k:
        return ~np.eye(n, dtype=bool)
    c = np.asarray(centers, dtype=np.float64)
    dist = np.sqrt(((c[:, None] - c[None]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    keep = np.zeros((n, n), dtype=bool)
    keep[np.repeat(np.arange(n), k), nearest.ravel()] = True
    return keep | keep.T


def _direction(dx: float, dy: float) -> str:
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def build_dsg(
    detections: list[list[Detection]],
    frame_indices: list[int] | np.ndarray,
    frame_size: tuple[int, int],
    config: DSGConfig = DSGConfig(),
) -> SceneGraph:
    """The DSG of a clip from per-keyframe detections; ``frame_indices`` are the keyframes' source frames."""
    h, w = frame_size
    side = float(max(h, w))
    t = len(detections)
    if t == 0 or not any(detections):
        return SceneGraph.scene_only(max(t, 1))
    tracks = track(detections, side, config)
    centers = [[d.center for d in dets] for dets in detections]  # read once: a property computes it per call
    neighbours: list[np.ndarray] = []  # per keyframe, bool [n, n]: the pairs that get spatial predicates
    g = _Graph(h, w, config.class_agnostic)
    obj_node: dict[tuple[int, int], int] = {}  # (frame, track) -> node
    track_attrs: dict[int, set[str]] = {}
    for k, (dets, tids) in enumerate(zip(detections, tracks)):
        if not dets:
            g.node("scene", "scene", k)
        for d, tid in zip(dets, tids):
            box = (d.box[0] / w, d.box[1] / h, d.box[2] / w, d.box[3] / h)
            o = obj_node[(k, tid)] = g.node("object", d.label, k, tid, box)
            # Attributes belong to the track: a node where one is first seen (or changes), not in every
            # frame, which would double the graph without adding information.
            known = track_attrs.setdefault(tid, set())
            for attr in () if config.class_agnostic else d.attributes:
                if attr not in known:
                    g.edges.append((o, g.node("attribute", attr, k), EDGE["attribute"]))
            known.clear()
            known.update(d.attributes)
        # Spatial predicates: one dominant relation per unordered neighbour pair, subject = larger object.
        neighbours.append(_neighbour_pairs(centers[k], config.spatial_neighbours))
        for i in range(len(dets)):
            for j in range(i + 1, len(dets)):
                if not neighbours[k][i, j]:
                    continue
                (xi, yi), (xj, yj) = centers[k][i], centers[k][j]
                dx, dy = (xj - xi) / side, (yj - yi) / side
                if np.hypot(dx, dy) < config.near_distance:
                    label = "near"
                else:
                    label = {"right": "left of", "left": "right of", "down": "above", "up": "below"}[_direction(dx, dy)]
                g.relation(label, k, obj_node[(k, tids[i])], obj_node[(k, tids[j])])
        # Annotated relations (sidecars): their objects are named by the annotation's track ids.
        by_raw = {d.track: tid for d, tid in zip(dets, tids) if getattr(d, "track", None) is not None}
        for d, tid in zip(dets, tids):
            for predicate, other in getattr(d, "relations", ()):
                if other in by_raw and by_raw[other] != tid:
                    g.relation(predicate, k, obj_node[(k, tid)], obj_node[(k, by_raw[other])])
    # Temporal coreference edges and motion predicates, per track between consecutive sightings.
    seen: dict[int, tuple[int, Detection, tuple[float, float]]] = {}
    for k, (dets, tids) in enumerate(zip(detections, tracks)):
        for i, (d, tid) in enumerate(zip(dets, tids)):
            node = obj_node[(k, tid)]
            if tid in seen:
                pk, pd, pc = seen[tid]
                g.edges.append((obj_node[(pk, tid)], node, EDGE["temporal"]))
                steps = max(float(frame_indices[k] - frame_indices[pk]), 1.0)
                dx, dy = (centers[k][i][0] - pc[0]) / side, (centers[k][i][1] - pc[1]) / side
                speed = float(np.hypot(dx, dy)) / steps
                if speed > config.move_speed:
                    pace = "quickly" if speed > config.quick_speed else "slowly"
                    g.relation("move", k, node, adverbs=(_direction(dx, dy), pace))
                # Growth of both sides: a moving box's edges jitter by a pixel or two (codecs keep colour at half
                # resolution), which changes one side at a time, never both.
                (w0, h0), (w1, h1) = (np.subtract(x.box[2:], x.box[:2]) for x in (pd, d))
                growth = (min(w1 / max(w0, 1.0), h1 / max(h0, 1.0)) - 1.0) / steps
                if growth > config.grow_rate:
                    g.relation("grow", k, node, adverbs=("quickly" if growth > 2.5 * config.grow_rate else "slowly",))
            elif k > 0:
                g.relation("appear", k, node)
            seen[tid] = (k, d, centers[k][i])
        # Approach: the distance to another visible object shrinks fast enough.
        for i in range(len(dets)):
            for j in range(len(dets)):
                a, b = tids[i], tids[j]
                if i == j or not neighbours[k][i, j] or a not in seen or b not in seen or (k - 1, a) not in obj_node \
                        or (k - 1, b) not in obj_node:
                    continue
                pa = centers[k - 1][tracks[k - 1].index(a)]
                pb = centers[k - 1][tracks[k - 1].index(b)]
                before = np.hypot(pa[0] - pb[0], pa[1] - pb[1])
                after = np.hypot(centers[k][i][0] - pb[0], centers[k][i][1] - pb[1])
                steps = max(float(frame_indices[k] - frame_indices[k - 1]), 1.0)
                if (before - after) / side / steps > config.approach_rate:
                    g.relation("approach", k, obj_node[(k, a)], obj_node[(k, b)])
    order = np.argsort(np.array(g.frame), kind="stable")  # nodes by frame: the recurrence walks frames
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    edges = np.array(g.edges, dtype=np.int64).reshape(-1, 3)
    return SceneGraph(
        node_type=torch.tensor(g.type, dtype=torch.long)[order],
        node_label=[g.label[i] for i in order],
        edge_index=torch.from_numpy(remap[edges[:, :2]].T.copy()),
        edge_type=torch.from_numpy(edges[:, 2].copy()),
        node_frame=torch.tensor(g.frame, dtype=torch.long)[order],
        node_track=torch.tensor(g.track, dtype=torch.long)[order],
        node_box=torch.tensor(g.box, dtype=torch.float32)[order],
    )
