"""The graph encoder's sync-free paths (issue 23): the worker-side GraphIndex, the frame recurrence over frame-major
slices, RoI pooling as one bmm, each against a plain reference written here as the specification (the
implementations they replaced), and the operator / host-sync budget of one encoder forward + backward."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from finsta_pl.graphs.container import EDGE, NODE, SPATIAL, GraphBatch, SceneGraph, collate_graphs
from finsta_pl.nn.finsta import _roi_pool
from finsta_pl.nn.rgtrm import FrameRecurrence
from finsta_pl.nn.scatter import scatter_sum
from finsta_pl.tools.dispatch_count import count_dispatch
from tests.helpers.recurrence import assert_recurrences_agree


def _video_graph(frames: int, objects: int, gen: torch.Generator, skip: int | None = None) -> SceneGraph:
    """Objects tracked over ``frames`` keyframes, one relation per frame, and a track that is not seen in frame
    ``skip`` (its temporal edge then jumps a frame, as the DSG builder writes it)."""
    types, frame, track, boxes, edges = [], [], [], [], []
    last: dict[int, int] = {}
    for t in range(frames):
        here = []
        for o in range(objects):
            if skip is not None and t == skip and o == 0:
                continue
            node = len(types)
            types.append(NODE["object"])
            frame.append(t)
            track.append(o)
            x, y = torch.rand(2, generator=gen).tolist()
            boxes.append([x * 0.6, y * 0.6, x * 0.6 + 0.3, y * 0.6 + 0.25])
            if o in last:
                edges.append((last[o], node, EDGE["temporal"]))
            last[o] = node
            here.append(node)
        rel = len(types)
        types.append(NODE["relation"])
        frame.append(t)
        track.append(-1)
        boxes.append([0.0] * 4)
        edges += [(here[0], rel, EDGE["subject"]), (rel, here[-1], EDGE["object"])]
    e = torch.tensor(edges, dtype=torch.long)
    return SceneGraph(torch.tensor(types), ["x"] * len(types), e[:, :2].t().contiguous(), e[:, 2].contiguous(),
                      node_frame=torch.tensor(frame), node_track=torch.tensor(track), node_box=torch.tensor(boxes))


def _batch(seed: int = 0) -> GraphBatch:
    gen = torch.Generator().manual_seed(seed)
    # Graphs of different lengths: one ends two frames early, so later frames hold no node of it.
    graphs = [_video_graph(4, 3, gen, skip=2), _video_graph(2, 2, gen), _video_graph(4, 1, gen)]
    return collate_graphs(graphs, lambda label: [1])


def test_index_matches_the_graphs() -> None:
    g = _batch()
    index = g.index
    # Previous node along temporal edges, read off the edge list.
    temporal = g.edge_type == EDGE["temporal"]
    expected = torch.full((g.num_nodes,), -1)
    expected[g.edge_index[1, temporal]] = g.edge_index[0, temporal]
    assert torch.equal(index.node_prev, expected)
    assert int((index.node_prev >= 0).sum()) == int(temporal.sum())
    # Frame-major order: by frame, then node (so by graph); runs and counts agree.
    order = index.frame_order
    assert torch.equal(g.node_frame[order], torch.sort(g.node_frame[g.node_frame >= 0], stable=True).values)
    assert index.frame_end[-1] == order.numel() and index.num_frames == 4
    assert index.frame_count.sum().item() == order.numel() and index.frame_count[3, 1] == 0  # graph 1 ended
    # frame_prev points at the same node as node_prev, in frame-major positions, always to an earlier frame.
    has = index.frame_prev >= 0
    assert torch.equal(order[index.frame_prev[has]], index.node_prev[order][has])
    assert bool((g.node_frame[order[index.frame_prev[has]]] < g.node_frame[order][has]).all())
    # A skipped sighting makes a link that jumps a frame.
    assert bool((g.node_frame[order][has] - g.node_frame[order[index.frame_prev[has]]] == 2).any())
    assert index.frame_slot.unique().numel() == order.numel()
    # Spatial edges by slice are the same edges as by selection.
    sliced, _ = g.edges_in(1)
    selected, _ = g.edges_of(SPATIAL)
    assert sorted(map(tuple, sliced.t().tolist())) == sorted(map(tuple, selected.t().tolist()))
    assert index.nmax == int(torch.bincount(g.node_graph).max())


def _reference_recurrence(rec: FrameRecurrence, h: Tensor, frame: Tensor, prev: Tensor, node_graph: Tensor,
                          num_graphs: int, active: Tensor | None) -> Tensor:
    """The walk as it was written before the index: a selection per frame, one layer call per use."""
    weight = (active if active is not None else torch.ones_like(frame, dtype=torch.bool)).to(h.dtype)
    memory = rec.memory0.expand(num_graphs, -1) if rec.use_memory else None
    for t in range(int(frame.max()) + 1):
        idx = (frame == t).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        cur, p = h[idx], prev[idx]
        linked = (p >= 0).to(cur.dtype)[:, None]
        before = h[p.clamp(min=0)]
        z = torch.sigmoid(rec.gate(torch.cat([cur, before], -1)))
        cur = cur + linked * z * rec.carry(before)
        if rec.use_memory:
            g = node_graph[idx]
            m = memory[g]
            cur = cur + torch.sigmoid(rec.read_gate(torch.cat([cur, m], -1))) * rec.read(m)
            w = weight[idx]
            count = scatter_sum(w, g, num_graphs)[:, None]
            summary = scatter_sum(cur * w[:, None], g, num_graphs) / count.clamp(min=1)
            both = torch.cat([summary, memory], -1)
            z = torch.sigmoid(rec.update_gate(both))
            memory = torch.where(count > 0, z * memory + (1 - z) * torch.tanh(rec.update(both)), memory)
        h = h.index_put((idx,), rec.norm(cur))
    return h


@pytest.mark.parametrize("memory", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_recurrence_equals_the_reference(memory: bool, masked: bool) -> None:
    torch.manual_seed(0)
    g = _batch(1)
    rec = FrameRecurrence(8, use_memory=memory).double()
    for p in rec.parameters():  # non-trivial norm and memory start
        torch.nn.init.normal_(p, std=0.5)
    assert_recurrences_agree(
        rec, g, masked,
        lambda h, prev, active: rec(h, prev, g.node_graph, g.num_graphs, g.index, active),
        lambda h, prev, active: _reference_recurrence(rec, h, g.node_frame, prev, g.node_graph, g.num_graphs, active))


def test_roi_pool_equals_the_reference() -> None:
    g = _batch(2)
    grid = torch.randn(g.num_graphs, 4, 5, 6, 7, dtype=torch.float64, requires_grad=True)  # [B, T, d, h, w]
    is_obj = g.node_type == NODE["object"]
    # Reference: area weights of the covered cells, gathered and summed per node (the selection it replaced).
    b, t, d, mh, mw = grid.shape
    box, frame = g.node_box.double(), g.node_frame.clamp(0, t - 1)
    ys, xs = torch.arange(mh, dtype=box.dtype) / mh, torch.arange(mw, dtype=box.dtype) / mw
    ox = (torch.minimum(box[:, 2:3], xs + 1 / mw) - torch.maximum(box[:, 0:1], xs)).clamp(min=0)
    oy = (torch.minimum(box[:, 3:4], ys + 1 / mh) - torch.maximum(box[:, 1:2], ys)).clamp(min=0)
    weight = (oy[:, :, None] * ox[:, None, :]).flatten(1) * is_obj[:, None].to(box.dtype)
    weight = weight / weight.sum(1, keepdim=True).clamp(min=1e-9)
    node, cell = weight.nonzero(as_tuple=True)
    cells = grid.permute(0, 1, 3, 4, 2).reshape(-1, d)
    flat = (g.node_graph[node] * t + frame[node]) * mh * mw + cell
    expected = scatter_sum(cells[flat] * weight[node, cell, None], node, g.num_nodes)
    g.node_box = box
    got = _roi_pool(grid, g, is_obj)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert bool((got[~is_obj] == 0).all()) and bool((got[is_obj].abs().sum(1) > 0).all())
    grads = [torch.autograd.grad(x.square().sum(), grid)[0] for x in (got, expected)]
    torch.testing.assert_close(*grads)


# The budget of one encoder forward + backward (videoqa's streams: TSG 2, DSG 2, HSG 1 layers; 8 frames).  It was
# 6,529-6,765 operators and 47-91 host syncs with a Python walk and selections; 5,371 and 0 now.  A
# loop over graphs, or a selection back in the hot path, breaks it.
OPERATOR_BUDGET = 5_600  # headroom for a few operators; a loop over graphs or frames adds hundreds


@pytest.fixture(scope="module")
def encoder(tiny_world):  # noqa: ANN001, ANN201
    from benchmarks.bench_encoder import encoder_step
    from benchmarks.workload import TINY_CONFIGS, build_task, object_batch

    shipped = ["--model.init_args.finsta.tsg_layers=2", "--model.init_args.finsta.dsg_blocks=2",
               "--model.init_args.finsta.hsg_blocks=1", "--model.init_args.finsta.heads=4",
               "--model.init_args.host.heads=4"]
    model, dm = build_task(["experiments/videoqa.yaml", *TINY_CONFIGS], shipped, batch_size=6)
    model.train()
    for m in model.modules():  # the kernel a GPU runs (auto picks it there)
        if hasattr(m, "backend"):
            m.backend = "dense"
    return {size: encoder_step(model, object_batch(dm, size, objects=3, frames=8)) for size in (12, 24)}


def test_encoder_step_has_no_host_sync_and_a_bounded_operator_count(encoder) -> None:  # noqa: ANN001
    counts = {}
    for size, step in encoder.items():
        step()  # warm: first calls may set things up
        counts[size] = count_dispatch(step)
    small, large = counts[12], counts[24]
    assert small.syncs == 0 and large.syncs == 0, f"host syncs: {dict(large.by_sync)}"
    assert large.ops <= OPERATOR_BUDGET, f"{large.ops} operators > {OPERATOR_BUDGET}: {large.by_op.most_common(8)}"
    # What is launched depends on layers, frames and losses, not on how many graphs the batch holds.
    assert small.ops == large.ops
