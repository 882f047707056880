"""Count the ATen operators a piece of code dispatches, and the host syncs among them.

On a GPU every dispatched operator is at least one kernel launch (views and metadata ops aside, which still cost
host time), and every operator whose output size depends on the data (``nonzero``, boolean-mask indexing,
``unique``, ``bincount``, ``repeat_interleave`` without ``output_size``) or that reads a value back
(``item``/``tolist``: ``_local_scalar_dense``) makes the host wait for the device.  Both counts are
hardware-independent, so they are measured here on CPU, where the test suite runs, and guard the hot path
against a Python loop over graphs or frames coming back unnoticed (``tests/test_dispatch_count.py``).
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["DispatchCount", "PartCount", "ProfiledLaunches", "count_dispatch", "count_by_part", "count_profiled_launches"]

# Operators that need a device -> host transfer before the next launch: their output size (or value) is only
# known once the device has computed it.
_SYNC_OPS = frozenset({
    "aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten._unique", "aten._unique2",
    "aten.unique_dim", "aten.unique_consecutive", "aten.bincount", "aten.masked_scatter",
    "aten.histc", "aten.equal", "aten.is_nonzero",
})


def _is_sync(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether one dispatched call syncs (see the module docstring)."""
    if name in _SYNC_OPS:
        return True
    if name == "aten.repeat_interleave":  # its output size is sum(repeats) unless given
        return kwargs.get("output_size") is None and (len(args) < 4 or args[3] is None)
    if name in ("aten.index", "aten.index_put", "aten._index_put_impl"):  # boolean masks become nonzero()
        indices = args[1] if len(args) > 1 else ()
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices or ())
    return False


# Operators that launch no kernel although they are not schema views: they compute metadata or alias storage.
# Allocations without a fill launch nothing either.
_NO_KERNEL = frozenset({"aten._unsafe_view", "aten.promote_types", "aten.result_type", "aten.lift_fresh",
                        "aten.sym_size", "aten.sym_stride", "aten.sym_numel", "aten.is_same_size",
                        "aten.empty", "aten.empty_like", "aten.empty_strided", "aten.new_empty",
                        "aten.new_empty_strided"})


def _op_name(func: Any) -> str:
    """``aten.<name>`` of a dispatched operator (its overload packet)."""
    name = str(func.overloadpacket).replace("aten::", "aten.")
    return name if name.startswith("aten.") else f"aten.{name}" if "." not in name else name


def _launches(func: Any, name: str) -> bool:
    """Whether one dispatched operator runs a kernel: not a view (``detach``, ``t``, ``view``, ``split``, ...,
    which only make a new tensor header) and not a metadata query."""
    return not getattr(func, "is_view", False) and name not in _NO_KERNEL


@dataclass
class DispatchCount:
    """Operators dispatched (``ops``), those among them that run a kernel (``launches``: views and metadata
    queries left out, so on a GPU about one kernel launch each), host syncs (``syncs``), and per-operator
    tallies."""

    ops: int = 0
    syncs: int = 0
    launches: int = 0
    by_op: Counter = field(default_factory=Counter)
    by_sync: Counter = field(default_factory=Counter)


class _Counter(TorchDispatchMode):
    def __init__(self, record: DispatchCount) -> None:
        super().__init__()
        self.record = record

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = _op_name(func)
        self.record.ops += 1
        self.record.launches += _launches(func, name)
        self.record.by_op[name] += 1
        if _is_sync(name, args, kwargs):
            self.record.syncs += 1
            self.record.by_sync[name] += 1
        return func(*args, **kwargs)


def count_dispatch(fn: Callable[[], Any]) -> DispatchCount:
    """Run ``fn`` once (forward and backward alike: autograd dispatches through the mode) and count."""
    record = DispatchCount()
    with _Counter(record):
        fn()
    return record


@dataclass
class PartCount:
    """One forward + backward split by where its operators come from: ``forward`` per part (the innermost running
    module of the classes asked for, by class name; ``"other"`` outside them), ``backward`` in all; the
    ``*_kernels`` fields count only the operators that run a kernel (see :class:`DispatchCount`)."""

    forward: Counter = field(default_factory=Counter)
    backward: int = 0
    forward_kernels: Counter = field(default_factory=Counter)  # the same, operators that run a kernel only
    backward_kernels: int = 0


class _PartCounter(TorchDispatchMode):
    def __init__(self, record: PartCount, running: list[str]) -> None:
        super().__init__()
        self.record, self.running = record, running
        self.in_backward = False

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kernel = _launches(func, _op_name(func))
        if self.in_backward:
            self.record.backward += 1
            self.record.backward_kernels += kernel
        else:
            part = self.running[-1] if self.running else "other"
            self.record.forward[part] += 1
            self.record.forward_kernels[part] += kernel
        return func(*args, **(kwargs or {}))


def count_by_part(model: torch.nn.Module, forward: Callable[[], torch.Tensor], parts: tuple[type, ...]) -> PartCount:
    """Run ``forward`` (returning a scalar loss) and its backward once, counting the forward's operators per part:
    the innermost running submodule of ``model`` that is an instance of one of ``parts``.  Where the operators
    are is what tells which rewrite pays (e.g. a frame recurrence's share grows with frames).  The backward is
    one total: autograd runs its nodes in its own order, not module by module."""
    record, running = PartCount(), []
    handles = []
    for module in model.modules():
        if isinstance(module, parts):
            name = type(module).__name__
            handles.append(module.register_forward_pre_hook(lambda m, a, name=name: running.append(name)))
            handles.append(module.register_forward_hook(lambda m, a, o: running.pop() and None))
    mode = _PartCounter(record, running)
    try:
        with mode:
            loss = forward()
            mode.in_backward = True
            loss.backward()
    finally:
        for handle in handles:
            handle.remove()
    return record


@dataclass
class ProfiledLaunches:
    """Kernels one run launched, as the profiler saw them (:func:`count_profiled_launches`): ``aten`` (ATen
    kernels by name), ``compiled`` (kernels that ``torch.compile`` generated, by name) and their sum ``total``."""

    aten: Counter = field(default_factory=Counter)
    compiled: Counter = field(default_factory=Counter)
    #: values read back to the host (``aten::_local_scalar_dense``), nested inside other operators included, by
    #: the operator they were read in (``"python"`` at the top): a host sync each on a GPU, and ones that
    #: :func:`count_dispatch` cannot see when a kernel reads them internally.
    sync_sites: Counter = field(default_factory=Counter)

    @property
    def syncs(self) -> int:
        """Every value read back to the host."""
        return sum(self.sync_sites.values())

    @property
    def total(self) -> int:
        """Every kernel launched."""
        return sum(self.aten.values()) + sum(self.compiled.values())


def _is_generated_kernel(name: str) -> bool:
    """Inductor's kernels: ``graph_<k>_cpp_fused_*`` on CPU (with ``cpp.enable_kernel_profile``), ``triton_*`` on a
    GPU."""
    return "cpp_fused" in name or name.startswith("triton_")


@functools.lru_cache(maxsize=None)
def _runs_own_kernel(name: str) -> bool:
    """Whether an ATen operator of this ``aten.<name>`` runs a kernel of its own: not a view or metadata query, and
    not a composite (``CompositeImplicitAutograd``: it only calls other operators, which are counted instead)."""
    if name in _NO_KERNEL:
        return False
    packet = getattr(torch.ops.aten, name.removeprefix("aten."), None)
    if packet is None:
        return True
    overloads = [getattr(packet, o) for o in packet.overloads()]
    if any(getattr(o, "is_view", False) for o in overloads):
        return False
    # The profiler names the operator, not its overload: composite when every overload is.
    composite = torch._C.DispatchKey.CompositeImplicitAutograd
    registered = [o for o in overloads if torch._C._dispatch_has_kernel(o.name())]  # not the Python-only ones
    return not registered or not all(o.has_kernel_for_dispatch_key(composite) for o in registered)


def count_profiled_launches(fn: Callable[[], Any]) -> ProfiledLaunches:
    """Run ``fn`` once under ``torch.profiler`` and count the kernels it launched, by :func:`count_dispatch`'s rule,
    but also inside compiled code, which a ``TorchDispatchMode`` cannot see (``torch.compile`` falls back to eager
    under one): the outermost ATen operators that run a kernel of their own, as called from Python, autograd or
    a compiled graph's wrapper (what an operator runs inside itself is its own business, as in
    :func:`count_dispatch`; a composite such as ``aten::linear`` is looked through to what it calls), plus the
    kernels ``torch.compile`` generated.  Inductor's CPU kernels appear only when
    ``torch._inductor.config.cpp.enable_kernel_profile`` was on when they were compiled."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    record = ProfiledLaunches()
    for e in prof.events():
        if e.name == "aten::_local_scalar_dense":
            site = e.cpu_parent
            while site is not None and site.name in ("aten::item", "aten::_local_scalar_dense"):
                site = site.cpu_parent
            record.sync_sites[site.name if site is not None and site.name.startswith("aten::") else "python"] += 1
        generated = _is_generated_kernel(e.name)
        if not (generated or e.name.startswith("aten::") and _runs_own_kernel(_aten(e.name))):
            continue
        parent = e.cpu_parent  # counted only if no operator around it is
        while parent is not None and not (parent.name.startswith("aten::") and _runs_own_kernel(_aten(parent.name))):
            parent = parent.cpu_parent
        if parent is None:
            (record.compiled if generated else record.aten)[e.name] += 1
    return record


def _aten(profiler_name: str) -> str:
    """``aten.<name>`` of a profiler event named ``aten::<name>``."""
    return "aten." + profiler_name.removeprefix("aten::")
