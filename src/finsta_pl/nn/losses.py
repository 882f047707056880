"""Contrastive and distillation losses of Finsta.

:func:`info_nce` is the symmetric InfoNCE both alignment losses use (OSC and PTC differ only in what is
pooled into the anchor and the region).  Under DDP the other ranks' pairs are gathered *with gradient*
(:class:`_GatherWithGrad`) and serve as extra negatives; ranks may hold different numbers of pairs, so each
pads to the largest count and the padding is cut off after the gather.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _gather_sizes(n: int, device: torch.device) -> list[int]:
    count = torch.tensor([n], device=device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    return [int(c) for c in counts]


class _GatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward sums every rank's gradient of the gathered copies and keeps this rank's part.

    Why not ``torch.distributed.nn.functional.all_gather``: it is deprecated, and on gloo its backward is one
    rooted ``scatter`` per rank, after which one rank of the two-rank loss test aborted at exit ("terminate
    called without an active exception", SIGABRT) in 12 of 70 runs; with this function, 0 of 60 (the
    scatters are the likely cause: a forward-only gather or an ``all_reduce`` never did it).  An ``all_reduce``
    is symmetric and runs on every backend.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> tuple[Tensor, ...]:  # noqa: D102 - see the class
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        return tuple(parts)

    @staticmethod
    def backward(ctx, *grads: Tensor) -> Tensor:  # noqa: D102 - see the class
        stacked = torch.stack(grads).contiguous()
        dist.all_reduce(stacked)
        return stacked[dist.get_rank()]


def gather_with_grad(x: Tensor) -> tuple[Tensor, int]:
    """Rows of ``x`` from every rank (differentiable) and the offset of this rank's rows in the result.

    Every rank must call this the same number of times, also with zero rows, and must use the result in its
    loss: the backward of the gather is a collective as well.
    """
    if not _distributed():
        return x, 0
    sizes = _gather_sizes(x.shape[0], x.device)
    padded = F.pad(x, (0, 0, 0, max(sizes) - x.shape[0]))
    parts = _GatherWithGrad.apply(padded)
    rank = dist.get_rank()
    return torch.cat([p[:s] for p, s in zip(parts, sizes)]), sum(sizes[:rank])


def gather_keys(keys: Tensor) -> Tensor:
    """Integer keys (one per row) from every rank, in rank order; no gradient."""
    if not _distributed():
        return keys
    sizes = _gather_sizes(keys.shape[0], keys.device)
    padded = F.pad(keys, (0, max(sizes) - keys.shape[0]))
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def info_nce(anchors: Tensor, positives: Tensor, logit_scale: Tensor, keys: Tensor | tuple[Tensor, ...] | None = None,
             hard_negatives: Tensor | None = None, hard_mask: Tensor | None = None,
             weights: Tensor | None = None) -> Tensor:
    """Symmetric InfoNCE: row ``i`` of ``anchors`` should match row ``i`` of ``positives`` against all other
    rows of this batch and (under DDP) of every rank.  Inputs are L2-normalised here.

    ``keys`` (one integer per pair, or several such vectors): pairs with an equal key in any of them are not
    each other's negatives (two text objects linked to one track share their positive; two anchors of the
    same concept in one clip are the same thing).  ``weights`` ([P], 0 or 1): pairs of weight 0 make no loss
    term of their own (their anchor is not a positive: a wrong candidate) but stay in the batch as negatives
    of the others.  ``hard_negatives`` (one row per pair, used where
    ``hard_mask``): an extra negative for the anchor only, e.g. the same track over a shifted interval.
    With fewer than two pairs in the whole world there is nothing to contrast and the loss is an exact,
    differentiable zero; it still depends on the gathered tensors, so every rank enters the gathers' backward
    collective (a rank without pairs that skipped it would leave the others waiting forever).
    """
    a = F.normalize(anchors.float(), dim=-1)
    p = F.normalize(positives.float(), dim=-1)
    all_a, offset = gather_with_grad(a)
    all_p, _ = gather_with_grad(p)
    keys = (keys,) if isinstance(keys, Tensor) else tuple(keys or ())
    all_keys = [gather_keys(k) for k in keys]
    zero = (all_a.sum() + all_p.sum()) * 0.0 + logit_scale * 0.0
    if hard_negatives is not None:
        zero = zero + hard_negatives.float().sum() * 0.0
    if all_a.shape[0] < 2 or a.shape[0] == 0:
        return zero
    labels = torch.arange(a.shape[0], device=a.device) + offset
    scale = logit_scale.exp().clamp(max=100.0)
    logits_ap = scale * a @ all_p.t()
    logits_pa = scale * p @ all_a.t()
    if keys:
        same = torch.stack([k[:, None] == ak[None, :] for k, ak in zip(keys, all_keys)]).any(0)
        same[torch.arange(a.shape[0], device=a.device), labels] = False
        logits_ap = logits_ap.masked_fill(same, float("-inf"))
        logits_pa = logits_pa.masked_fill(same, float("-inf"))
    if hard_negatives is not None:
        assert hard_mask is not None, "hard_negatives need hard_mask"
        hard = scale * (a * F.normalize(hard_negatives.float(), dim=-1)).sum(-1, keepdim=True)
        logits_ap = torch.cat([logits_ap, hard.masked_fill(~hard_mask[:, None], float("-inf"))], 1)
    if weights is None:
        return (F.cross_entropy(logits_ap, labels) + F.cross_entropy(logits_pa, labels)) / 2 + zero
    w = weights.to(logits_ap.dtype)
    terms = F.cross_entropy(logits_ap, labels, reduction="none") + F.cross_entropy(logits_pa, labels, reduction="none")
    return (terms * w).sum() / (2 * w.sum().clamp(min=1)) + zero


@torch.no_grad()
def in_batch_top1(anchors: Tensor, positives: Tensor, keys: tuple[Tensor, ...] = (),
                  weights: Tensor | None = None) -> Tensor:
    """Share of (weighted) anchors whose most similar positive in this batch is their own, counting positives
    that share a key with the anchor's pair as its own (they are not negatives in :func:`info_nce`); ``nan``
    without pairs.  A diagnostic, this rank only: it says whether the alignment separates anything."""
    n = anchors.shape[0]
    if n == 0:
        return anchors.new_full((), float("nan"))
    sim = F.normalize(anchors.float(), dim=-1) @ F.normalize(positives.float(), dim=-1).t()
    own = torch.eye(n, dtype=torch.bool, device=anchors.device)
    for k in keys:
        own = own | (k[:, None] == k[None, :])
    best = sim.argmax(1)
    hit = own[torch.arange(n, device=anchors.device), best].float()
    w = torch.ones_like(hit) if weights is None else weights.float()
    return (hit * w).sum() / w.sum().clamp(min=1)


def cosine_distill(student: Tensor, teacher: Tensor, mask: Tensor | None = None) -> Tensor:
    """``1 - cos(student, teacher)`` averaged over rows (where ``mask``); the teacher gets no gradient."""
    loss = 1 - F.cosine_similarity(student.float(), teacher.detach().float(), dim=-1)
    if mask is not None:
        return (loss * mask).sum() / mask.sum().clamp(min=1)
    return loss.mean()
