"""The one place that imports torchvision's detection models.

torchvision's C++ operators (``_C``) are built against one torch release.  Where the installed torch differs
(here: a CPU torch 2.13.0 beside PyPI's torchvision 0.28.0), ``_C`` does not load and ``import torchvision``
itself fails ("operator torchvision::nms does not exist": its fake-tensor registrations assume the op).  The
detectors need only two of those operators: ``nms`` (box suppression) and ``roi_align`` (Faster R-CNN's
box head), and torchvision already ships a pure-torch ``roi_align`` that it uses when ``_C`` is missing.
So, only when ``_C`` fails, we define ``torchvision::nms`` and ``torchvision::qnms`` with a pure-torch NMS
before the import, then tell torchvision's box ops that the operators exist.  With a matching torchvision
nothing is touched: its own kernels run.
"""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType

import torch
from torch import Tensor

from finsta_pl.errors import FinstaError


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the boxes kept by greedy non-maximum suppression, by decreasing score (torchvision's
    contract: ``boxes [N, 4]`` as ``x1, y1, x2, y2``; a box is dropped when its IoU with a kept, higher-scored
    box exceeds ``iou_threshold``).  One IoU matrix, then one step per kept box."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True)
    b = boxes[order].float()
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    iou = inter / (area[:, None] + area[None] - inter).clamp(min=1e-9)
    keep = []
    remaining = torch.arange(len(b), device=b.device)
    while remaining.numel():  # one step per kept box, each a vectorised row test
        i = remaining[0]
        keep.append(i)
        rest = remaining[1:]
        remaining = rest[iou[i, rest] <= iou_threshold]
    return order[torch.stack(keep)]


_LIBRARY: torch.library.Library | None = None


def _define_missing_ops() -> None:
    """``torchvision::nms`` / ``qnms`` with the pure-torch NMS, registered for every backend."""
    global _LIBRARY
    if _LIBRARY is not None:
        return
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", nms, "CompositeExplicitAutograd")
    lib.impl("qnms", nms, "CompositeExplicitAutograd")
    _LIBRARY = lib


@lru_cache(maxsize=1)
def _native_ops_load() -> bool:
    """Whether torchvision's compiled operators load beside this torch (without importing torchvision)."""
    from importlib.util import find_spec

    spec = find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    import glob
    import os

    libs = glob.glob(os.path.join(spec.submodule_search_locations[0], "_C*.so")) + glob.glob(
        os.path.join(spec.submodule_search_locations[0], "_C*.pyd"))
    if not libs:
        return False
    try:
        torch.ops.load_library(libs[0])
        return True
    except (OSError, RuntimeError):
        return False


@lru_cache(maxsize=1)
def make_importable() -> bool:
    """Define the missing operators when torchvision is installed and its compiled ones do not load, so that
    ``import torchvision`` works (torchmetrics imports it whenever it is installed).  Returns whether the
    compiled operators load; cheap (one failed library load), called when finsta_pl is imported."""
    from importlib.util import find_spec

    if find_spec("torchvision") is None:
        return False
    native = _native_ops_load()
    if not native:
        _define_missing_ops()
    return native


@lru_cache(maxsize=1)
def load_torchvision() -> ModuleType:
    """``torchvision``, importable on this torch (pure-torch NMS where its compiled operators do not load)."""
    from importlib.util import find_spec

    if find_spec("torchvision") is None:
        raise FinstaError("detector 'torchvision' needs torchvision: pip install 'finsta-pl[detect]' "
                          "(a torchvision release built for the installed torch)")
    native = make_importable()
    import torchvision
    import torchvision.extension

    if not native:
        # torchvision.ops.nms asks extension._has_ops() at call time; roi_align keeps its own (False) binding
        # and so takes torchvision's pure-torch path.
        torchvision.extension._has_ops = lambda: True  # type: ignore[assignment]
    return torchvision


def native_ops() -> bool:
    """Whether torchvision runs its own compiled operators (``False``: the pure-torch NMS stands in)."""
    return make_importable()
