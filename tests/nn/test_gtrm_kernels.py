"""GTrm's dense and DGL attention kernels compute the same function; the segment reductions agree."""

from __future__ import annotations

import pytest
import torch

from finsta_pl.compat.dgl import load_dgl
from finsta_pl.nn import gtrm, scatter
from finsta_pl.nn.gtrm import GTrmLayer, available_backends, check_graph_inputs

HAS_DGL = load_dgl() is not None
needs_dgl = pytest.mark.skipif(not HAS_DGL, reason="DGL not importable: the dgl kernel cannot be compared")
DIM, HEADS = 16, 4
SIZES = [3, 0, 1, 6, 5, 0, 2, 1]  # empty and single-node graphs in the middle and at the end


@pytest.fixture(autouse=True)
def _debug_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gtrm, "DEBUG", True)  # every forward below also validates the graph contract


def make_batch(sizes: list[int], p_edge: float = 0.4, dtype: torch.dtype = torch.float32, seed: int = 0,
               with_key_bias: bool = True):
    """Random graphs with in-graph edges, no duplicates and no self-loops."""
    gen = torch.Generator().manual_seed(seed)
    node_graph = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes, dtype=torch.long))
    start, edges = 0, []
    for s in sizes:
        adj = (torch.rand(s, s, generator=gen) < p_edge) & ~torch.eye(s, dtype=torch.bool)
        j, i = adj.nonzero(as_tuple=True)
        edges.append(torch.stack([j, i]) + start)
        start += s
    edge_index = torch.cat(edges, 1) if edges else torch.zeros(2, 0, dtype=torch.long)
    edge_index = edge_index[:, torch.randperm(edge_index.shape[1], generator=gen)]  # edge order is arbitrary
    n, ne = node_graph.numel(), edge_index.shape[1]
    h = torch.randn(n, DIM, generator=gen, dtype=dtype)
    e = torch.randn(ne, DIM, generator=gen, dtype=dtype)
    kb = torch.randn(n, HEADS, generator=gen, dtype=dtype) if with_key_bias else None
    return h, e, edge_index, node_graph, len(sizes), kb


def run(layer: GTrmLayer, batch, backend: str):
    """Outputs and gradients (inputs and parameters) of a random linear read-out, for one kernel."""
    h, e, ei, ng, g, kb = batch
    layer.backend = backend
    layer.zero_grad(set_to_none=True)
    h, e = h.clone().requires_grad_(), e.clone().requires_grad_()
    kb = kb.clone().requires_grad_() if kb is not None else None
    ho, eo = layer(h, e, ei, ng, g, key_bias=kb)
    gen = torch.Generator().manual_seed(123)
    loss = (ho * torch.randn(ho.shape, generator=gen, dtype=ho.dtype)).sum()
    loss = loss + (eo * torch.randn(eo.shape, generator=gen, dtype=eo.dtype)).sum()
    loss.backward()
    grads = {"h": h.grad, "e": e.grad, **({"key_bias": kb.grad} if kb is not None else {})}
    grads.update({n: p.grad for n, p in layer.named_parameters() if p.grad is not None})
    return ho.detach(), eo.detach(), grads


def assert_same(a, b, tol: float) -> None:
    torch.testing.assert_close(a[0], b[0], atol=tol, rtol=tol)
    torch.testing.assert_close(a[1], b[1], atol=tol, rtol=tol)
    assert a[2].keys() == b[2].keys()
    for name in a[2]:
        torch.testing.assert_close(a[2][name], b[2][name], atol=tol, rtol=tol, msg=lambda m: f"grad {name}: {m}")


CASES = {
    "mixed": dict(sizes=SIZES),
    "no_edges": dict(sizes=[1, 0, 2, 3], p_edge=0.0),
    "dense_graphs": dict(sizes=[7, 4], p_edge=0.9),
    "no_key_bias": dict(sizes=SIZES, with_key_bias=False),
}


@needs_dgl
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("case", list(CASES))
def test_dense_and_dgl_agree(case: str, dtype: torch.dtype, tol: float) -> None:
    torch.manual_seed(0)
    layer = GTrmLayer(DIM, HEADS).to(dtype)
    with torch.no_grad():  # non-trivial biases, so the self-loop bias path is exercised too
        layer.self_bias.normal_()
    batch = make_batch(dtype=dtype, **CASES[case])
    assert_same(run(layer, batch, "dense"), run(layer, batch, "dgl"), tol)


@needs_dgl
def test_two_layers_with_loaded_state_agree() -> None:
    torch.manual_seed(1)
    dense, other = GTrmLayer(DIM, HEADS, backend="dense"), GTrmLayer(DIM, HEADS, backend="dgl")
    other.load_state_dict(dense.state_dict())
    batch = make_batch(SIZES, seed=3)
    assert_same(run(dense, batch, "dense"), run(other, batch, "dgl"), 1e-5)


@pytest.mark.parametrize("case", ["mixed", "no_edges"])
def test_dense_sdpa_variant_agrees(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    layer = GTrmLayer(DIM, HEADS)
    batch = make_batch(**CASES[case])
    explicit = run(layer, batch, "dense")
    monkeypatch.setattr(gtrm, "DENSE_SDPA", True)
    assert_same(explicit, run(layer, batch, "dense"), 1e-5)


@pytest.mark.parametrize("backend", ["dense", pytest.param("dgl", marks=needs_dgl)])
def test_permuting_nodes_within_graphs_permutes_outputs(backend: str) -> None:
    torch.manual_seed(0)
    layer = GTrmLayer(DIM, HEADS, backend=backend)
    h, e, ei, ng, g, kb = make_batch(SIZES, seed=5)
    counts = torch.bincount(ng, minlength=g)
    starts = counts.cumsum(0) - counts
    # perm[a] = old index of new node a: shuffle positions within each graph, graphs stay contiguous
    perm = torch.argsort(ng.double() + torch.rand(ng.numel(), dtype=torch.double) * 0.5)
    assert torch.equal(ng[perm], ng) and not torch.equal(perm, torch.arange(ng.numel()))
    assert bool(((perm - starts[ng]) < counts[ng]).all())
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    ho, eo = layer(h, e, ei, ng, g, key_bias=kb)
    ho_p, eo_p = layer(h[perm], e, inv[ei], ng, g, key_bias=kb[perm])
    torch.testing.assert_close(ho_p, ho[perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eo_p, eo, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["dense", pytest.param("dgl", marks=needs_dgl)])
def test_key_bias_changes_output(backend: str) -> None:
    torch.manual_seed(0)
    layer = GTrmLayer(DIM, HEADS, backend=backend)
    h, e, ei, ng, g, kb = make_batch(SIZES)
    plain, _ = layer(h, e, ei, ng, g)
    biased, _ = layer(h, e, ei, ng, g, key_bias=3 * kb)
    has_in_edge = torch.zeros(h.shape[0], dtype=torch.bool)
    has_in_edge[ei[1]] = True
    assert (plain - biased)[has_in_edge].abs().max() > 1e-3
    # a node without in-edges only attends to itself: key_bias cannot move its softmax
    torch.testing.assert_close(plain[~has_in_edge], biased[~has_in_edge])


@pytest.mark.parametrize("backend", ["dense", pytest.param("dgl", marks=needs_dgl)])
@pytest.mark.parametrize("sizes", [[0, 0, 1, 0], [0, 0, 0], [1]])
def test_empty_and_single_node_graphs_are_finite(backend: str, sizes: list[int]) -> None:
    torch.manual_seed(0)
    layer = GTrmLayer(DIM, HEADS, backend=backend)
    h, e, ei, ng, g, kb = make_batch(sizes)
    h.requires_grad_()
    ho, eo = layer(h, e, ei, ng, g, key_bias=kb)
    assert ho.shape == h.shape and eo.shape == e.shape
    (ho.sum() + eo.sum()).backward()
    assert torch.isfinite(ho).all() and torch.isfinite(h.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


@pytest.mark.parametrize("backend", ["dense", pytest.param("dgl", marks=needs_dgl)])
def test_bf16_autocast_is_finite(backend: str) -> None:
    torch.manual_seed(0)
    layer = GTrmLayer(DIM, HEADS, backend=backend)
    h, e, ei, ng, g, kb = make_batch(SIZES)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ho, eo = layer(h, e, ei, ng, g, key_bias=kb)
    assert torch.isfinite(ho.float()).all() and torch.isfinite(eo.float()).all()
    ref, _ = layer(h, e, ei, ng, g, key_bias=kb)
    assert (ho.float() - ref).abs().max() < 0.2  # bf16 has ~3 significant digits; just not garbage


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "dense" in available_backends()
    assert ("dgl" in available_backends()) == HAS_DGL
    with pytest.raises(ValueError, match="unknown GTrm backend"):
        GTrmLayer(DIM, HEADS, backend="sparse")
    layer = GTrmLayer(DIM, HEADS)
    expected = gtrm.CPU_AUTO_BACKEND if HAS_DGL else "dense"
    assert layer._resolve(torch.device("cpu")) == expected
    assert layer._resolve(torch.device("meta")) == "dense"  # non-CPU devices always use dense
    monkeypatch.setattr(gtrm, "load_dgl", lambda: None)
    monkeypatch.setattr(gtrm, "why_missing", lambda: "ImportError: no module named 'dgl'")
    with pytest.raises(ValueError, match="no module named 'dgl'"):
        GTrmLayer(DIM, HEADS, backend="dgl")
    assert GTrmLayer(DIM, HEADS)._resolve(torch.device("cpu")) == "dense"


def test_debug_check_rejects_bad_graphs() -> None:
    ng = torch.tensor([0, 0, 1, 1])
    check_graph_inputs(torch.tensor([[0, 2], [1, 3]]), ng, 2)
    with pytest.raises(AssertionError, match="cross"):
        check_graph_inputs(torch.tensor([[0], [2]]), ng, 2)
    with pytest.raises(AssertionError, match="duplicate"):
        check_graph_inputs(torch.tensor([[0, 0], [1, 1]]), ng, 2)
    with pytest.raises(AssertionError, match="self-loops"):
        check_graph_inputs(torch.tensor([[1], [1]]), ng, 2)
    with pytest.raises(AssertionError, match="sorted"):
        check_graph_inputs(torch.zeros(2, 0, dtype=torch.long), torch.tensor([1, 0]), 2)


# ---------------------------------------------------------------- segment reductions

def _reference(name: str, src: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Loop definition of the reductions (empty segments give 0)."""
    if name == "softmax":
        out = torch.empty_like(src)
        for s in range(size):
            sel = index == s
            if sel.any():
                out[sel] = src[sel].softmax(0)
        return out
    out = src.new_zeros((size,) + src.shape[1:])
    for s in range(size):
        seg = src[index == s]
        if seg.numel():
            out[s] = {"sum": seg.sum(0), "mean": seg.mean(0), "max": seg.amax(0)}[name]
    return out


FUNCS = {"sum": scatter.scatter_sum, "mean": scatter.scatter_mean, "max": scatter.scatter_max,
         "softmax": scatter.scatter_softmax}
SCATTER_CASES = {"1d": ((10,), 6), "2d": ((12, 3), 7), "empty_src": ((0, 3), 4)}


def _scatter_inputs(case: str):
    shape, size = SCATTER_CASES[case]
    gen = torch.Generator().manual_seed(7)
    src = torch.randn(shape, generator=gen, dtype=torch.float64) * 30  # large values: softmax stability
    index = torch.randint(0, size - 2, (shape[0],), generator=gen)  # the last two segments stay empty
    return src, index, size


@pytest.mark.parametrize("case", list(SCATTER_CASES))
@pytest.mark.parametrize("name", list(FUNCS))
def test_native_scatter_matches_definition(name: str, case: str) -> None:
    src, index, size = _scatter_inputs(case)
    out = FUNCS[name](src, index, size, backend="native")
    torch.testing.assert_close(out, _reference(name, src, index, size))
    assert torch.isfinite(out).all()


@pytest.mark.skipif(not scatter.HAS_TORCH_SCATTER, reason="torch_scatter not importable: nothing to compare")
@pytest.mark.parametrize("case", list(SCATTER_CASES))
@pytest.mark.parametrize("name", list(FUNCS))
def test_torch_scatter_and_native_agree(name: str, case: str) -> None:
    src, index, size = _scatter_inputs(case)
    results = []
    for backend in ("torch_scatter", "native"):
        x = src.clone().requires_grad_()
        out = FUNCS[name](x, index, size, backend=backend)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        results.append((out.detach(), x.grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_scatter_backend_argument() -> None:
    with pytest.raises(ValueError, match="unknown scatter backend"):
        scatter.scatter_sum(torch.ones(2), torch.zeros(2, dtype=torch.long), 1, backend="cuda")
    if not scatter.HAS_TORCH_SCATTER:
        with pytest.raises(ValueError, match="not importable"):
            scatter.scatter_sum(torch.ones(2), torch.zeros(2, dtype=torch.long), 1, backend="torch_scatter")
