"""Contrastive and distillation losses of Finsta.

:func:`info_nce` is the symmetric InfoNCE both alignment losses use (OSC and PTC differ only in what is
pooled into the anchor and the region).  Under DDP the other ranks' pairs are gathered *with gradient*
(``torch.distributed.nn.functional.all_gather``) and serve as extra negatives; ranks may hold different
numbers of pairs, so each pads to the largest count and the padding is cut off after the gather.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(x: Tensor) -> tuple[Tensor, int]:
    """Rows of ``x`` from every rank (differentiable) and the offset of this rank's rows in the result.

    Every rank must call this the same number of times, also with zero rows.
    """
    if not _distributed():
        return x, 0
    from torch.distributed.nn.functional import all_gather

    count = torch.tensor([x.shape[0]], device=x.device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    sizes = [int(c) for c in counts]
    padded = F.pad(x, (0, 0, 0, max(sizes) - x.shape[0]))
    parts = all_gather(padded)
    rank = dist.get_rank()
    return torch.cat([p[:s] for p, s in zip(parts, sizes)]), sum(sizes[:rank])


def info_nce(anchors: Tensor, positives: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric InfoNCE: row ``i`` of ``anchors`` should match row ``i`` of ``positives`` against all other
    rows of this batch and (under DDP) of every rank.  Inputs are L2-normalised here.  With fewer than two
    pairs in the whole world there is nothing to contrast and the loss is an exact, differentiable zero."""
    a = F.normalize(anchors.float(), dim=-1)
    p = F.normalize(positives.float(), dim=-1)
    all_a, offset = gather_with_grad(a)
    all_p, _ = gather_with_grad(p)
    if all_a.shape[0] < 2 or a.shape[0] == 0:
        return (anchors.sum() + positives.sum()) * 0.0 + logit_scale * 0.0
    labels = torch.arange(a.shape[0], device=a.device) + offset
    scale = logit_scale.exp().clamp(max=100.0)
    loss_ap = F.cross_entropy(scale * a @ all_p.t(), labels)
    loss_pa = F.cross_entropy(scale * p @ all_a.t(), labels)
    return (loss_ap + loss_pa) / 2


def cosine_distill(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """``1 - cos(student, teacher)`` averaged over rows (where ``mask``); the teacher gets no gradient."""
    loss = 1 - F.cosine_similarity(student.float(), teacher.detach().float(), dim=-1)
    if mask is not None:
        return (loss * mask).sum() / mask.sum().clamp(min=1)
    return loss.mean()
