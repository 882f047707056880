"""Metrics gathered across ranks and de-duplicated by sample index.

Distributed samplers pad the last batch with repeated samples so every rank gets the same count; counting
those twice would bias evaluation, so metrics keep (index, value) pairs and keep one value per index.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class DedupMean(Metric):
    """Mean of per-sample values (e.g. correctness), one value per sample index across all ranks."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("index", default=[], dist_reduce_fx="cat")
        self.add_state("value", default=[], dist_reduce_fx="cat")

    def update(self, index: Tensor, value: Tensor) -> None:
        """Record ``value[i]`` for sample ``index[i]``."""
        self.index.append(index.detach().long().flatten())
        self.value.append(value.detach().float().flatten())

    def compute(self) -> Tensor:
        """The mean over distinct indices (first occurrence wins; duplicates carry equal values)."""
        index, value = dim_zero_cat(self.index), dim_zero_cat(self.value)
        if index.numel() == 0:
            return torch.tensor(float("nan"))
        order = torch.argsort(index, stable=True)
        index, value = index[order], value[order]
        first = torch.ones_like(index, dtype=torch.bool)
        first[1:] = index[1:] != index[:-1]
        return value[first].mean()


class ClassAccuracy(Metric):
    """Top-k accuracy and mean per-class (top-1) accuracy, one prediction per sample index across all ranks.
    Labels ``-1`` (classes unknown to the model) count as wrong; classes absent from the data are left out of
    the class mean."""

    full_state_update = False

    def __init__(self, num_classes: int, ks: tuple[int, ...] = (1, 5)) -> None:
        super().__init__()
        self.num_classes, self.ks = num_classes, tuple(k for k in ks if k <= max(num_classes, 1))
        for name in ("index", "topk", "label"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, index: Tensor, logits: Tensor, label: Tensor) -> None:
        """Record the top-``max(ks)`` predictions of a batch."""
        self.index.append(index.detach().long())
        self.topk.append(logits.detach().topk(max(self.ks), dim=-1).indices)
        self.label.append(label.detach().long())

    def compute(self) -> dict[str, Tensor]:
        """``top1``, ``top5`` (where the classes allow) and ``mean_class``."""
        index, topk, label = dim_zero_cat(self.index), dim_zero_cat(self.topk), dim_zero_cat(self.label)
        _, first = _first(index)
        topk, label = topk[first], label[first]
        out = {f"top{k}": (topk[:, :k] == label[:, None]).any(1).float().mean() for k in self.ks}
        known = label >= 0
        correct = (topk[:, 0] == label).float()
        per_class = torch.zeros(self.num_classes, device=label.device).index_add_(0, label[known], correct[known])
        counts = torch.bincount(label[known], minlength=self.num_classes).float()
        out["mean_class"] = (per_class[counts > 0] / counts[counts > 0]).mean()
        return out


class RetrievalRecall(Metric):
    """Text-to-video and video-to-text recall@K, median and mean rank over the full similarity matrix.

    Each text has one ground-truth video (``video_index``); embeddings of the same video seen on several
    ranks or batches are kept once, as are repeated texts (``index``).  Ranks are 1-based and pessimistic:
    every other item scoring *at least* as high as the ground truth ranks before it (duplicate captions and
    constant embeddings cannot look good).  Text-to-video: every caption is a query.  Video-to-text: a video
    counts at the rank of its best-ranked caption (the field's convention with several captions per video).
    """

    full_state_update = False

    def __init__(self, ks: tuple[int, ...] = (1, 5, 10)) -> None:
        super().__init__()
        self.ks = ks
        for name in ("text", "video", "index", "video_index"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, text: Tensor, video: Tensor, index: Tensor, video_index: Tensor) -> None:
        """Record L2-normalised embeddings of a batch of (text, video) pairs."""
        self.text.append(torch.nn.functional.normalize(text.detach().float(), dim=-1))
        self.video.append(torch.nn.functional.normalize(video.detach().float(), dim=-1))
        self.index.append(index.detach().long())
        self.video_index.append(video_index.detach().long())

    def compute(self) -> dict[str, Tensor]:
        """``t2v_r1``, ``t2v_r5``, ..., ``v2t_r1``, ..., ``t2v_medr`` (ranks are 1-based)."""
        text, video = dim_zero_cat(self.text), dim_zero_cat(self.video)
        index, vindex = dim_zero_cat(self.index), dim_zero_cat(self.video_index)
        _, first_text = _first(index)
        text, vindex_t = text[first_text], vindex[first_text]
        videos, first_video = _first(vindex)
        video = video[first_video]
        sim = text @ video.t()  # [texts, videos]
        gt = torch.searchsorted(videos, vindex_t)
        own = sim.gather(1, gt[:, None])
        t2v_rank = (sim >= own).sum(1)  # counts the ground truth itself: rank >= 1
        # v2t: a video's rank is that of its best-ranked caption among all texts.
        v2t_rank_per_text = (sim.t()[gt] >= own).sum(1)
        v2t_rank = torch.full((len(videos),), sim.shape[0] + 1, dtype=torch.long, device=sim.device)
        v2t_rank = v2t_rank.scatter_reduce(0, gt, v2t_rank_per_text, reduce="amin")
        out = {f"t2v_r{k}": (t2v_rank <= k).float().mean() for k in self.ks}
        out.update({f"v2t_r{k}": (v2t_rank <= k).float().mean() for k in self.ks})
        for name, rank in (("t2v", t2v_rank.float()), ("v2t", v2t_rank.float())):
            out[f"{name}_medr"], out[f"{name}_mnr"] = rank.quantile(0.5), rank.mean()  # np.median, as the field
        return out


def _first(index: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted distinct values of ``index`` and the position of each one's first occurrence."""
    values, inverse = torch.unique(index, sorted=True, return_inverse=True)
    positions = torch.arange(len(index), device=index.device)
    first = torch.full((len(values),), len(index), dtype=torch.long, device=index.device)
    return values, first.scatter_reduce(0, inverse, positions, reduce="amin")
