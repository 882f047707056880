"""``finsta.recurrence: scan`` (issue 23): the frame recurrence as a parallel scan, against a frame-by-frame
reference of the same update written here as the specification, and its operator count (it must not grow with
the frames, only with their log2, and never sync)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from finsta_pl.graphs.container import collate_graphs
from finsta_pl.nn.rgtrm import FrameScan, RGTrmBlock
from finsta_pl.nn.scatter import scatter_sum
from finsta_pl.tools.dispatch_count import count_dispatch
from tests.graphs.test_graph_index import _batch, _video_graph
from tests.helpers.recurrence import assert_recurrences_agree


def _reference_scan(rec: FrameScan, h: Tensor, frame: Tensor, prev: Tensor, node_graph: Tensor, num_graphs: int,
                    active: Tensor | None) -> Tensor:
    """Frame by frame: s_i = v_i + a_i * s_prev(i); the memory updated after each frame from its nodes' inputs;
    each node reads the memory as it was before its frame."""
    d = h.shape[1]
    weight = (active if active is not None else torch.ones_like(frame, dtype=torch.bool)).to(h.dtype)
    v, retain = rec.value_retain(h).split(d, 1)
    s = torch.zeros_like(h)
    out = h.clone()
    memory = rec.memory0.expand(num_graphs, -1) if rec.use_memory else None
    for t in range(int(frame.max()) + 1):
        idx = (frame == t).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        p = prev[idx]
        a = torch.sigmoid(retain[idx]) * (p >= 0).to(h.dtype)[:, None]
        s = s.index_put((idx,), v[idx] + a * s[p.clamp(min=0)])
        y = h[idx] + rec.out(s[idx])
        if rec.use_memory:
            g = node_graph[idx]
            m = memory[g]
            y = y + torch.sigmoid(rec.read_gate(torch.cat([h[idx], m], -1))) * rec.read(m)
            w = weight[idx]
            count = scatter_sum(w, g, num_graphs)[:, None]
            summary = scatter_sum(h[idx] * w[:, None], g, num_graphs) / count.clamp(min=1)
            gate, value = rec.write(summary).split(d, 1)
            u = torch.sigmoid(gate) * (count > 0).to(h.dtype)
            memory = (1 - u) * memory + u * torch.tanh(value)
        out = out.index_put((idx,), rec.norm(y))
    return out


@pytest.mark.parametrize("memory", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_scan_equals_the_frame_by_frame_reference(memory: bool, masked: bool) -> None:
    torch.manual_seed(0)
    g = _batch(1)  # graphs of 4, 2 and 4 frames; a track that skips a frame
    rec = FrameScan(8, use_memory=memory).double()
    for p in rec.parameters():
        torch.nn.init.normal_(p, std=0.5)
    assert_recurrences_agree(
        rec, g, masked,
        lambda h, prev, active: rec(h, prev, g.node_graph, g.num_graphs, g.index, active),
        lambda h, prev, active: _reference_scan(rec, h, g.node_frame, prev, g.node_graph, g.num_graphs, active))
    # Chains of three links, so the pointer jumping took two rounds.
    prev = g.index.node_prev
    assert bool(((prev >= 0) & (prev[prev.clamp(min=0)] >= 0) & (prev[prev[prev.clamp(min=0)].clamp(min=0)] >= 0)).any())


def test_scan_operators_grow_with_log_frames_not_frames() -> None:
    counts = {}
    for frames in (4, 8, 16):
        gen = torch.Generator().manual_seed(frames)
        g = collate_graphs([_video_graph(frames, 3, gen), _video_graph(frames, 2, gen)], lambda label: [1])
        block = RGTrmBlock(8, 2, 0.0, "dense", recurrence="scan")
        h = torch.randn(g.num_nodes, 8, requires_grad=True)

        def step() -> None:
            out = block.temporal(h, g.index.node_prev, g.node_graph, g.num_graphs, g.index)
            out.sum().backward()

        step()
        counts[frames] = count_dispatch(step)
    assert all(c.syncs == 0 for c in counts.values()), {f: dict(c.by_sync) for f, c in counts.items()}
    # One more doubling round per doubling of the frames: the same few operators each time.
    assert counts[16].ops - counts[8].ops == counts[8].ops - counts[4].ops > 0
    assert counts[16].ops < 1.5 * counts[4].ops


def test_unknown_recurrence_is_refused_by_name() -> None:
    from finsta_pl.nn.finsta import FinstaConfig

    with pytest.raises(ValueError, match="FinstaConfig.recurrence: 'rnn' is none of \\['loop', 'scan'\\]"):
        FinstaConfig(recurrence="rnn", dsg_blocks=0)  # refused whether or not any block would build it


def test_scan_follows_long_chains_exactly() -> None:
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(3)
    # 9 and 5 frames (chains of 8 and 4 links; one track skips a frame, its edge jumps it): 4 rounds of jumping.
    g = collate_graphs([_video_graph(9, 2, gen, skip=4), _video_graph(5, 3, gen)], lambda label: [1])
    rec = FrameScan(6).double()
    for p in rec.parameters():
        torch.nn.init.normal_(p, std=0.5)
    h = torch.randn(g.num_nodes, 6, dtype=torch.float64)
    prev = g.index.node_prev
    torch.testing.assert_close(rec(h, prev, g.node_graph, g.num_graphs, g.index),
                               _reference_scan(rec, h, g.node_frame, prev, g.node_graph, g.num_graphs, None),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("frames", [1, 3])
def test_every_scan_weight_gets_a_gradient(frames: int) -> None:
    """DDP without ``find_unused_parameters`` needs a gradient for every weight, even for one-frame clips."""
    g = collate_graphs([_video_graph(frames, 2, torch.Generator().manual_seed(0))], lambda label: [1])
    rec = FrameScan(4)
    rec(torch.randn(g.num_nodes, 4), g.index.node_prev, g.node_graph, g.num_graphs, g.index).square().sum().backward()
    assert all(p.grad is not None for p in rec.parameters())
