"""Collation into :class:`FinstaBatch`: frames, text, task targets and the batched TSG/DSG/HSG tensors.

Everything index-shaped is computed here, in the worker, so the model only gathers and scatters: the HSG's
source of each node in ``cat([tsg nodes, dsg nodes])``, the token positions of each TSG node's span, and the
flat anchor/region lists of the OSC and PTC pairs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from finsta_pl.graphs.container import GraphBatch, collate_graphs
from finsta_pl.graphs.hsg import Alignment


@dataclass
class AlignmentBatch:
    """Flat OSC or PTC pairs: pair ``p`` pools TSG nodes ``anchor_nodes[anchor_seg == p]`` and DSG nodes
    ``region_nodes[region_seg == p]``; ``pair_graph`` is the sample of each pair."""

    anchor_nodes: Tensor
    anchor_seg: Tensor
    region_nodes: Tensor
    region_seg: Tensor
    pair_graph: Tensor
    region_key: Tensor  # [P] int64: pairs with equal keys share their positive (see sample_key)
    negative_nodes: Tensor  # DSG nodes of each pair's hard negative region (pairs may have none)
    negative_seg: Tensor

    @property
    def num_pairs(self) -> int:
        """Number of pairs."""
        return int(self.pair_graph.numel())


@dataclass
class EmbeddingLinkRequest:
    """Samples whose cross-modal links the model finds by host embedding similarity (``nn/linking.py``):
    their DSG has no labels to compare, so collation left their HSG without cross-modal edges."""

    samples: Tensor  # [B] bool
    threshold: float
    top_k: int
    sample_key: Tensor  # [B] int64, see sample_key(); keys of the OSC pairs the model adds

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "EmbeddingLinkRequest":
        """Move the tensors to ``device``."""
        return replace(self, samples=self.samples.to(device, non_blocking=non_blocking),
                       sample_key=self.sample_key.to(device, non_blocking=non_blocking))


def sample_key(sample_id: str) -> int:
    """A process-independent 31-bit hash of a sample id, shifted into the high half of an int64 region key.

    Region keys are ``sample_key | descriptor``: equal only for the same region of the same sample, on any rank
    (a DistributedSampler's padding repeats a sample on another rank: then the repeat is masked too).  The low
    31 bits hash the worker's region descriptor; ``2**31 + track`` marks regions of embedding links.
    """
    return (zlib.crc32(sample_id.encode()) & 0x7FFFFFFF) << 32


def _descriptor_key(descriptor: str) -> int:
    return zlib.crc32(descriptor.encode()) & 0x7FFFFFFF


@dataclass
class FinstaBatch:
    """One batch of any task. ``frames`` stay ``uint8`` until the model (4x less to copy to the device)."""

    ids: list[str]
    frames: Tensor  # [B, T, H, W, 3] uint8
    text_ids: Tensor  # [B, L] long, 0 pads
    targets: dict[str, Tensor]
    tsg: GraphBatch | None = None
    dsg: GraphBatch | None = None
    hsg: GraphBatch | None = None
    hsg_source: Tensor | None = None  # [N_hsg] index into cat([tsg nodes, dsg nodes])
    span_node: Tensor | None = None  # TSG node of each (node, token) span entry
    span_token: Tensor | None = None  # flat index b * L + token of each entry
    osc: AlignmentBatch | None = None
    ptc: AlignmentBatch | None = None
    embedding_link: EmbeddingLinkRequest | None = None
    num_skipped: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        """Number of samples."""
        return int(self.frames.shape[0])

    @property
    def has_graphs(self) -> bool:
        """Whether scene graphs were built for this batch."""
        return self.tsg is not None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "FinstaBatch":
        """Move every tensor (also inside graphs, alignments and targets) to ``device``.  Lightning calls this
        itself: any batch with a ``to`` method is moved whole, so tasks need no ``transfer_batch_to_device``."""

        def move(x: Any) -> Any:
            if isinstance(x, (Tensor, GraphBatch, EmbeddingLinkRequest)):
                return x.to(device, non_blocking=non_blocking)
            if isinstance(x, AlignmentBatch):
                return AlignmentBatch(*(getattr(x, f.name).to(device, non_blocking=non_blocking) for f in fields(x)))
            if isinstance(x, dict):
                return {k: move(v) for k, v in x.items()}
            return x

        return replace(self, **{f.name: move(getattr(self, f.name)) for f in fields(self)})


def _alignments(items: Sequence[Alignment], ids: Sequence[str], tsg_off: Tensor, dsg_off: Tensor) -> AlignmentBatch:
    anchors, aseg, regions, rseg, graph, keys, negs, nseg = [], [], [], [], [], [], [], []
    p = 0
    for b, item in enumerate(items):
        base = sample_key(ids[b])
        for anc, reg, key, neg in zip(item.anchors, item.regions, item.keys, item.negatives, strict=True):
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
                          long(negs), long(nseg))


def collate_samples(
    samples: Sequence[dict[str, Any] | None], encode_label: Callable[[str], list[int]], target_keys: Sequence[str]
) -> FinstaBatch:
    """Stack samples (``None`` marks a skipped bad sample and is counted, not collated)."""
    good = [s for s in samples if s is not None]
    skipped = len(samples) - len(good)
    if not good:
        raise RuntimeError(f"every sample of a batch was bad ({skipped} skipped); see the warnings above")
    max_len = max(len(s["text_ids"]) for s in good)
    text = torch.zeros(len(good), max_len, dtype=torch.long)
    for b, s in enumerate(good):
        text[b, : len(s["text_ids"])] = torch.tensor(s["text_ids"])
    batch = FinstaBatch(
        ids=[s["id"] for s in good],
        frames=torch.stack([torch.from_numpy(s["frames"]) for s in good]),
        text_ids=text,
        targets={k: torch.as_tensor([s[k] for s in good]) for k in target_keys},
        num_skipped=skipped,
    )
    if "tsg" not in good[0]:
        return batch
    tsg = collate_graphs([s["tsg"] for s in good], encode_label)
    dsg = collate_graphs([s["dsg"] for s in good], encode_label)
    hsg = collate_graphs([s["hsg"] for s in good], encode_label)
    n_tsg = torch.tensor([s["tsg"].num_nodes for s in good])
    n_dsg = torch.tensor([s["dsg"].num_nodes for s in good])
    tsg_off, dsg_off = torch.cumsum(n_tsg, 0) - n_tsg, torch.cumsum(n_dsg, 0) - n_dsg
    # HSG node k of sample b is TSG node k (k < n_tsg[b]) or DSG node k - n_tsg[b] of that sample.
    local = torch.arange(hsg.num_nodes) - (torch.cumsum(n_tsg + n_dsg, 0) - n_tsg - n_dsg)[hsg.node_graph]
    is_text = local < n_tsg[hsg.node_graph]
    source = torch.where(is_text, tsg_off[hsg.node_graph] + local,
                         int(n_tsg.sum()) + dsg_off[hsg.node_graph] + local - n_tsg[hsg.node_graph])
    # Token positions of every TSG node span, flattened: (node, b * L + token) pairs.
    start, end = tsg.node_span[:, 0], tsg.node_span[:, 1]
    length = torch.where(start >= 0, end - start, torch.zeros_like(start))
    span_node = torch.repeat_interleave(torch.arange(tsg.num_nodes), length)
    within = torch.arange(int(length.sum())) - torch.repeat_interleave(torch.cumsum(length, 0) - length, length)
    span_token = tsg.node_graph[span_node] * max_len + start[span_node] + within
    batch.tsg, batch.dsg, batch.hsg, batch.hsg_source = tsg, dsg, hsg, source
    batch.span_node, batch.span_token = span_node, span_token
    ids = [s["id"] for s in good]
    batch.osc = _alignments([s["osc"] for s in good], ids, tsg_off, dsg_off)
    batch.ptc = _alignments([s["ptc"] for s in good], ids, tsg_off, dsg_off)
    requests = [s.get("embedding_link") for s in good]
    params = next((r for r in requests if r is not None), None)
    if params is not None:
        flags = torch.tensor([r is not None for r in requests])
        batch.embedding_link = EmbeddingLinkRequest(flags, float(params[0]), int(params[1]),
                                                    torch.tensor([sample_key(i) for i in ids], dtype=torch.long))
    return batch
