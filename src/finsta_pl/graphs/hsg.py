"""Holistic scene graphs (HSG): TSG + DSG joined by cross-modal coreference edges, and the OSC/PTC targets.

A TSG object is linked to the DSG tracks whose label and attributes agree with it (the same word, or words
that name one class of the shipped lexicon, ``graphs/lexicon.py``: "chef" and a detector's "person").  When the detector gives no
labels, the model links by host embedding similarity instead (``nn/linking.py``; :class:`LinkConfig`).  The same links define what the
two alignment losses contrast (docs/DESIGN-NOTES.md §1):
- OSC: a TSG object against the multi-hop neighbourhood of its linked track's nodes;
- PTC: a TSG predicate with its adverbs against the linked subject track's nodes over the time interval
  in which the DSG shows a predicate of that track (the same predicate when there is one).
All of this is Python over one small graph, so it runs in DataLoader workers, never in the model.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import torch

from finsta_pl.graphs.container import EDGE, NODE, SceneGraph
from finsta_pl.graphs.lexicon import same_concept

_GENERIC = {"object", "thing", "shape", "region", "something", "item"}
_GENERIC_SCORE = 0.25
#: a caption noun and a track label that name one class of the lexicon ("chef" and "person", "puppy" and
#: "dog"): a link on its own, a little below an exact label so the exact one wins a tie.
_CONCEPT_SCORE = 0.9
_COLORS = {"red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "black", "white", "gray"}


@dataclass(frozen=True)
class LinkConfig:
    """Cross-modal linking.  ``method``: ``label`` (label text similarity, here in the worker), ``embedding``
    (host embedding similarity of the text object's tokens and the track's RoI features, in the model:
    ``nn/linking.py``), ``label_embedding`` (the paper's choice with CLIP4Clip: similarity of the host's text
    embeddings of the caption noun and of the detector's label, in the model; the region embedding where the
    DSG has no labels) or ``auto`` (label when the DSG's tracks carry specific labels, else embedding).  ``threshold``: minimum label score; ``embedding_threshold``: minimum
    cosine; ``top_k``: links kept per text object (both methods); ``hops``: OSC neighbourhood of a track."""

    method: str = "auto"
    threshold: float = 0.5
    embedding_threshold: float = 0.2
    top_k: int = 1
    hops: int = 1

    def __post_init__(self) -> None:
        if self.method not in {"auto", "label", "embedding", "label_embedding"}:
            raise ValueError(f"link method must be auto, label, embedding or label_embedding, not {self.method!r}")


@dataclass
class Alignment:
    """Anchor/region node lists for one loss: pair ``p`` pools ``anchors[p]`` (TSG) and ``regions[p]`` (DSG).

    ``keys[p]`` names the region (pairs of one sample with equal keys share their positive, so they must not be
    each other's negatives); ``negatives[p]`` are DSG nodes of a hard negative region (may be empty).
    """

    anchors: list[list[int]] = field(default_factory=list)
    regions: list[list[int]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    negatives: list[list[int]] = field(default_factory=list)
    #: per pair, the ``(TSG object node, track id)`` link it follows from (PTC: the predicate's subject and its
    #: track); where the model makes the links (:func:`ptc_candidates`) a pair counts only if that link is made.
    conditions: list[tuple[int, int]] = field(default_factory=list)


def _neighbours(g: SceneGraph) -> dict[int, set[int]]:
    nb: dict[int, set[int]] = defaultdict(set)
    for s, d in g.edge_index.t().tolist():
        nb[s].add(d)
        nb[d].add(s)
    return nb


def _out(g: SceneGraph, kind: str) -> dict[int, list[int]]:
    res: dict[int, list[int]] = defaultdict(list)
    for (s, d), t in zip(g.edge_index.t().tolist(), g.edge_type.tolist()):
        if t == EDGE[kind]:
            res[s].append(d)
    return res


def track_summaries(dsg: SceneGraph) -> dict[int, tuple[str, set[str]]]:
    """Per track: its majority label and the attribute words seen on it."""
    attrs = _out(dsg, "attribute")
    labels: dict[int, Counter] = defaultdict(Counter)
    words: dict[int, set[str]] = defaultdict(set)
    for i, (tid, kind) in enumerate(zip(dsg.node_track.tolist(), dsg.node_type.tolist())):
        if kind == NODE["object"] and tid >= 0:
            labels[tid][dsg.node_label[i]] += 1
            words[tid].update(dsg.node_label[a] for a in attrs[i])
    return {tid: (c.most_common(1)[0][0], words[tid]) for tid, c in labels.items()}


def has_track_labels(dsg: SceneGraph) -> bool:
    """Whether any track carries a specific label (not a detector's generic "region"/"object")."""
    return any(label not in _GENERIC for label, _ in track_summaries(dsg).values())


def link_objects(tsg: SceneGraph, dsg: SceneGraph, config: LinkConfig = LinkConfig()) -> list[tuple[int, int, float]]:
    """``(tsg object node, track id, score)`` for every link whose label-text score passes the threshold."""
    tracks = track_summaries(dsg)
    sightings = Counter(t for t, k in zip(dsg.node_track.tolist(), dsg.node_type.tolist()) if k == NODE["object"])
    attrs = _out(tsg, "attribute")
    links = []
    for i, kind in enumerate(tsg.node_type.tolist()):
        if kind != NODE["object"]:
            continue
        noun = tsg.node_label[i]
        label = noun.split()[-1]
        text_attrs = {tsg.node_label[a] for a in attrs[i]}
        scored = []
        for tid, (tlabel, tattrs) in tracks.items():
            # A generic noun ("object") or a generic track label says little: below the threshold on its own,
            # so such a link needs an agreeing attribute ("the red object").
            if label in _GENERIC or tlabel in _GENERIC:  # also "object" == "object": it names nothing
                score = _GENERIC_SCORE
            elif label == tlabel:
                score = 1.0
            else:
                score = _CONCEPT_SCORE if same_concept(noun, tlabel) else 0.0
            for a in text_attrs:
                if a in tattrs:
                    score += 0.5
                elif a in _COLORS and tattrs & _COLORS:
                    score -= 1.0  # a named colour that the track does not have rules the link out
            scored.append((score, tid))
        # Equal scores go to the longer track: a detector that loses an object for a few frames leaves a short
        # fragment with the same label, and the object the text means is the one seen most.
        scored.sort(key=lambda x: (-x[0], -sightings[x[1]], x[1]))
        links += [(i, tid, s) for s, tid in scored[: config.top_k] if s >= config.threshold]
    return links


def build_hsg(tsg: SceneGraph, dsg: SceneGraph, links: list[tuple[int, int, float]]) -> SceneGraph:
    """TSG nodes, then DSG nodes (offset by the TSG size), plus cross-modal edges to every node of a track."""
    n = tsg.num_nodes
    track_nodes: dict[int, list[int]] = defaultdict(list)
    for j, (tid, kind) in enumerate(zip(dsg.node_track.tolist(), dsg.node_type.tolist())):
        if kind == NODE["object"] and tid >= 0:
            track_nodes[tid].append(j + n)
    cross = [(i, j) for i, tid, _ in links for j in track_nodes[tid]]
    cross_t = torch.tensor(cross, dtype=torch.long).reshape(-1, 2).t()
    return SceneGraph(
        node_type=torch.cat([tsg.node_type, dsg.node_type]),
        node_label=tsg.node_label + dsg.node_label,
        edge_index=torch.cat([tsg.edge_index, dsg.edge_index + n, cross_t], dim=1),
        edge_type=torch.cat([tsg.edge_type, dsg.edge_type, torch.full((cross_t.shape[1],), EDGE["crossmodal"])]),
        node_span=torch.cat([tsg.node_span, dsg.node_span]),
        node_frame=torch.cat([tsg.node_frame, dsg.node_frame]),
        node_track=torch.cat([tsg.node_track, dsg.node_track]),
        node_box=torch.cat([tsg.node_box, dsg.node_box]),
    )


def alignment_targets(
    tsg: SceneGraph, dsg: SceneGraph, links: list[tuple[int, int, float]], hops: int = 1
) -> tuple[Alignment, Alignment]:
    """The OSC and PTC anchor/region lists of one sample (see module docstring)."""
    nb = _neighbours(dsg)
    tracks = dsg.node_track.tolist()
    frames = dsg.node_frame.tolist()
    track_nodes: dict[int, list[int]] = defaultdict(list)
    for j, (tid, kind) in enumerate(zip(tracks, dsg.node_type.tolist())):
        if kind == NODE["object"] and tid >= 0:
            track_nodes[tid].append(j)
    osc = Alignment()
    linked: dict[int, int] = {}
    for i, tid, _ in links:
        linked.setdefault(i, tid)
        region = set(track_nodes[tid])
        frontier = set(region)
        for _ in range(hops):
            frontier = {m for x in frontier for m in nb[x]} - region
            region |= frontier
        osc.anchors.append([i])
        osc.regions.append(sorted(region))
        osc.keys.append(f"osc:{tid}")
        osc.negatives.append([])
    # DSG predicates of each track, with their adverbs.
    dsg_subject = _out(dsg, "subject")
    dsg_adverbs = _out(dsg, "adverb")
    predicates: dict[int, list[int]] = defaultdict(list)
    for obj, rels in dsg_subject.items():
        if tracks[obj] >= 0:
            predicates[tracks[obj]].extend(rels)
    ptc = Alignment()
    tsg_subject = _out(tsg, "subject")
    tsg_object = _out(tsg, "object")
    tsg_adverbs = _out(tsg, "adverb")
    subject_of = {r: s for s, rels in tsg_subject.items() for r in rels}
    for r, kind in enumerate(tsg.node_type.tolist()):
        if kind != NODE["relation"]:
            continue
        who = subject_of.get(r, next(iter(tsg_object.get(r, [])), None))
        if who is None or who not in linked:
            continue
        tid = linked[who]
        verb = tsg.node_label[r].split()[0]
        same = [p for p in predicates[tid] if dsg.node_label[p].split()[0] == verb]
        span = [frames[p] for p in (same or predicates[tid])] or [frames[j] for j in track_nodes[tid]]
        lo, hi = min(span), max(span)
        ptc.anchors.append([r, *tsg_adverbs[r]])
        ptc.regions.append(_track_interval(track_nodes[tid], predicates[tid], dsg_adverbs, frames, lo, hi))
        ptc.keys.append(f"ptc:{tid}:{lo}:{hi}")
        ptc.conditions.append((who, tid))
        # Temporal hard negative: the same track over the frames outside the interval, so PTC cannot be
        # solved by recognising the subject alone.
        outside = sorted({frames[j] for j in track_nodes[tid]} - set(range(lo, hi + 1)))
        ptc.negatives.append(_track_interval(track_nodes[tid], predicates[tid], dsg_adverbs, frames,
                                             outside[0], outside[-1], keep=set(outside)) if outside else [])
    return osc, ptc


def ptc_candidates(tsg: SceneGraph, dsg: SceneGraph, hops: int = 1) -> Alignment:
    """PTC pairs for links the model will make (embedding or learned links, ``nn/linking.py``): every TSG
    predicate against every track its subject could be linked to, each pair conditioned on that link
    (``Alignment.conditions``).  The model keeps the pairs whose link it made, so PTC runs on label-free data
    with the same anchors, regions and temporal hard negatives as for label links, all built here."""
    objects = [i for i, kind in enumerate(tsg.node_type.tolist()) if kind == NODE["object"]]
    tracks = sorted({t for t, kind in zip(dsg.node_track.tolist(), dsg.node_type.tolist()) if kind == NODE["object"] and t >= 0})
    out = Alignment()
    for tid in tracks:
        _, ptc = alignment_targets(tsg, dsg, [(i, tid, 1.0) for i in objects], hops)
        for name in ("anchors", "regions", "keys", "negatives", "conditions"):
            getattr(out, name).extend(getattr(ptc, name))
    return out


def _track_interval(nodes: list[int], predicates: list[int], adverbs: dict[int, list[int]], frames: list[int],
                    lo: int, hi: int, keep: set[int] | None = None) -> list[int]:
    """A track's object nodes and its predicates (with their adverbs) in frames ``lo..hi`` (and in ``keep``)."""
    inside = (lambda f: lo <= f <= hi and (keep is None or f in keep))  # noqa: E731
    region = [j for j in nodes if inside(frames[j])]
    for p in predicates:
        if inside(frames[p]):
            region += [p, *adverbs[p]]
    return sorted(set(region))
