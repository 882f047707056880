"""The data contract between workers and the model: :class:`Sample` (one clip, its DSG, any number of texts
with their TSG/HSG) and :class:`FinstaBatch` (collated: frames, texts, targets, batched graph tensors).

Everything index-shaped is computed here, in the worker, so the model only gathers and scatters: the HSG's
source of each node in ``cat([tsg nodes, dsg nodes])``, the token positions of each TSG node's span, and the
flat anchor/region lists of the OSC and PTC pairs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from finsta_pl.graphs.container import NODE, GraphBatch, SceneGraph, collate_graphs, track_id_span
from finsta_pl.graphs.hsg import Alignment


@dataclass
class AlignmentBatch:
    """Flat OSC or PTC pairs: pair ``p`` pools TSG nodes ``anchor_nodes[anchor_seg == p]`` and DSG nodes
    ``region_nodes[region_seg == p]``; ``pair_graph`` is the text of each pair."""

    anchor_nodes: Tensor
    anchor_seg: Tensor
    region_nodes: Tensor
    region_seg: Tensor
    pair_graph: Tensor
    region_key: Tensor  # [P] int64: pairs with equal keys share their positive (see sample_key)
    negative_nodes: Tensor  # DSG nodes of each pair's hard negative region (pairs may have none)
    negative_seg: Tensor
    # The link each pair follows from (``Alignment.conditions``): TSG node and batch track id (``-1``: none).
    # Where the model makes the links, a pair counts only if its link is among them (PTC on label-free data).
    link_object: Tensor | None = None
    link_track: Tensor | None = None
    # [R] weight of each region node (0: not pooled): learned links expand densely over their clip's boxes and
    # mask the other tracks' (issue 23), instead of a selection.  ``None``: every region node counts.
    region_weight: Tensor | None = None

    @property
    def num_pairs(self) -> int:
        """Number of pairs."""
        return int(self.pair_graph.numel())


@dataclass
class LinkTracks:
    """What the learned links (``nn/linking.py`` LinkMatcher) need of the graphs' shapes, from the worker, so the
    model reads nothing back (issue 23): the TSG object nodes of the requesting texts (``objects``), every tracked
    DSG box of the batch (``boxes``, ascending) with its track renumbered ``0..K-1`` in (clip, track) order
    (``track_of_box``; ``track_graph``/``track_id``: each track's clip and batch track id), and the link slots.

    Each object links its ``min(top_k, tracks of its clip)`` best own tracks: slot ``l`` is rank ``link_rank[l]``
    of object ``link_object[l]``.  A link's DSG nodes are the boxes of its track, found densely over the boxes of
    the object's clip: entries ``(link_entry, link_box)`` (every slot x every tracked box of its clip), which
    the model masks to the linked track; ``(object_entry, object_box)`` likewise once per object, for the HSG
    edges (no (object, box) pair twice, whatever ``top_k``)."""

    objects: Tensor
    boxes: Tensor
    track_of_box: Tensor
    num_tracks: int
    track_graph: Tensor
    track_id: Tensor
    link_object: Tensor
    link_rank: Tensor
    link_entry: Tensor
    link_box: Tensor
    object_entry: Tensor
    object_box: Tensor

    @property
    def empty(self) -> bool:
        """No object or no tracked box: nothing to match (known from shapes, no sync)."""
        return self.objects.numel() == 0 or self.num_tracks == 0

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "LinkTracks":
        """Move the tensors to ``device``."""
        return replace(self, **{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                                for f in fields(self) if isinstance(getattr(self, f.name), Tensor)})


def renumber_tracks(tsg: GraphBatch, dsg: GraphBatch, samples: Tensor, clips: Tensor | None = None
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor, int, Tensor]:
    """``(objects, boxes, track_id, track_of_box, num_tracks, track_graph)``: the TSG object nodes of the texts
    ``samples`` ([M] bool), the tracked DSG boxes (of ``clips`` only, [B] bool, where given), and their tracks
    renumbered ``0..K-1`` in (clip, track) order with each track's batch id and clip.  Syncs on a device
    (``nonzero``, ``unique``): collation runs it for the learned links, the threshold links in the model."""
    objects = torch.nonzero((tsg.node_type == NODE["object"]) & samples[tsg.node_graph]).squeeze(1)
    box = (dsg.node_type == NODE["object"]) & (dsg.node_track >= 0)
    boxes = torch.nonzero(box if clips is None else box & clips[dsg.node_graph]).squeeze(1)
    track_id, track_of_box = torch.unique(dsg.node_track[boxes], return_inverse=True)
    num_tracks = int(track_id.numel())
    track_graph = torch.zeros(num_tracks, dtype=torch.long, device=boxes.device).scatter_(
        0, track_of_box, dsg.node_graph[boxes])
    return objects, boxes, track_id, track_of_box, num_tracks, track_graph


def link_tracks(tsg: GraphBatch, dsg: GraphBatch, text_sample: Tensor, samples: Tensor, top_k: int) -> LinkTracks:
    """The :class:`LinkTracks` of texts ``samples`` ([M] bool) against every clip's tracks.  Collation runs it
    on the host; on a device it would sync (``nonzero``, ``unique``, ``repeat_interleave``)."""
    objects, boxes, track_id, track_of_box, num_tracks, track_graph = renumber_tracks(tsg, dsg, samples)
    box_graph = dsg.node_graph[boxes]
    clip = text_sample[tsg.node_graph[objects]]  # each object's clip
    own = torch.bincount(track_graph, minlength=dsg.num_graphs)[clip]
    slots = own.clamp(max=top_k)
    link_object = torch.repeat_interleave(torch.arange(objects.numel(), device=boxes.device), slots)
    link_rank = torch.arange(link_object.numel(), device=boxes.device) - (torch.cumsum(slots, 0) - slots)[link_object]
    clip_boxes = torch.bincount(box_graph, minlength=dsg.num_graphs)
    clip_first = torch.cumsum(clip_boxes, 0) - clip_boxes  # a clip's tracked boxes are one range of ``boxes``

    def dense(owner_clip: Tensor) -> tuple[Tensor, Tensor]:  # (owner, box) for every tracked box of its clip
        sizes = clip_boxes[owner_clip]
        entry = torch.repeat_interleave(torch.arange(owner_clip.numel(), device=boxes.device), sizes)
        within = torch.arange(entry.numel(), device=boxes.device) - (torch.cumsum(sizes, 0) - sizes)[entry]
        return entry, clip_first[owner_clip][entry] + within

    link_entry, link_box = dense(clip[link_object])
    object_entry, object_box = dense(clip)
    return LinkTracks(objects, boxes, track_of_box, num_tracks, track_graph, track_id, link_object, link_rank,
                      link_entry, link_box, object_entry, object_box)


@dataclass
class EmbeddingLinkRequest:
    """Samples whose cross-modal links the model finds by host embedding similarity (``nn/linking.py``):
    their DSG has no labels to compare, so collation left their HSG without cross-modal edges."""

    samples: Tensor  # [M] bool, per text
    threshold: float
    top_k: int
    sample_key: Tensor  # [M] int64, see sample_key(); keys of the OSC pairs the model adds
    by_label: Tensor | None = None  # [M] bool: compare the embedded labels (LinkConfig label_embedding), not regions
    any_samples: bool | None = None  # whether ``samples`` has a text, from the worker (None: read it, a sync)
    tracks: LinkTracks | None = None  # the learned links' index structures, from the worker (None: made in the model)

    @property
    def has_samples(self) -> bool:
        """Whether any text asks for links (the worker's flag; without it, read off ``samples``)."""
        return bool(self.samples.any()) if self.any_samples is None else self.any_samples

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "EmbeddingLinkRequest":
        """Move the tensors to ``device``."""
        by_label = self.by_label.to(device, non_blocking=non_blocking) if self.by_label is not None else None
        tracks = self.tracks.to(device, non_blocking=non_blocking) if self.tracks is not None else None
        return replace(self, samples=self.samples.to(device, non_blocking=non_blocking),
                       sample_key=self.sample_key.to(device, non_blocking=non_blocking), by_label=by_label,
                       tracks=tracks)


def sample_key(sample_id: str) -> int:
    """A process-independent 31-bit hash of a sample id, shifted into the high half of an int64 region key.

    Region keys are ``sample_key(clip id) | descriptor``: equal only for the same region of the same clip, from
    any of its texts (two candidates of a question linked to one track share that positive) and on any rank (a
    DistributedSampler's padding repeats a sample on another rank: then the repeat is masked too).  The low
    31 bits hash the worker's region descriptor; ``2**31 + track`` marks regions of embedding links.
    """
    return (zlib.crc32(sample_id.encode()) & 0x7FFFFFFF) << 32


def _descriptor_key(descriptor: str) -> int:
    return zlib.crc32(descriptor.encode()) & 0x7FFFFFFF


@dataclass
class TextGraphs:
    """The scene graphs of one text of a sample, built in the worker: its TSG, its HSG with the sample's DSG,
    the OSC/PTC alignment lists, and the embedding-link parameters when the model must find the links."""

    tsg: SceneGraph
    hsg: SceneGraph
    osc: Alignment
    ptc: Alignment
    embedding_link: tuple[float, int, bool] | None = None  # (threshold, top_k, by label embedding)


@dataclass
class SampleText:
    """One text of a sample (question, caption, option, statement): token ids, graphs, per-text targets."""

    ids: list[int]
    graphs: TextGraphs | None = None
    targets: dict[str, Any] = field(default_factory=dict)
    gold: Tensor | None = None  # [n_tsg] long: gold object id per TSG node (-1 none), where a gold annotator ran


@dataclass
class GoldObjects:
    """Evaluation only, never a model input: the gold object id of every TSG and DSG node of a batch (``-1``:
    none), from a dataset with gold scene graphs (the embedded world).  Ids are per clip, so a TSG node and a
    DSG node of one clip name one object when their ids are equal.  The alignment diagnostics score links
    with it (``align_link_precision``/``recall``)."""

    tsg: Tensor  # [N_tsg] long
    dsg: Tensor  # [N_dsg] long

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "GoldObjects":
        """Both tensors on ``device``."""
        return GoldObjects(self.tsg.to(device, non_blocking=non_blocking), self.dsg.to(device, non_blocking=non_blocking))


@dataclass
class Sample:
    """What a worker returns for one record: one clip (decoded once, one DSG) and any number of texts.

    ``targets`` are per sample: numbers, or sequences of ints (caption tokens) that collation pads with 0.
    ``timings``: seconds the worker spent on this sample per stage (``decode``, ``text``, and with graphs
    ``detect``, ``track``, ``parse``, ``link``; the batch adds ``collate``).
    """

    id: str
    frames: np.ndarray  # [T, H, W, 3] uint8
    texts: list[SampleText]
    dsg: SceneGraph | None = None
    targets: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    dsg_gold: Tensor | None = None  # [n_dsg] long: gold object id per DSG node (-1 none), where a gold annotator ran


@dataclass(frozen=True)
class BadSample:
    """What a worker returns instead of a :class:`Sample` when a record cannot be loaded and the run skips bad
    samples: which sample, which file, why.  Collation counts it and carries it to the main process."""

    id: str
    path: str
    reason: str


@dataclass
class FinstaBatch:
    """One batch of any task: ``B`` clips and ``M`` texts; text ``m`` belongs to clip ``text_sample[m]``.

    ``frames`` stay ``uint8`` until the model (4x less to copy to the device).  The TSG and HSG have one graph
    per text, the DSG one per clip.  ``targets`` are per clip (``[B]`` or ``[B, L]``), ``text_targets`` per
    text (``[M]``).
    """

    ids: list[str]
    frames: Tensor  # [B, T, H, W, 3] uint8
    text_ids: Tensor  # [M, L] long, 0 pads
    text_sample: Tensor  # [M] long
    targets: dict[str, Tensor]
    text_targets: dict[str, Tensor] = field(default_factory=dict)
    clip_key: Tensor | None = None  # [B] int64 hash of each clip's id (sample_key): equal for repeats, any rank
    tsg: GraphBatch | None = None
    dsg: GraphBatch | None = None
    hsg: GraphBatch | None = None
    hsg_source: Tensor | None = None  # [N_hsg] index into cat([tsg nodes, dsg nodes])
    span_node: Tensor | None = None  # TSG node of each (node, token) span entry
    span_token: Tensor | None = None  # flat index m * L + token of each entry
    osc: AlignmentBatch | None = None
    ptc: AlignmentBatch | None = None
    embedding_link: EmbeddingLinkRequest | None = None
    gold: GoldObjects | None = None  # evaluation only: where every sample of the batch has gold scene graphs
    num_skipped: int = 0
    bad_samples: list[BadSample] = field(default_factory=list)
    worker_seconds: dict[str, float] = field(default_factory=dict)  # per stage, summed over the batch's samples
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        """Number of clips."""
        return int(self.frames.shape[0])

    @property
    def num_texts(self) -> int:
        """Number of texts (over all clips)."""
        return int(self.text_sample.numel())

    @property
    def has_graphs(self) -> bool:
        """Whether scene graphs were built for this batch (at least the DSG; the TSG and HSG need texts)."""
        return self.dsg is not None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "FinstaBatch":
        """Move every tensor (also inside graphs, alignments and targets) to ``device``.  Lightning calls this
        itself: any batch with a ``to`` method is moved whole, so tasks need no ``transfer_batch_to_device``."""

        def move(x: Any) -> Any:
            if isinstance(x, (Tensor, GraphBatch, EmbeddingLinkRequest, GoldObjects)):
                return x.to(device, non_blocking=non_blocking)
            if isinstance(x, AlignmentBatch):
                return AlignmentBatch(*(None if getattr(x, f.name) is None else getattr(x, f.name).to(device, non_blocking=non_blocking)
                                        for f in fields(x)))
            if isinstance(x, dict):
                return {k: move(v) for k, v in x.items()}
            return x

        return replace(self, **{f.name: move(getattr(self, f.name)) for f in fields(self)})


def _alignments(items: Sequence[Alignment], ids: Sequence[str], tsg_off: Tensor, dsg_off: Tensor,
                track_off: Tensor) -> AlignmentBatch:
    anchors, aseg, regions, rseg, graph, keys, negs, nseg = [], [], [], [], [], [], [], []
    link_object, link_track = [], []
    p = 0
    for b, item in enumerate(items):
        base = sample_key(ids[b])
        conditions = item.conditions or [(-1, -1)] * len(item.anchors)
        for anc, reg, key, neg, (obj, tid) in zip(item.anchors, item.regions, item.keys, item.negatives, conditions,
                                                  strict=True):
            link_object.append(obj + int(tsg_off[b]) if obj >= 0 else -1)
            link_track.append(tid + int(track_off[b]) if tid >= 0 else -1)
            anchors += [a + int(tsg_off[b]) for a in anc]
            aseg += [p] * len(anc)
            regions += [r + int(dsg_off[b]) for r in reg]
            rseg += [p] * len(reg)
            negs += [r + int(dsg_off[b]) for r in neg]
            nseg += [p] * len(neg)
            keys.append(base | _descriptor_key(key))
            graph.append(b)
            p += 1
    long = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return AlignmentBatch(long(anchors), long(aseg), long(regions), long(rseg), long(graph), long(keys),
                          long(negs), long(nseg), long(link_object), long(link_track))


def _stack_targets(rows: Sequence[dict[str, Any]], where: str) -> dict[str, Tensor]:
    """Targets of several rows as tensors: numbers as ``[N]``, int sequences padded with 0 as ``[N, L]``."""
    if not rows:
        return {}
    keys = set(rows[0])
    for row in rows:
        if set(row) != keys:
            raise RuntimeError(f"{where} targets differ between samples: {sorted(keys)} vs {sorted(row)}")
    out = {}
    for key in sorted(keys):
        values = [row[key] for row in rows]
        if isinstance(values[0], (list, tuple)):
            width = max((len(v) for v in values), default=0)
            padded = torch.zeros(len(values), max(width, 1), dtype=torch.long)
            for i, v in enumerate(values):
                padded[i, : len(v)] = torch.as_tensor(v, dtype=torch.long)
            out[key] = padded
        else:
            out[key] = torch.as_tensor(values)
    return out


def collate_samples(samples: Sequence[Sample | BadSample | None],
                    encode_label: Callable[[str], list[int]]) -> FinstaBatch:
    """Stack samples; a :class:`BadSample` (or ``None``) is counted and carried along, not collated."""
    good = [s for s in samples if isinstance(s, Sample)]
    bad = [s for s in samples if isinstance(s, BadSample)]
    skipped = len(samples) - len(good)
    if not good:
        named = "; ".join(f"{b.id}: {b.reason}" for b in bad[:3])
        raise RuntimeError(f"every sample of a batch was bad ({skipped} skipped): {named}")
    seconds: dict[str, float] = {}
    for s in good:
        for stage, t in s.timings.items():
            seconds[stage] = seconds.get(stage, 0.0) + t
    texts = [t for s in good for t in s.texts]
    max_len = max((len(t.ids) for t in texts), default=1) or 1
    text = torch.zeros(len(texts), max_len, dtype=torch.long)
    for m, t in enumerate(texts):
        text[m, : len(t.ids)] = torch.as_tensor(t.ids, dtype=torch.long)
    text_sample = torch.repeat_interleave(torch.arange(len(good)), torch.tensor([len(s.texts) for s in good]))
    batch = FinstaBatch(
        ids=[s.id for s in good],
        frames=torch.stack([torch.from_numpy(s.frames) for s in good]),
        text_ids=text,
        text_sample=text_sample,
        targets=_stack_targets([s.targets for s in good], "sample"),
        text_targets=_stack_targets([t.targets for t in texts], "text"),
        clip_key=torch.tensor([sample_key(s.id) for s in good], dtype=torch.long),
        num_skipped=skipped,
        bad_samples=bad,
        worker_seconds=seconds,
    )
    if good[0].dsg is None:
        return batch
    batch.dsg = collate_graphs([s.dsg for s in good], encode_label)
    if not texts:
        return batch
    graphs = [t.graphs for t in texts]
    if any(g is None for g in graphs):
        raise RuntimeError("collation: some texts of a batch with scene graphs have none")
    n_dsg = torch.tensor([s.dsg.num_nodes for s in good])
    dsg_off = torch.cumsum(n_dsg, 0) - n_dsg
    text_dsg_off = dsg_off[text_sample]
    tsg = collate_graphs([g.tsg for g in graphs], encode_label)
    hsg = collate_graphs([g.hsg for g in graphs], encode_label)
    n_tsg = torch.tensor([g.tsg.num_nodes for g in graphs])
    tsg_off = torch.cumsum(n_tsg, 0) - n_tsg
    # HSG node k of text m is TSG node k (k < n_tsg[m]) or DSG node k - n_tsg[m] of that text's clip.
    n_hsg = n_tsg + n_dsg[text_sample]
    local = torch.arange(hsg.num_nodes) - (torch.cumsum(n_hsg, 0) - n_hsg)[hsg.node_graph]
    is_text = local < n_tsg[hsg.node_graph]
    source = torch.where(is_text, tsg_off[hsg.node_graph] + local,
                         int(n_tsg.sum()) + text_dsg_off[hsg.node_graph] + local - n_tsg[hsg.node_graph])
    # Token positions of every TSG node span, flattened: (node, m * L + token) pairs.
    start, end = tsg.node_span[:, 0], tsg.node_span[:, 1]
    length = torch.where(start >= 0, end - start, torch.zeros_like(start))
    span_node = torch.repeat_interleave(torch.arange(tsg.num_nodes), length)
    within = torch.arange(int(length.sum())) - torch.repeat_interleave(torch.cumsum(length, 0) - length, length)
    span_token = tsg.node_graph[span_node] * max_len + start[span_node] + within
    batch.tsg, batch.hsg, batch.hsg_source = tsg, hsg, source
    batch.span_node, batch.span_token = span_node, span_token
    # Region keys hash the clip's id (not the text's): every text of a clip names its regions alike, and repeats
    # of one record (DDP padding) match.
    text_ids = [good[int(b)].id for b in text_sample.tolist()]
    # Batch track ids as collate_graphs numbers them: per clip, offset by the clip's index times a span.
    text_track_off = text_sample * track_id_span([s.dsg for s in good])
    batch.osc = _alignments([g.osc for g in graphs], text_ids, tsg_off, text_dsg_off, text_track_off)
    batch.ptc = _alignments([g.ptc for g in graphs], text_ids, tsg_off, text_dsg_off, text_track_off)
    requests = [g.embedding_link for g in graphs]
    params = next((r for r in requests if r is not None), None)
    if params is not None:
        flags = torch.tensor([r is not None for r in requests])
        by_label = torch.tensor([bool(r[2]) if r is not None and len(r) > 2 else False for r in requests])
        batch.embedding_link = EmbeddingLinkRequest(flags, float(params[0]), int(params[1]),
                                                    torch.tensor([sample_key(i) for i in text_ids], dtype=torch.long),
                                                    by_label if bool(by_label.any()) else None, bool(flags.any()),
                                                    link_tracks(tsg, batch.dsg, text_sample, flags, int(params[1])))
    if all(s.dsg_gold is not None for s in good) and all(t.gold is not None for t in texts):
        batch.gold = GoldObjects(torch.cat([t.gold for t in texts]), torch.cat([s.dsg_gold for s in good]))
    return batch
