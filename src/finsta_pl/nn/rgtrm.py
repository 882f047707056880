"""Recurrent graph Transformer (R-GTrm) and the spatial-temporal Gaussian differential block (STGD).

R-GTrm block = one GTrm layer over the spatial (within-frame) and cross-modal edges of *all* frames of the
batch in one call, then a walk over frames: each node takes a gated update from its coreferent node in the
previous frame (temporal coreference edges), and reads/writes a per-video memory (MART-style).  Only this
recurrence loops, over frames, never over graphs.

STGD (DESIGN.md §5): with ``d_i`` the displacement of object ``i`` since its coreferent node,
``Delta_i = mean_j ||d_j - d_i||^2`` over the other objects of its frame plus the static background
(``d = 0``), ``g = exp(-Delta / 2 sigma^2)`` with learnable ``sigma``, motion saliency ``m = 1 - g``;
``h_i += m_i * W (h_i - h_prev(i))`` and ``m`` biases the next block's attention towards moving nodes.
The group sums make Delta closed-form: ``sum_j ||d_j - d_i||^2 = S2 - 2 d_i.S1 + c ||d_i||^2``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from finsta_pl.nn.gtrm import GTrmLayer
from finsta_pl.nn.scatter import scatter_sum


class FrameRecurrence(nn.Module):
    """Gated temporal update along coreference edges plus a per-video memory, walking frames in order."""

    def __init__(self, dim: int, use_memory: bool = True) -> None:
        super().__init__()
        self.gate = nn.Linear(2 * dim, dim)
        self.carry = nn.Linear(dim, dim)
        self.use_memory = use_memory
        if use_memory:
            self.memory0 = nn.Parameter(torch.zeros(dim))
            self.read_gate = nn.Linear(2 * dim, dim)
            self.read = nn.Linear(dim, dim)
            self.update = nn.Linear(2 * dim, dim)
            self.update_gate = nn.Linear(2 * dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: Tensor, frame: Tensor, prev: Tensor, node_graph: Tensor, num_graphs: int,
                active: Tensor | None = None) -> Tensor:
        """``frame`` is ``-1`` for frame-less (text) nodes, which the recurrence leaves alone; ``prev`` is the
        coreferent node in the previous frame or ``-1``; inactive nodes (switched off or dropped) are left out
        of the memory's frame summary."""
        if frame.numel() == 0 or int(frame.max()) < 0:
            return h
        weight = (active if active is not None else torch.ones_like(frame, dtype=torch.bool)).to(h.dtype)
        memory = self.memory0.expand(num_graphs, -1) if self.use_memory else None
        for t in range(int(frame.max()) + 1):
            idx = (frame == t).nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            cur = h[idx]
            p = prev[idx]
            # Masked rather than skipped when nothing is linked: no host sync, and every parameter always takes
            # part in the loss (DDP requires it).
            linked = (p >= 0).to(cur.dtype)[:, None]
            before = h[p.clamp(min=0)]  # already updated at t-1: this is what makes it recurrent
            z = torch.sigmoid(self.gate(torch.cat([cur, before], -1)))
            cur = cur + linked * z * self.carry(before)
            if self.use_memory:
                g = node_graph[idx]
                m = memory[g]
                cur = cur + torch.sigmoid(self.read_gate(torch.cat([cur, m], -1))) * self.read(m)
                w = weight[idx]
                count = scatter_sum(w, g, num_graphs)[:, None]
                summary = scatter_sum(cur * w[:, None], g, num_graphs) / count.clamp(min=1)
                present = count > 0
                both = torch.cat([summary, memory], -1)
                z = torch.sigmoid(self.update_gate(both))
                memory = torch.where(present, z * memory + (1 - z) * torch.tanh(self.update(both)), memory)
            h = h.index_put((idx,), self.norm(cur))
        return h


class STGD(nn.Module):
    """Spatial-temporal Gaussian differential block (see module docstring)."""

    def __init__(self, dim: int, num_heads: int, sigma: float = 0.03) -> None:
        super().__init__()
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))
        self.diff = nn.Linear(dim, dim)
        self.attention_bias = nn.Parameter(torch.ones(num_heads))

    def saliency(self, center: Tensor, prev: Tensor, is_object: Tensor, group: Tensor, num_groups: int) -> Tensor:
        """Motion saliency ``m in [0, 1)`` of every node (``0`` for non-objects and objects seen first)."""
        # At least fp32 whatever autocast does: exp(-Delta / 2 sigma^2) with sigma ~0.03 underflows in fp16.
        center = center.to(torch.promote_types(center.dtype, torch.float32))
        has_prev = (prev >= 0) & is_object
        d = torch.where(has_prev[:, None], center - center[prev.clamp(min=0)], torch.zeros_like(center))
        w = is_object.to(center.dtype)
        s1 = scatter_sum(d * w[:, None], group, num_groups)[group] - d
        s2 = scatter_sum((d * d).sum(-1) * w, group, num_groups)[group] - (d * d).sum(-1)
        count = scatter_sum(w, group, num_groups)[group]  # other objects + the background, = objects in frame
        # The closed form cancels large terms: in floating point it can dip just below zero.
        delta = ((s2 - 2 * (d * s1).sum(-1) + count * (d * d).sum(-1)) / count.clamp(min=1)).clamp(min=0)
        g = torch.exp(-delta / (2 * torch.exp(2 * self.log_sigma)))
        return (1 - g) * has_prev

    def forward(self, h: Tensor, saliency: Tensor, prev: Tensor) -> tuple[Tensor, Tensor]:
        """Updated ``h`` and the per-head key bias for the next block's attention."""
        change = h - h[prev.clamp(min=0)]
        h = h + saliency[:, None] * self.diff(change)
        return h, saliency[:, None] * self.attention_bias


class RGTrmBlock(nn.Module):
    """One R-GTrm block: a GTrm layer over all frames at once, then the frame recurrence."""

    def __init__(self, dim: int, num_heads: int, dropout: float, backend: str, use_memory: bool = True,
                 update_edges: bool = True) -> None:
        super().__init__()
        self.spatial = GTrmLayer(dim, num_heads, dropout=dropout, backend=backend, update_edges=update_edges)
        self.temporal = FrameRecurrence(dim, use_memory)

    def forward(
        self, h: Tensor, e: Tensor, edge_index: Tensor, node_graph: Tensor, num_graphs: int,
        frame: Tensor, prev: Tensor, key_bias: Tensor | None = None, active: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``edge_index``/``e``: the non-temporal edges; ``prev``: coreferent node in the previous frame."""
        h, e = self.spatial(h, e, edge_index, node_graph, num_graphs, key_bias=key_bias)
        return self.temporal(h, frame, prev, node_graph, num_graphs, active), e
