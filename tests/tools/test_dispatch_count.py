"""``finsta_pl.tools.dispatch_count``: operators and syncs counted, and split by the module that ran them."""

from __future__ import annotations

import torch
from torch import nn

from finsta_pl.tools.dispatch_count import count_by_part, count_dispatch


class _Inner(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * x  # two operators


class _Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.inner = _Inner()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.linear(x)).sum()


def test_count_by_part_attributes_each_forward_operator_to_the_innermost_part() -> None:
    model = _Outer()
    x = torch.randn(4, 3)
    parts = count_by_part(model, lambda: model(x), (_Outer, _Inner))
    h = model.linear(x).detach().requires_grad_()
    inner = count_dispatch(lambda: model.inner(h)).ops
    assert parts.forward["_Inner"] == inner >= 2  # sigmoid, mul (and autograd's saved view): not the outer's
    assert parts.forward["_Outer"] >= 2 and "other" not in parts.forward  # the linear's ops and the sum
    model.zero_grad(set_to_none=True)  # as in the split: no gradient to accumulate into
    whole = count_dispatch(lambda: model(x).backward())
    assert sum(parts.forward.values()) + parts.backward == whole.ops and parts.backward > 0
    assert sum(parts.forward_kernels.values()) + parts.backward_kernels == whole.launches
    # Nothing stays hooked: a later forward is not attributed.
    assert not model._forward_hooks and not model.inner._forward_pre_hooks
    outside = count_by_part(model, lambda: model(x), (_Inner,))
    assert outside.forward["other"] == parts.forward["_Outer"] and outside.forward["_Inner"] == inner


def test_launches_leave_out_views_and_metadata() -> None:
    x = torch.randn(4, 3)
    c = count_dispatch(lambda: (x.view(12).t().unsqueeze(0) * 2).sum())  # view, t, unsqueeze: no kernel
    assert c.ops == c.by_op["aten.t"] + c.by_op["aten.view"] + c.by_op["aten.unsqueeze"] + 2 and c.launches == 2


def test_profiled_launches_count_eager_code_as_the_dispatch_counter_does() -> None:
    from finsta_pl.tools.dispatch_count import count_profiled_launches

    model = _Outer()
    x = torch.randn(4, 3)

    def step() -> None:
        # linear (a composite: its addmm counts), sigmoid, mul, sum, views, then the backward's kernels
        model(x.view(12).view(4, 3)).backward()
        model.zero_grad(set_to_none=True)

    step()
    assert count_profiled_launches(step).total == count_dispatch(step).launches > 4


def test_profiled_launches_see_inside_compiled_code() -> None:
    import torch._inductor.config

    from finsta_pl.tools.dispatch_count import count_profiled_launches

    def chain(x: torch.Tensor) -> torch.Tensor:
        return ((x.sin() * 2 + 1).cos() * x).sum()  # six eager kernels, one fused loop compiled

    x = torch.randn(64)
    eager = count_profiled_launches(lambda: chain(x))
    assert eager.total == count_dispatch(lambda: chain(x)).launches == 6 and not eager.compiled
    with torch._inductor.config.patch({"cpp.enable_kernel_profile": True}):
        compiled = torch.compile(chain, dynamic=False)
        compiled(x)
        counted = count_profiled_launches(lambda: compiled(x))
    assert 1 <= counted.total < eager.total and sum(counted.compiled.values()) >= 1


def test_profiled_syncs_include_those_inside_a_kernel() -> None:
    """``segment_reduce`` checks its lengths with two ``item()`` calls inside the kernel, which a dispatch mode does
    not see; ``segment_sum`` skips those checks (its lengths come from the worker's index)."""
    from finsta_pl.nn.scatter import segment_sum
    from finsta_pl.tools.dispatch_count import count_profiled_launches

    x, lengths = torch.randn(6, 3), torch.tensor([2, 0, 4])
    checked = lambda: torch.segment_reduce(x, "sum", lengths=lengths)  # noqa: E731
    assert count_dispatch(checked).syncs == 0 and count_profiled_launches(checked).syncs == 2
    assert count_profiled_launches(lambda: segment_sum(x, lengths)).syncs == 0
    torch.testing.assert_close(segment_sum(x, lengths), checked(), rtol=0, atol=0)
