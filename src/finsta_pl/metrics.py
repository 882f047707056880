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


class RetrievalRecall(Metric):
    """Text-to-video and video-to-text recall@K and median rank over the full similarity matrix.

    Each text has one ground-truth video (``video_index``); embeddings of the same video seen on several
    ranks or batches are kept once, as are repeated texts (``index``).
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
        t2v_rank = (sim > sim.gather(1, gt[:, None])).sum(1) + 1
        # v2t: a video's rank is that of its best-ranked caption among all texts.
        v2t_rank_per_text = (sim.t()[gt] > sim.gather(1, gt[:, None])).sum(1) + 1
        v2t_rank = torch.full((len(videos),), sim.shape[0] + 1, dtype=torch.long, device=sim.device)
        v2t_rank = v2t_rank.scatter_reduce(0, gt, v2t_rank_per_text, reduce="amin")
        out = {f"t2v_r{k}": (t2v_rank <= k).float().mean() for k in self.ks}
        out.update({f"v2t_r{k}": (v2t_rank <= k).float().mean() for k in self.ks})
        out["t2v_medr"] = t2v_rank.float().median()
        return out


def _first(index: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted distinct values of ``index`` and the position of each one's first occurrence."""
    values, inverse = torch.unique(index, sorted=True, return_inverse=True)
    positions = torch.arange(len(index), device=index.device)
    first = torch.full((len(values),), len(index), dtype=torch.long, device=index.device)
    return values, first.scatter_reduce(0, inverse, positions, reduce="amin")
