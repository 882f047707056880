"""GTrm: an edge-aware multi-head graph Transformer layer (Dwivedi & Bresson 2020 style).

Two attention kernels compute the same function and are tested to agree within 1e-5 (fp32):

* ``dense``: nodes padded per graph to ``[G, Nmax]``, an additive ``[G, H, Nmax, Nmax]`` mask (-inf off the
  edges, biases on edges and the diagonal), masked softmax attention (explicit, or through
  :func:`torch.nn.functional.scaled_dot_product_attention` with ``DENSE_SDPA``).  Works on any device.
* ``dgl``: message passing on a DGLGraph (``u_dot_v`` scores, ``edge_softmax``, ``update_all``).  CPU only
  with PyPI's DGL.

Graph contract (checked only when ``DEBUG`` is on, because the checks sync and cost O(E log E)):
``edge_index[0]`` = source j, ``edge_index[1]`` = destination i (node i attends over its in-neighbours j);
``node_graph`` is sorted (a graph's nodes are contiguous) with values in ``[0, num_graphs)``; graphs may be
empty or single nodes; edges never cross graphs; no duplicate (j, i) pairs and no explicit self-loops (the
layer adds its own implicit self-loop with a learned per-head bias, so every node has a neighbour).
"""

from __future__ import annotations

import math
import os
import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finsta_pl.compat.compiling import is_compiling
from finsta_pl.compat.dgl import load_dgl, why_missing
from finsta_pl.graphs.container import GraphIndex
from finsta_pl.nn.scatter import scatter_sum

__all__ = ["CPU_AUTO_BACKEND", "CPU_AUTO_DGL_MIN_NMAX", "DEBUG", "DENSE_SDPA", "GTrmLayer", "available_backends", "check_graph_inputs"]

# Kernel that backend="auto" uses on CPU.  `python -m benchmarks.bench_gtrm` (a section of `make bench`),
# fwd+bwd of the whole layer, dim 128, 4 heads, torch 2.13 CPU, dense / dgl ms (ratio):
#   256 frame graphs (3087 nodes, 6174 edges, Nmax 16):  1 thread 128 / 131 (0.98); 2 threads 77 / 76 (1.01)
#   32 video graphs (same nodes/edges, Nmax 109):        1 thread 155 / 135 (1.15); 2 threads 85 / 81 (1.05)
#   32 graphs x 15 nodes (480 nodes, 960 edges):         1 thread  23 /  24 (0.96); 2 threads 16 / 18 (0.86)
# A tie for per-frame graphs and a win on small text graphs, without DGL and on the same path as CUDA, so
# dense.  DGL wins once a batch pads to large graphs (dense cost ~ G * Nmax^2): use backend="dgl" there.
CPU_AUTO_BACKEND = "dense"
# ... except when a batch pads to large graphs: dense cost grows with G * Nmax^2, DGL's with E.  `make bench`
# (2 threads, same run): Nmax 16 -> 97.6 / 97.1 ms, Nmax 109 (whole-video DSGs) -> 114.7 / 95.9 ms (dgl 1.2x).
CPU_AUTO_DGL_MIN_NMAX = 64
# How the dense kernel gets sum_j alpha_ij W_ev e_ij (the edge term of the value, which no V[j] can carry):
# False = explicit softmax of the masked [G, H, Nmax, Nmax] scores, then P @ V and alpha gathered from P;
# True = scaled_dot_product_attention for P @ V plus alpha recomputed on the edge list (SDPA returns no P).
# Both agree to ~1e-15 in fp64 (tested); on CPU the explicit path measured faster (1 thread, ms, same runs
# as above: 128 vs 143, 155 vs 176, 23 vs 24), since the SDPA variant scores the edges a second time.
DENSE_SDPA = False
# Validate the graph contract in every forward (FINSTA_PL_DEBUG=1, or set gtrm.DEBUG = True in tests).
DEBUG = os.environ.get("FINSTA_PL_DEBUG", "") not in ("", "0")
_BACKENDS = ("auto", "dense", "dgl")
_warned_dgl_device = False


def available_backends() -> list[str]:
    """Attention kernels usable here: always ``"dense"``, plus ``"dgl"`` when DGL imports."""
    return ["dense"] + (["dgl"] if load_dgl() is not None else [])


def check_graph_inputs(edge_index: Tensor, node_graph: Tensor, num_graphs: int) -> None:
    """Assert the graph contract of the module docstring (syncs; for debugging and tests only)."""
    n = node_graph.numel()
    if n:
        assert bool((node_graph[1:] >= node_graph[:-1]).all()), "node_graph must be sorted"
        assert int(node_graph.min()) >= 0 and int(node_graph.max()) < num_graphs, "node_graph out of range"
    if edge_index.numel():
        src, dst = edge_index
        assert int(edge_index.min()) >= 0 and int(edge_index.max()) < n, "edge_index out of range"
        assert bool((node_graph[src] == node_graph[dst]).all()), "edges must not cross graphs"
        assert not bool((src == dst).any()), "no explicit self-loops: the layer adds its own"
        key = dst * n + src
        assert key.unique().numel() == key.numel(), "duplicate (j, i) edges"


@lru_cache(maxsize=None)
def _dgl_supports(device: torch.device) -> bool:
    """Whether this DGL build can hold graphs on ``device`` (PyPI's is CPU-only)."""
    try:
        load_dgl().graph(([0], [0])).to(device)
        return True
    except Exception:
        return False


def _dense_attention(q: Tensor, k: Tensor, v: Tensor, eb: Tensor, ev: Tensor, sb: Tensor,
                     src: Tensor, dst: Tensor, node_graph: Tensor, num_graphs: int, nmax: int, slot: Tensor) -> Tensor:
    """Padded per-graph attention; returns sum_j alpha_ij (v_j + ev_ij) as [N, H, d].  ``nmax`` and ``slot`` (each
    node's row in the flattened ``[G * nmax]`` padding) come from the worker (:class:`GraphIndex`): the padded
    size must be known on the host, and reading it off the device would be a sync."""
    n, nh, d = q.shape
    pos = slot - node_graph * nmax
    rows = num_graphs * nmax

    def pad(x: Tensor) -> Tensor:  # [N, H, d] -> [G, H, Nmax, d]
        return x.new_zeros(rows, nh, d).index_copy(0, slot, x).view(num_graphs, nmax, nh, d).transpose(1, 2)

    # Mask flattened as [(g, i, j), H] so both biases go in with one index_put each (differentiable).  Scores,
    # mask and softmax are at least fp32: under bf16/fp16 autocast the matmuls run low, the softmax does not.
    sdt = torch.promote_types(q.dtype, torch.float32)
    mask = q.new_full((rows * nmax, nh), float("-inf"), dtype=sdt)
    all_slots = torch.arange(rows, device=q.device)
    mask[all_slots * nmax + all_slots % nmax] = 0.0  # padded rows attend to themselves: no all--inf row
    edge_cell = slot[dst] * nmax + pos[src]
    mask = mask.index_put((edge_cell,), eb.to(sdt)).index_put((slot * nmax + pos,), sb.to(sdt))
    mask = mask.view(num_graphs, nmax, nmax, nh).permute(0, 3, 1, 2)
    if not DENSE_SDPA:
        probs = ((pad(q) @ pad(k).transpose(-1, -2)).to(sdt) + mask).softmax(-1)
        out = probs.to(v.dtype) @ pad(v)
        alpha = probs.permute(0, 2, 3, 1).reshape(rows * nmax, nh)[edge_cell]  # alpha_ij of each edge
    else:  # SDPA does not return probabilities: recompute alpha_ij on the edge list (exact max shift)
        out = F.scaled_dot_product_attention(pad(q), pad(k), pad(v), attn_mask=mask.to(q.dtype), scale=1.0)
        q, k, eb, sb = q.to(sdt), k.to(sdt), eb.to(sdt), sb.to(sdt)
        s_e, s_self = (q[dst] * k[src]).sum(-1) + eb, (q * k).sum(-1) + sb
        m = s_self.detach().scatter_reduce(0, dst[:, None].expand_as(s_e), s_e.detach(), "amax")
        ex = (s_e - m[dst]).exp()
        alpha = ex / ((s_self - m).exp() + scatter_sum(ex, dst, n))[dst]
    agg = out.transpose(1, 2).reshape(rows, nh, d).index_select(0, slot)
    return agg + scatter_sum(alpha.unsqueeze(-1).to(ev.dtype) * ev, dst, n).to(agg.dtype)


def _dgl_attention(q: Tensor, k: Tensor, v: Tensor, eb: Tensor, ev: Tensor, sb: Tensor,
                   src: Tensor, dst: Tensor) -> Tensor:
    """Message passing with DGL; returns sum_j alpha_ij (v_j + ev_ij) as [N, H, d]."""
    dgl = load_dgl()
    fn = dgl.function
    n = q.shape[0]
    # Under autocast q/k/v/eb are bf16 while self_bias is fp32; DGL insists on one dtype per graph, and the
    # edge softmax must run in (at least) fp32.
    dt = torch.promote_types(torch.promote_types(q.dtype, eb.dtype), torch.promote_types(sb.dtype, torch.float32))
    q, k, v, eb, ev, sb = (x.to(dt) for x in (q, k, v, eb, ev, sb))
    loop = torch.arange(n, device=q.device)
    g = dgl.graph((torch.cat([src, loop]), torch.cat([dst, loop])), num_nodes=n)
    g.ndata["q"], g.ndata["k"], g.ndata["v"] = q, k, v
    g.apply_edges(fn.u_dot_v("k", "q", "s"))  # edge j -> i: <k_j, q_i>, [E + N, H, 1]
    alpha = dgl.nn.functional.edge_softmax(g, g.edata.pop("s").squeeze(-1) + torch.cat([eb, sb]))
    g.edata["a"] = alpha.unsqueeze(-1)
    g.edata["ae"] = torch.cat([alpha[: src.numel()].unsqueeze(-1) * ev, ev.new_zeros(n, *ev.shape[1:])])
    g.update_all(fn.u_mul_e("v", "a", "m"), fn.sum("m", "o"))  # fused SpMM, no per-edge messages kept
    g.update_all(fn.copy_e("ae", "m"), fn.sum("m", "oe"))
    return g.ndata["o"] + g.ndata["oe"]


def _ffn(dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))


class GTrmLayer(nn.Module):
    """Edge-aware graph Transformer layer over a batch of graphs (see the module docstring for the contract).

    Node i attends over {i} ∪ in-neighbours j with score <q_i, k_j>/sqrt(d_h) + b^h(e_ij) + key_bias_j^h
    (self-loop: self_bias^h instead of b(e)) and message alpha_ij (v_j + W_ev e_ij) (self-loop: v_i); then
    output projection, dropout, residual + post-LayerNorm, FFN + residual + LayerNorm.  Edges are updated in
    parallel from the layer's *input* nodes: e1 = LN(e + MLP(e + A h_i + B h_j)), e' = LN(e1 + FFN(e1)).
    ``backend``: "auto" | "dense" | "dgl"; may be reassigned on the module at any time.
    """

    def __init__(self, dim: int, num_heads: int = 4, ffn_mult: int = 2, dropout: float = 0.0,
                 backend: str = "auto", update_edges: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.backend = backend
        self._resolve(torch.device("cpu"))  # fail early on an unknown name or a missing DGL
        self.qkv = nn.Linear(dim, 3 * dim)
        self.edge_bias = nn.Linear(dim, num_heads)  # b(e): edge features modulate the attention scores
        self.edge_value = nn.Linear(dim, dim, bias=False)  # W_ev: edge features also enter the message
        self.self_bias = nn.Parameter(torch.zeros(num_heads))
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.norm_h1, self.norm_h2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn_h = _ffn(dim, ffn_mult * dim, dropout)
        # The last layer of a stack has no use for updated edges (and DDP rejects parameters without
        # gradients), so update_edges=False leaves the edge branch out and returns ``e`` unchanged.
        self.update_edges = update_edges
        if update_edges:
            self.edge_nodes = nn.Linear(dim, 2 * dim, bias=False)  # [A; B], applied on nodes then gathered
            self.mlp_e = _ffn(dim, dim, dropout)
            self.norm_e1, self.norm_e2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.ffn_e = _ffn(dim, ffn_mult * dim, dropout)

    def _resolve(self, device: torch.device, nmax: int = 0) -> str:
        global _warned_dgl_device
        if self.backend not in _BACKENDS:
            raise ValueError(f"unknown GTrm backend {self.backend!r}; expected one of {_BACKENDS}")
        if self.backend == "dgl" and load_dgl() is None:
            raise ValueError(f"GTrm backend 'dgl' requested but DGL cannot be imported: {why_missing()}")
        if self.backend == "auto":
            # A compiled graph cannot trace DGL's kernels (finsta.compile): the dense kernel, as on a GPU.
            if is_compiling() or device.type != "cpu" or load_dgl() is None:
                return "dense"
            return "dgl" if nmax >= CPU_AUTO_DGL_MIN_NMAX else CPU_AUTO_BACKEND
        if self.backend == "dgl" and device.type != "cpu" and not _dgl_supports(device):
            if not _warned_dgl_device:
                warnings.warn(f"this DGL build cannot run on {device}; GTrm falls back to the dense kernel")
                _warned_dgl_device = True
            return "dense"
        return self.backend

    def forward(self, h: Tensor, e: Tensor, edge_index: Tensor, node_graph: Tensor, num_graphs: int,
                key_bias: Tensor | None = None, index: GraphIndex | None = None,
                edge_keep: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Update nodes ``h`` [N, dim] and edges ``e`` [E, dim]; ``key_bias`` [N, H] biases attention to a source.

        ``index``: the graphs' :class:`GraphIndex` from the worker (without one, its padding is computed here,
        which syncs); ``edge_keep`` [E] bool: edges that count (the others get no attention, as if absent: a
        mask rather than a boolean selection, which would sync)."""
        if DEBUG:
            check_graph_inputs(edge_index, node_graph, num_graphs)
        n, nh, d = h.shape[0], self.num_heads, self.head_dim
        src, dst = edge_index[0], edge_index[1]
        q, k, v = self.qkv(h).view(n, 3, nh, d).unbind(1)
        q = q * (1.0 / math.sqrt(d))  # pre-scaled so both kernels score with a plain dot product
        eb = self.edge_bias(e)
        ev = self.edge_value(e).view(-1, nh, d)
        sb = self.self_bias.expand(n, nh)
        if key_bias is not None:  # bias every score whose key (source) is that node, self-loop included
            eb = eb + key_bias[src]
            sb = sb + key_bias
        if edge_keep is not None:
            eb = eb.masked_fill(~edge_keep[:, None], float("-inf"))
        if index is None and n:
            index = GraphIndex.padding(node_graph.cpu(), num_graphs).to(h.device)
        if n == 0:
            agg = q.new_zeros(0, nh, d)
        elif self._resolve(h.device, index.nmax) == "dgl":
            agg = _dgl_attention(q, k, v, eb, ev, sb, src, dst)
        else:
            agg = _dense_attention(q, k, v, eb, ev, sb, src, dst, node_graph, num_graphs, index.nmax, index.node_slot)
        h1 = self.norm_h1(h + self.drop(self.out(agg.reshape(n, self.dim))))
        h_out = self.norm_h2(h1 + self.drop(self.ffn_h(h1)))
        if not self.update_edges:
            return h_out, e
        a_h, b_h = self.edge_nodes(h).chunk(2, dim=-1)
        e1 = self.norm_e1(e + self.drop(self.mlp_e(e + a_h[dst] + b_h[src])))
        e_out = self.norm_e2(e1 + self.drop(self.ffn_e(e1)))
        return h_out, e_out
