"""Segment reductions over dim 0 (``out[s] = reduce(src[index == s])``), shared by the whole model.

Every function takes ``src`` of shape ``[E, *]``, a long ``index`` of shape ``[E]`` with values in
``[0, dim_size)`` and returns ``[dim_size, *]`` (``scatter_softmax`` returns ``src``'s shape).  Empty segments
give 0 (``scatter_softmax``: all-masked segments give 0, and half precision is computed in fp32).
``torch_scatter`` is used when it imports (its fused kernels are faster for ``max``/``softmax``); otherwise
native ``index_add_`` / ``scatter_reduce`` with the same semantics.  ``backend`` forces one path
("torch_scatter" | "native"; ``None`` = auto) so the tests can compare them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from finsta_pl.compat.compiling import is_compiling

try:  # one import attempt at module load; torch-scatter is an optional, source-built extra
    import torch_scatter as _ts

    HAS_TORCH_SCATTER = True
except Exception:  # ImportError, or OSError/RuntimeError when the build does not match this torch
    _ts = None
    HAS_TORCH_SCATTER = False

__all__ = ["HAS_TORCH_SCATTER", "scatter_max", "scatter_mean", "scatter_softmax", "scatter_sum", "segment_sum"]


def _use_ts(backend: str | None) -> bool:
    if backend is None:
        # torch_scatter's ops have no fake-tensor kernels, so a compiled graph cannot trace them.
        return HAS_TORCH_SCATTER and not is_compiling()
    if backend == "native":
        return False
    if backend == "torch_scatter":
        if not HAS_TORCH_SCATTER:
            raise ValueError("backend='torch_scatter' requested but torch_scatter is not importable")
        return True
    raise ValueError(f"unknown scatter backend {backend!r}; expected 'torch_scatter', 'native' or None")


def _expand(index: Tensor, src: Tensor) -> Tensor:
    """Broadcast a [E] index to src's shape (scatter_reduce needs a full-shape index)."""
    return index.view((-1,) + (1,) * (src.dim() - 1)).expand_as(src)


def scatter_sum(src: Tensor, index: Tensor, dim_size: int, backend: str | None = None) -> Tensor:
    """Per-segment sum over dim 0; empty segments give 0."""
    if _use_ts(backend):
        return _ts.scatter(src, index, dim=0, dim_size=dim_size, reduce="sum")
    out = src.new_zeros((dim_size,) + tuple(src.shape[1:]))
    return out.index_add(0, index, src)


def scatter_mean(src: Tensor, index: Tensor, dim_size: int, backend: str | None = None) -> Tensor:
    """Per-segment mean over dim 0; empty segments give 0."""
    if _use_ts(backend):
        return _ts.scatter(src, index, dim=0, dim_size=dim_size, reduce="mean")
    total = scatter_sum(src, index, dim_size, backend="native")
    # Counted by a sum, not bincount: bincount sizes its output from the data, a host sync on a GPU.
    count = src.new_zeros(dim_size).index_add_(0, index, src.new_ones(index.shape)).clamp_(min=1)
    return total / count.view((-1,) + (1,) * (src.dim() - 1))


def scatter_max(src: Tensor, index: Tensor, dim_size: int, backend: str | None = None) -> Tensor:
    """Per-segment maximum over dim 0 (values only); empty segments give 0."""
    if _use_ts(backend):
        return _ts.scatter_max(src, index, dim=0, dim_size=dim_size)[0]
    out = src.new_zeros((dim_size,) + tuple(src.shape[1:]))
    # include_self=False: the zeros only survive where a segment is empty (torch_scatter's convention).
    return out.scatter_reduce(0, _expand(index, src), src, reduce="amax", include_self=False)


def scatter_softmax(src: Tensor, index: Tensor, dim_size: int, backend: str | None = None) -> Tensor:
    """Softmax of ``src`` ([E] or [E, H]) within each segment of ``index``, numerically stable, in fp32.

    bf16/fp16 input (autocast) is computed and returned in float32: the exponentials and their sum lose too
    much in 8-bit and 11-bit mantissas.  fp32/fp64 input keeps its dtype.  ``-inf`` entries are masked keys;
    a segment whose entries are all ``-inf`` (a query with no valid key) gets weights 0 and zero gradients,
    not NaN.
    """
    if src.dtype in (torch.float16, torch.bfloat16):
        src = src.float()
    masked = src == float("-inf")
    if _use_ts(backend):
        # torch_scatter gives NaN for an all--inf segment: softmax over a finite stand-in, then zero the masked
        # entries (exp(-1e30 - max) is already exactly 0 where a segment has a valid key).
        safe = src.masked_fill(masked, -1e30)
        return _ts.scatter_softmax(safe, index, dim=0, dim_size=dim_size).masked_fill(masked, 0.0)
    # Shift by the exact segment max; detached because softmax is shift-invariant (same gradient, and it
    # avoids back-propagating through amax's tie handling).  An all-masked segment's max is -inf: shift by 0.
    seg_max = scatter_max(src.detach(), index, dim_size, backend="native")
    seg_max = seg_max.masked_fill(seg_max == float("-inf"), 0.0)
    ex = (src - seg_max.index_select(0, index)).exp()
    denom = scatter_sum(ex, index, dim_size, backend="native")
    # A segment with a valid key has denom >= 1 (its max contributes exp(0)); only all-masked ones are 0, and
    # dividing their zeros by 1 keeps the backward finite (a tiny clamp would overflow 1/denom instead).
    denom = torch.where(denom > 0, denom, torch.ones_like(denom))
    return ex / denom.index_select(0, index)


def segment_sum(src: Tensor, lengths: Tensor) -> Tensor:
    """Sum over dim 0 of consecutive runs of ``src`` of the given ``lengths`` (``[S]``, summing to ``len(src)``);
    empty runs give 0.  For *sorted* segments (a graph's nodes, a frame's nodes by graph) this is one kernel with
    no atomics: deterministic on every device and, on CPU, about twice as fast as ``index_add`` (23k x 128
    rows into 256 runs: 4.8 vs 9.6 ms).

    ``unsafe=True`` skips the operator's own checks of ``lengths`` (none negative, their sum the row count): two
    ``item()`` calls inside the kernel, host syncs on a GPU that a dispatch counter cannot see (58 a videoqa
    encoder step).  The lengths come from the worker's index, built with the rows they count."""
    return torch.segment_reduce(src, "sum", lengths=lengths, unsafe=True)
