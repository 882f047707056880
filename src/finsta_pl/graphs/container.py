"""Scene-graph tensors: one sample's graph (:class:`SceneGraph`) and a batch of them (:class:`GraphBatch`).

Scene graphs are Levi graphs (docs/DESIGN-NOTES.md §5): objects, attributes, predicates ("relations") and adverbs are all
nodes, and edges are typed.  DataLoader workers build :class:`SceneGraph` objects; ``collate`` concatenates them
with offsets into one :class:`GraphBatch`, so the model runs each graph stream as one kernel call over the whole
batch and never loops over graphs in Python.  Nodes of one graph are contiguous (``node_graph`` is sorted), which
the dense attention kernel relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Sequence

import torch
from torch import Tensor

NODE_TYPES: tuple[str, ...] = ("scene", "object", "attribute", "relation", "adverb")
EDGE_TYPES: tuple[str, ...] = ("attribute", "subject", "object", "adverb", "scene", "temporal", "crossmodal")
NODE = {name: i for i, name in enumerate(NODE_TYPES)}
EDGE = {name: i for i, name in enumerate(EDGE_TYPES)}
#: Edge groups in the order :class:`GraphIndex` sorts edges: every selection the streams make (``SPATIAL``, or
#: ``SPATIAL`` + cross-modal) is then a prefix, a slice rather than a boolean mask (which syncs on a GPU).
SPATIAL: tuple[str, ...] = ("attribute", "subject", "object", "adverb", "scene")
EDGE_GROUPS: tuple[tuple[str, ...], ...] = (SPATIAL, ("crossmodal",), ("temporal",))
#: words kept per node label ("left of" -> 2 words); longer labels are cut.
LABEL_WORDS = 3


@dataclass
class SceneGraph:
    """One sample's scene graph, built in a DataLoader worker.

    ``edge_index`` is directed (row 0 source, row 1 destination) in the *semantic* direction (object ->
    attribute, subject -> predicate -> object, predicate -> adverb, frame t-1 -> frame t); the batch adds the
    reverse direction for message passing.  ``node_span`` is a token span ``[start, end)`` into the encoded
    text (TSG nodes; ``-1`` elsewhere).  ``node_frame``/``node_track``/``node_box`` are the keyframe index,
    the track id and the normalised ``x1, y1, x2, y2`` box of DSG nodes (``-1``/zeros elsewhere).
    """

    node_type: Tensor  # [n] long
    node_label: list[str]
    edge_index: Tensor  # [2, e] long
    edge_type: Tensor  # [e] long
    node_span: Tensor | None = None  # [n, 2] long
    node_frame: Tensor | None = None  # [n] long
    node_track: Tensor | None = None  # [n] long
    node_box: Tensor | None = None  # [n, 4] float

    def __post_init__(self) -> None:
        n = int(self.node_type.numel())
        if self.node_span is None:
            self.node_span = torch.full((n, 2), -1, dtype=torch.long)
        if self.node_frame is None:
            self.node_frame = torch.full((n,), -1, dtype=torch.long)
        if self.node_track is None:
            self.node_track = torch.full((n,), -1, dtype=torch.long)
        if self.node_box is None:
            self.node_box = torch.zeros(n, 4)
        if len(self.node_label) != n:
            raise ValueError(f"SceneGraph: {n} nodes but {len(self.node_label)} labels")

    @property
    def num_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_type.numel())

    @staticmethod
    def scene_only(frames: int = 0) -> "SceneGraph":
        """The graph of an input with nothing in it: one ``scene`` node per frame (or one, for text).

        Consecutive scene nodes are linked by temporal edges so the recurrence still has something to carry.
        """
        n = max(frames, 1)
        src = torch.arange(n - 1)
        return SceneGraph(
            node_type=torch.full((n,), NODE["scene"], dtype=torch.long),
            node_label=["scene"] * n,
            edge_index=torch.stack([src, src + 1]) if n > 1 else torch.zeros(2, 0, dtype=torch.long),
            edge_type=torch.full((n - 1,), EDGE["temporal"], dtype=torch.long),
            node_frame=torch.arange(n) if frames > 0 else None,
        )

    def drop_nodes(self, rate: float, generator: torch.Generator | None = None) -> "SceneGraph":
        """Remove each non-scene node with probability ``rate`` (the robustness study's corruption).

        Edges touching a removed node go too; a graph left empty becomes :meth:`scene_only`.
        """
        if rate <= 0 or self.num_nodes == 0:
            return self
        keep = (torch.rand(self.num_nodes, generator=generator) >= rate) | (self.node_type == NODE["scene"])
        if not bool(keep.any()):
            frames = int(self.node_frame.max().item()) + 1 if bool((self.node_frame >= 0).any()) else 0
            return SceneGraph.scene_only(frames)
        new_id = torch.cumsum(keep.long(), 0) - 1
        ekeep = keep[self.edge_index[0]] & keep[self.edge_index[1]]
        return SceneGraph(
            node_type=self.node_type[keep],
            node_label=[lab for lab, k in zip(self.node_label, keep.tolist()) if k],
            edge_index=new_id[self.edge_index[:, ekeep]],
            edge_type=self.edge_type[ekeep],
            node_span=self.node_span[keep],
            node_frame=self.node_frame[keep],
            node_track=self.node_track[keep],
            node_box=self.node_box[keep],
        )


@dataclass
class GraphIndex:
    """Everything about a :class:`GraphBatch` that depends only on the graphs' shapes, computed once on the host
    (in the DataLoader worker, by :func:`collate_graphs`) so the model's forward and backward never wait for the
    device: no ``nonzero``, ``item``, boolean-mask indexing or data-dependent shape on it.

    ``nmax``/``node_slot``: the largest graph and each node's row in the ``[G * nmax]`` per-graph padding (the
    dense attention kernel); ``graph_count``: nodes per graph (the lengths of sorted-segment reductions);
    ``edge_order``/``group_end``: edges sorted stably by :data:`EDGE_GROUPS` (then direction), so the edges of
    the first ``k`` groups are ``edge_order[:group_end[k - 1]]``; ``node_prev``/``node_prev_track``: the node a
    node continues in an earlier frame along a temporal edge / along its track (``-1``: none);
    ``frame_order``/``frame_end``: the nodes that have a frame, by frame (then node), and where each frame's run
    ends (``num_frames`` runs); ``frame_count`` ``[num_frames, G]``: nodes per frame and graph, so a frame's run
    is sorted by graph and reduces per graph with those lengths; ``frame_prev``: for each node of
    ``frame_order``, the position in ``frame_order`` of its ``node_prev`` (``-1``: none).
    """

    nmax: int
    node_slot: Tensor
    graph_count: Tensor
    edge_order: Tensor
    group_end: list[int]
    node_prev: Tensor
    node_prev_track: Tensor
    num_frames: int
    frame_order: Tensor
    frame_end: list[int]
    frame_count: Tensor
    frame_prev: Tensor
    frame_width: int
    frame_slot: Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "GraphIndex":
        """Move every tensor to ``device``."""
        return replace(self, **{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                                for f in fields(self) if isinstance(getattr(self, f.name), Tensor)})

    def pin_memory(self) -> "GraphIndex":
        """Pin every tensor."""
        return replace(self, **{f.name: getattr(self, f.name).pin_memory()
                                for f in fields(self) if isinstance(getattr(self, f.name), Tensor)})

    @staticmethod
    def padding(node_graph: Tensor, num_graphs: int) -> "GraphIndex":
        """An index with only the per-graph padding (``nmax``, ``node_slot``, ``graph_count``) and no frames or
        edges: for a lone layer call on graphs that came without one (tests, benchmarks of one layer)."""
        count = torch.bincount(node_graph, minlength=num_graphs)
        nmax = int(count.max()) if node_graph.numel() else 0
        slot = node_graph * max(nmax, 1) + (torch.arange(node_graph.numel()) - (torch.cumsum(count, 0) - count)[node_graph])
        empty = torch.zeros(0, dtype=torch.long)
        return GraphIndex(nmax, slot, count, empty, [0] * len(EDGE_GROUPS), empty, empty, 0, empty, [],
                          torch.zeros(0, num_graphs, dtype=torch.long), empty, 0, empty)

    @staticmethod
    def build(node_graph: Tensor, num_graphs: int, node_frame: Tensor, node_track: Tensor, node_type: Tensor,
              edge_index: Tensor, edge_type: Tensor) -> "GraphIndex":
        """The index of a batch's tensors (on the host; any device works, at the cost of syncs)."""
        n = int(node_graph.numel())
        pad = GraphIndex.padding(node_graph, num_graphs)
        base = edge_type % len(EDGE_TYPES)
        group = torch.full_like(base, len(EDGE_GROUPS))
        for k, kinds in enumerate(EDGE_GROUPS):
            group[torch.isin(base, torch.tensor([EDGE[x] for x in kinds]))] = k
        reverse = (edge_type >= len(EDGE_TYPES)).long()
        edge_order = torch.argsort(group * 2 + reverse, stable=True)
        group_end = torch.bincount(group, minlength=len(EDGE_GROUPS) + 1).cumsum(0)[: len(EDGE_GROUPS)].tolist()
        prev = torch.full((n,), -1, dtype=torch.long)
        fwd = edge_type == EDGE["temporal"]
        prev[edge_index[1, fwd]] = edge_index[0, fwd]
        num_frames = int(node_frame.max()) + 1 if n and bool((node_frame >= 0).any()) else 0
        framed = torch.nonzero(node_frame >= 0).squeeze(1)
        frame_order = framed[torch.argsort(node_frame[framed], stable=True)]
        frame_count = torch.zeros(num_frames, num_graphs, dtype=torch.long)
        frame_count.index_put_((node_frame[frame_order], node_graph[frame_order]),
                               torch.ones_like(frame_order), accumulate=True)
        position = torch.full((n,), -1, dtype=torch.long)
        position[frame_order] = torch.arange(frame_order.numel())
        p = prev[frame_order]
        frame_prev = torch.where(p >= 0, position[p.clamp(min=0)], p)
        # Frame-major runs are sorted by graph: a node's place in its (frame, graph) run is its offset from the
        # run's first position.
        run = node_frame[frame_order] * num_graphs + node_graph[frame_order]
        run_count = frame_count.flatten()
        width = int(run_count.max()) if run_count.numel() else 0
        within = torch.arange(frame_order.numel()) - (torch.cumsum(run_count, 0) - run_count)[run]
        return GraphIndex(pad.nmax, pad.node_slot, pad.graph_count, edge_order, group_end, prev,
                          _previous_in_track(node_track, node_type, node_frame), num_frames, frame_order,
                          frame_count.sum(1).cumsum(0).tolist(), frame_count, frame_prev, width,
                          run * width + within)


def _previous_in_track(node_track: Tensor, node_type: Tensor, node_frame: Tensor) -> Tensor:
    """For each object node with a track, the same track's object node in the latest earlier frame, else ``-1``."""
    prev = torch.full_like(node_track, -1)
    idx = torch.nonzero((node_track >= 0) & (node_type == NODE["object"])).squeeze(1)
    if idx.numel() < 2:
        return prev
    span = int(node_frame.max()) + 2
    order = idx[torch.argsort(node_track[idx] * span + node_frame[idx] + 1, stable=True)]
    same = node_track[order[1:]] == node_track[order[:-1]]
    prev[order[1:][same]] = order[:-1][same]
    return prev


@dataclass
class GraphBatch:
    """Many :class:`SceneGraph` objects as one set of tensors (device-agnostic, ``pin_memory`` friendly).

    ``edge_index`` holds both directions: the semantic edges with their type ``t`` and their reverses with type
    ``t + len(EDGE_TYPES)``; ``node_words`` are the label's word ids (``0`` pads); ``node_graph`` the sample of
    each node (sorted); ``node_track`` is made unique across the batch.
    """

    node_type: Tensor
    node_words: Tensor  # [N, LABEL_WORDS] long
    node_span: Tensor
    node_frame: Tensor
    node_track: Tensor
    node_box: Tensor
    node_graph: Tensor
    edge_index: Tensor
    edge_type: Tensor
    num_graphs: int
    labels: list[list[str]] = field(default_factory=list)  # kept for pictures and debugging
    _index: GraphIndex | None = None

    @property
    def index(self) -> GraphIndex:
        """The batch's :class:`GraphIndex`: built by collation in the worker; a batch made any other way gets
        one here, once, from a host copy of its tensors (a sync, outside the hot path)."""
        if self._index is None:
            cpu = [x.cpu() for x in (self.node_graph, self.node_frame, self.node_track, self.node_type,
                                     self.edge_index, self.edge_type)]
            self._index = GraphIndex.build(cpu[0], self.num_graphs, *cpu[1:]).to(self.node_graph.device)
        return self._index

    def edges_in(self, groups: int) -> tuple[Tensor, Tensor]:
        """The edges of the first ``groups`` of :data:`EDGE_GROUPS` (both directions): ``(edge_index, edge_type)``,
        by index, without a sync."""
        take = self.index.edge_order[: self.index.group_end[groups - 1]]
        return self.edge_index.index_select(1, take), self.edge_type.index_select(0, take)

    @property
    def num_nodes(self) -> int:
        """Total number of nodes in the batch."""
        return int(self.node_type.numel())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "GraphBatch":
        """Move every tensor to ``device``."""
        moved = {
            f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
            for f in fields(self)
            if isinstance(getattr(self, f.name), (Tensor, GraphIndex))
        }
        return replace(self, **moved)

    def pin_memory(self) -> "GraphBatch":
        """Pin every tensor (called by the DataLoader when ``pin_memory=True``)."""
        pinned = {f.name: getattr(self, f.name).pin_memory() for f in fields(self)
                  if isinstance(getattr(self, f.name), (Tensor, GraphIndex))}
        return replace(self, **pinned)

    def edges_of(self, kinds: Sequence[str], both_directions: bool = True) -> tuple[Tensor, Tensor]:
        """The edges whose semantic type is in ``kinds`` (and their reverses): ``(edge_index, edge_type)``."""
        ids = torch.tensor([EDGE[k] for k in kinds], device=self.edge_type.device)
        base = self.edge_type % len(EDGE_TYPES)
        keep = torch.isin(base, ids)
        if not both_directions:
            keep &= self.edge_type < len(EDGE_TYPES)
        return self.edge_index[:, keep], self.edge_type[keep]

    def previous_node(self) -> Tensor:
        """For each node, the node it continues in an earlier frame along a temporal edge, else ``-1``."""
        return self.index.node_prev

    def previous_in_track(self) -> Tensor:
        """For each object node with a track, the same track's object node in the latest earlier frame, else
        ``-1``.  Read from track ids, not from temporal edges, so motion (STGD) stays defined when the temporal
        coreference edges are switched off."""
        return self.index.node_prev_track

    def to_dgl(self) -> Any:
        """The batch as one ``DGLGraph`` (both directions), with node and edge tensors as ``ndata``/``edata``."""
        from finsta_pl.compat.dgl import load_dgl, why_missing

        dgl = load_dgl()
        if dgl is None:
            raise RuntimeError(f"DGL is not importable: {why_missing()}")
        g = dgl.graph((self.edge_index[0], self.edge_index[1]), num_nodes=self.num_nodes)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("node_") and isinstance(value, Tensor):
                g.ndata[f.name] = value
        g.edata["edge_type"] = self.edge_type
        counts = torch.bincount(self.node_graph, minlength=self.num_graphs)
        g.set_batch_num_nodes(counts)
        ecounts = torch.bincount(self.node_graph[self.edge_index[1]], minlength=self.num_graphs)
        g.set_batch_num_edges(ecounts)
        return g

    @staticmethod
    def from_dgl(g: Any) -> "GraphBatch":
        """Inverse of :meth:`to_dgl` (labels are not carried by DGL graphs)."""
        counts = g.batch_num_nodes()
        src, dst = g.edges()
        nd = g.ndata
        return GraphBatch(
            node_type=nd["node_type"], node_words=nd["node_words"], node_span=nd["node_span"],
            node_frame=nd["node_frame"], node_track=nd["node_track"], node_box=nd["node_box"],
            node_graph=torch.repeat_interleave(torch.arange(len(counts)), counts),
            edge_index=torch.stack([src, dst]), edge_type=g.edata["edge_type"], num_graphs=len(counts),
        )


def track_id_span(graphs: Sequence[SceneGraph]) -> int:
    """Track ids are per video; :func:`collate_graphs` makes them unique in a batch as ``id + graph * span``."""
    return max(max((int(g.node_track.max()) + 1 for g in graphs if g.num_nodes), default=1), 1)


def collate_graphs(graphs: Sequence[SceneGraph], encode_label: Any) -> GraphBatch:
    """Concatenate ``graphs`` with node offsets; ``encode_label(str) -> list[int]`` gives a label's word ids."""
    counts = torch.tensor([g.num_nodes for g in graphs], dtype=torch.long)
    offsets = torch.cumsum(counts, 0) - counts
    edge_index = torch.cat([g.edge_index + off for g, off in zip(graphs, offsets.tolist())], dim=1)
    edge_type = torch.cat([g.edge_type for g in graphs])
    track = torch.cat([g.node_track for g in graphs])
    # Track ids are per video; make them unique in the batch so losses can group by them directly.
    graph_of_node = torch.repeat_interleave(torch.arange(len(graphs)), counts)
    track = torch.where(track >= 0, track + graph_of_node * track_id_span(graphs), track)
    labels = [g.node_label for g in graphs]
    # A batch holds thousands of nodes but a few dozen distinct labels: encode each once, then gather rows.
    distinct: dict[str, int] = {}
    index = [distinct.setdefault(lab, len(distinct)) for per_graph in labels for lab in per_graph]
    table = torch.zeros(len(distinct), LABEL_WORDS, dtype=torch.long)
    for lab, row in distinct.items():
        ids = encode_label(lab)[:LABEL_WORDS]
        if ids:
            table[row, : len(ids)] = torch.tensor(ids)
    words = table[torch.tensor(index, dtype=torch.long)]
    node_type = torch.cat([g.node_type for g in graphs])
    node_frame = torch.cat([g.node_frame for g in graphs])
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    edge_type = torch.cat([edge_type, edge_type + len(EDGE_TYPES)])
    return GraphBatch(
        node_type=node_type,
        node_words=words,
        node_span=torch.cat([g.node_span for g in graphs]),
        node_frame=node_frame,
        node_track=track,
        node_box=torch.cat([g.node_box for g in graphs]).float(),
        node_graph=graph_of_node,
        edge_index=edge_index,
        edge_type=edge_type,
        num_graphs=len(graphs),
        labels=labels,
        _index=GraphIndex.build(graph_of_node, len(graphs), node_frame, track, node_type, edge_index, edge_type),
    )
