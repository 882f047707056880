"""The harness of the frame-recurrence equality tests (the loop against its selecting reference, the scan
against its frame-by-frame reference): which links survive masking, and the outputs and gradients compared."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from finsta_pl.graphs.container import GraphBatch

Recurrence = Callable[[Tensor, Tensor, Tensor | None], Tensor]  # (h, prev, active) -> new h


def assert_recurrences_agree(rec: nn.Module, g: GraphBatch, masked: bool, *forwards: Recurrence) -> None:
    """Run each of ``forwards`` on the same fp64 node states of ``g`` and assert equal outputs, input gradients
    and ``rec``'s weight gradients.  ``masked``: two nodes inactive, so they leave the memory's summary and
    lose their links, as a switched-off or dropped node does."""
    active, prev = None, g.index.node_prev
    if masked:
        active = torch.ones(g.num_nodes, dtype=torch.bool)
        active[[1, 5]] = False
        prev = torch.where((prev >= 0) & active & active[prev.clamp(min=0)], prev, torch.full_like(prev, -1))
    h0 = torch.randn(g.num_nodes, rec.norm.normalized_shape[0], dtype=torch.float64)
    results = []
    for forward in forwards:
        rec.zero_grad()
        h = h0.clone().requires_grad_(True)
        out = forward(h, prev, active)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        results.append([out.detach(), h.grad] + [p.grad.clone() for p in rec.parameters()])
    for first, other in zip(results[0], results[1]):
        torch.testing.assert_close(first, other, rtol=1e-10, atol=1e-12)
