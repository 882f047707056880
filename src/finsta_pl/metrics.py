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
