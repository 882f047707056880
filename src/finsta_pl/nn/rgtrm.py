"""Recurrent graph Transformer (R-GTrm) and the spatial-temporal Gaussian differential block (STGD).

R-GTrm block = one GTrm layer over the spatial (within-frame) and cross-modal edges of *all* frames of the
batch in one call, then a walk over frames: each node takes a gated update from its coreferent node in an
earlier frame (temporal coreference edges), and reads/writes a per-video memory (MART-style).  Only this
recurrence loops, over frames, never over graphs, and it reads its frame order and per-frame runs from the
worker's :class:`~finsta_pl.graphs.container.GraphIndex`, so it never waits for the device.

STGD (docs/DESIGN-NOTES.md §5): with ``d_i`` the displacement of object ``i`` since its coreferent node,
``Delta_i = mean_j ||d_j - d_i||^2`` over the other objects of its frame plus the static background
(``d = 0``), ``g = exp(-Delta / 2 sigma^2)`` with learnable ``sigma``, motion saliency ``m = 1 - g``;
``h_i += m_i * W (h_i - h_prev(i))`` and ``m`` biases the next block's attention towards moving nodes.
The group sums make Delta closed-form: ``sum_j ||d_j - d_i||^2 = S2 - 2 d_i.S1 + c ||d_i||^2``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from finsta_pl.graphs.container import GraphIndex
from finsta_pl.nn.gtrm import GTrmLayer
from finsta_pl.nn.scatter import scatter_sum, segment_sum


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

    def _fused_weights(self, d: int) -> tuple[Tensor, ...]:
        """The layers' weights regrouped by the tensor they multiply, transposed once per forward, so a frame
        step makes one product per input instead of one per layer (fewer launches; the parameters, and with
        them checkpoints, are unchanged).  Returns ``(gate_x, gate_bias, before, before_bias)`` and, with
        the memory, ``(read_x, read_x_bias, memory, memory_bias, summary)``."""
        gate_x, gate_before = self.gate.weight.split(d, 1)
        before = torch.cat([gate_before, self.carry.weight]).t()
        before_bias = torch.cat([torch.zeros_like(self.carry.bias), self.carry.bias])
        out = (gate_x.t(), self.gate.bias, before, before_bias)
        if not self.use_memory:
            return out
        read_x, read_mem = self.read_gate.weight.split(d, 1)
        update_sum, update_mem = self.update.weight.split(d, 1)
        gate_sum, gate_mem = self.update_gate.weight.split(d, 1)
        memory = torch.cat([read_mem, self.read.weight, gate_mem, update_mem]).t()
        memory_bias = torch.cat([torch.zeros_like(self.read.bias), self.read.bias, self.update_gate.bias, self.update.bias])
        summary = torch.cat([gate_sum, update_sum]).t()
        return out + (read_x.t(), self.read_gate.bias, memory, memory_bias, summary)

    def forward(self, h: Tensor, prev: Tensor, node_graph: Tensor, num_graphs: int, index: GraphIndex,
                active: Tensor | None = None) -> Tensor:
        """Walk the frames of ``index`` (frame-less text nodes are left alone).  ``prev`` is the coreferent node in
        an earlier frame or ``-1`` (``index.node_prev`` with switched-off or inactive links cut: it never adds a
        link); inactive nodes (switched off or dropped) are left out of the memory's frame summary.

        The nodes are taken into frame-major order once (``index.frame_order``, from the worker), so a frame is
        a slice, its nodes are sorted by graph (the memory's per-graph summary is one sorted-segment sum with
        the worker's lengths), and nothing here waits for the device.  Whatever does not depend on the walk is
        done once for all frames before it: the gate's input half, the summaries' counts."""
        steps = index.num_frames
        if steps == 0:
            return h
        d = h.shape[1]
        order = index.frame_order
        x = h.index_select(0, order)
        # A link survives only where the caller's ``prev`` keeps it; its target is then at frame_prev.
        linked_at = torch.where(prev.index_select(0, order) >= 0, index.frame_prev, torch.full_like(order, -1))
        weights = self._fused_weights(d)
        gate_x, gate_bias, w_before, b_before = weights[:4]
        x_gate = torch.addmm(gate_bias, x, gate_x)  # the gate's input half, every frame in one product
        # Everything per node, cut into frames once (one split each, and one concatenation in the backward).
        sizes = [b - a for a, b in zip([0] + index.frame_end[:-1], index.frame_end)]
        per_frame = [x.split(sizes), x_gate.split(sizes), ((linked_at >= 0).to(h.dtype)[:, None]).split(sizes),
                     linked_at.clamp(min=0).split(sizes)]
        if self.use_memory:
            read_x, read_bias, w_memory, b_memory, w_summary = weights[4:]
            lengths = index.frame_count.flatten()
            per_frame.append(node_graph.index_select(0, order).split(sizes))
            if active is None:
                count = lengths.to(h.dtype)
            else:
                weight = active.index_select(0, order).to(h.dtype)[:, None]
                count = segment_sum(weight[:, 0], lengths)
                per_frame.append(weight.split(sizes))
            # Per (frame, graph): 1 / nodes, and whether the graph has no node in the frame (its memory stays).
            inverse = (1.0 / count.clamp(min=1)).view(steps, num_graphs, 1).unbind(0)
            skips = (count == 0).view(steps, num_graphs, 1).unbind(0)
            memory = self.memory0.expand(num_graphs, -1)
        # Each frame's output goes into one buffer that later frames gather from.
        out = x.new_zeros(x.shape)
        start = 0
        for t, (end, columns) in enumerate(zip(index.frame_end, zip(*per_frame))):
            if end == start:
                continue
            cur, cur_gate, linked, linked_at_t, *rest = columns
            # A frame's links point into earlier frames, all already in ``out`` (what makes it recurrent); the
            # first frame has none, and reads itself under a zero mask so every weight takes part.
            before = out.index_select(0, linked_at_t) if start else cur
            gate, carry = torch.addmm(b_before, before, w_before).split(d, 1)
            cur = torch.addcmul(cur, linked * torch.sigmoid(cur_gate + gate), carry)
            if self.use_memory:
                # One product of the memory for all its uses: read gate, read, and the update's memory terms.
                read, from_memory = torch.addmm(b_memory, memory, w_memory).split(2 * d, 1)
                read_gate, read = read.index_select(0, rest[0]).split(d, 1)
                r = torch.sigmoid(torch.addmm(read_gate, cur, read_x) + read_bias)
                cur = torch.addcmul(cur, r, read)
                rows = cur if active is None else cur * rest[1]
                summary = segment_sum(rows, index.frame_count[t]) * inverse[t]
                z, update = torch.addmm(from_memory, summary, w_summary).split(d, 1)
                # lerp(u, m, 1) is exactly m: a graph without nodes in this frame keeps its memory.
                # Under autocast the products are half precision while the memory started in fp32: one dtype.
                dt = torch.promote_types(update.dtype, memory.dtype)
                memory = torch.lerp(torch.tanh(update).to(dt), memory.to(dt), torch.sigmoid(z).masked_fill(skips[t], 1.0).to(dt))
            out = out.slice_scatter(self.norm(cur), 0, start, end)
            start = end
        return h.index_copy(0, order, out)


class FrameScan(nn.Module):
    """The frame recurrence in a form that runs in ``ceil(log2 frames)`` steps for all frames at once
    (``finsta.recurrence: scan``; :class:`FrameRecurrence` is ``loop``).

    Its updates are *linear in the earlier state, with gates that read only the current input*, which is what
    lets a parallel scan solve them (minGRU/GLA-style; the loop's gates read the earlier state, so it cannot):

    - along coreference links, ``s_i = v_i + a_i * s_prev(i)`` with ``v = W_v x``, ``a = sigmoid(W_a x)`` (0 where
      no link survives), solved by pointer jumping over the worker's ``frame_prev`` (each round doubles how far
      back every node has summed);
    - per video, ``M_t = (1 - u_t) * M_(t-1) + u_t * tanh(W_w q_t)`` with ``q_t`` the mean of the frame's (active)
      nodes, ``u_t = sigmoid(W_u q_t)`` (0 for a video without nodes in the frame: its memory stays), ``M_(-1)``
      learned; solved by doubling over the ``[frames, videos]`` grid;
    - each node reads the memory before its frame: ``out_i = LN(x_i + W_o s_i + sigmoid(W_r [x_i, M]) * W_m M)``.

    The number of operators grows with ``log2`` of the frames, not with the frames, and not with the graphs;
    nothing waits for the device (every size comes from the worker's :class:`GraphIndex`)."""

    def __init__(self, dim: int, use_memory: bool = True) -> None:
        super().__init__()
        self.value_retain = nn.Linear(dim, 2 * dim)  # v and the retention gate's logits, one product
        self.out = nn.Linear(dim, dim)
        self.use_memory = use_memory
        if use_memory:
            self.memory0 = nn.Parameter(torch.zeros(dim))
            self.write = nn.Linear(dim, 2 * dim)  # the write gate's logits and the written value
            self.read_gate = nn.Linear(2 * dim, dim)
            self.read = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: Tensor, prev: Tensor, node_graph: Tensor, num_graphs: int, index: GraphIndex,
                active: Tensor | None = None) -> Tensor:
        """As :meth:`FrameRecurrence.forward` (same arguments, frame-less nodes left alone)."""
        steps = index.num_frames
        if steps == 0:
            return h
        order = index.frame_order
        x = h.index_select(0, order)
        d = x.shape[1]
        v, retain = self.value_retain(x).split(d, 1)
        linked_at = torch.where(prev.index_select(0, order) >= 0, index.frame_prev, torch.full_like(order, -1))
        retain = torch.sigmoid(retain) * (linked_at >= 0).to(x.dtype)[:, None]
        # Pointer jumping: after round r, s_i sums the first 2^r nodes of i's chain, a_i is the product of their
        # gates (0 once the chain has ended: a chain's first node has a = 0) and ptr the node 2^r back.  A node
        # without a link points at itself (its a is 0, so what it reads there does not count), not all at one
        # row, whose gradient would gather every such node's atomics on a GPU.
        rows = torch.arange(x.shape[0], device=x.device)
        s, a, ptr = v, retain, torch.where(linked_at >= 0, linked_at, rows)
        for _ in range((steps - 1).bit_length()):
            s = torch.addcmul(s, a, s.index_select(0, ptr))
            a = a * a.index_select(0, ptr)
            ptr = ptr.index_select(0, ptr)
        y = x + self.out(s)
        if self.use_memory:
            y = y + self._read_memory(x, num_graphs, index, None if active is None else active.index_select(0, order))
        # Under autocast the norm may come back in another dtype than the stream's.
        return h.index_copy(0, order, self.norm(y).to(h.dtype))

    def _read_memory(self, x: Tensor, num_graphs: int, index: GraphIndex, active: Tensor | None) -> Tensor:
        """Each node's read of its video's memory before its frame (``x`` in frame-major order)."""
        steps, d = index.num_frames, x.shape[1]
        lengths = index.frame_count.flatten()  # per (frame, video), the frame-major runs of ``x``
        if active is None:
            rows, count = x, lengths.to(x.dtype)
        else:
            weight = active.to(x.dtype)[:, None]
            rows, count = x * weight, segment_sum(weight[:, 0], lengths)
        summary = segment_sum(rows, lengths) / count.clamp(min=1)[:, None]
        gate, value = self.write(summary).split(d, 1)
        write = torch.sigmoid(gate) * (count > 0).to(x.dtype)[:, None]
        # M_t = keep_t * M_(t-1) + add_t over frames, per video: doubling over the [frames, videos] grid.
        keep = (1 - write).view(steps, num_graphs, d)
        add = (write * torch.tanh(value)).view(steps, num_graphs, d)
        shift = 1
        while shift < steps:
            add = torch.cat([add[:shift], torch.addcmul(add[shift:], keep[shift:], add[:-shift])])
            keep = torch.cat([keep[:shift], keep[shift:] * keep[:-shift]])
            shift *= 2
        memory0 = self.memory0.to(x.dtype)
        memory = torch.addcmul(add, keep, memory0)  # M_t, every frame
        before = torch.cat([memory0.expand(1, num_graphs, d), memory[:-1]]).view(steps * num_graphs, d)
        # Node i of frame t and video g reads row t * G + g: the (frame, video) block of its worker-side padding
        # slot (``GraphIndex.frame_slot``, blocks of ``frame_width`` rows).
        read = before.index_select(0, torch.div(index.frame_slot, index.frame_width, rounding_mode="floor"))
        if steps == 1:  # no frame reads a written memory: the write takes part under a zero, as DDP needs
            read = read + 0 * memory.sum()
        return torch.sigmoid(self.read_gate(torch.cat([x, read], 1))) * self.read(read)


#: the frame recurrences by ``finsta.recurrence`` name.
RECURRENCES: dict[str, type[nn.Module]] = {"loop": FrameRecurrence, "scan": FrameScan}


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
    """One R-GTrm block: a GTrm layer over all frames at once, then the frame recurrence (``recurrence``: a
    :data:`RECURRENCES` name)."""

    def __init__(self, dim: int, num_heads: int, dropout: float, backend: str, use_memory: bool = True,
                 update_edges: bool = True, recurrence: str = "loop") -> None:
        super().__init__()
        self.spatial = GTrmLayer(dim, num_heads, dropout=dropout, backend=backend, update_edges=update_edges)
        self.temporal = RECURRENCES[recurrence](dim, use_memory)

    def forward(
        self, h: Tensor, e: Tensor, edge_index: Tensor, node_graph: Tensor, num_graphs: int,
        index: GraphIndex, prev: Tensor, key_bias: Tensor | None = None, active: Tensor | None = None,
        edge_keep: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``edge_index``/``e``: the non-temporal edges (``edge_keep``: which of them count, ``None`` = all);
        ``prev``: coreferent node in an earlier frame; ``index``: the graphs' :class:`GraphIndex`."""
        h, e = self.spatial(h, e, edge_index, node_graph, num_graphs, key_bias=key_bias, index=index,
                            edge_keep=edge_keep)
        return self.temporal(h, prev, node_graph, num_graphs, index, active), e
