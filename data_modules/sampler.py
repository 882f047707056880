"""Training order that a run stopped mid-epoch can continue exactly: a seeded, sharded sampler and a
DataLoader that Lightning checkpoints (its ``state_dict``) and restores before the resumed epoch starts.

- :class:`ResumableSampler` is a :class:`~torch.utils.data.DistributedSampler`: the order of an epoch is a
  permutation seeded by ``seed + epoch`` only (padded and sharded by rank like ``DistributedSampler``), so
  every rank, worker count and resumed run sees the same order.  Lightning leaves any ``DistributedSampler``
  in place under DDP (``_requires_distributed_sampler`` is false for it, with or without
  ``use_distributed_sampler``), so the sampler shards itself, by the process group it finds when iterated.
- :class:`ResumableDataLoader` counts the batches it hands out.  Lightning calls ``state_dict`` on a train
  DataLoader that has one when it saves a checkpoint (``FitLoop.on_save_checkpoint``) and
  ``load_state_dict`` before it creates the resumed epoch's iterator (``FitLoop.setup_data``).  The state
  is the epoch, the samples of this rank consumed in it, and the process RNG states (torch, numpy, Python:
  Lightning's checkpoints do not hold them, and dropout or any random op after the resume point needs them).
"""

from __future__ import annotations

import math
import random
import warnings
from typing import Any, Iterator, Sized

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

__all__ = ["ResumableDataLoader", "ResumableSampler", "capture_rng", "restore_rng"]


def _world() -> tuple[int, int]:
    """(world size, rank) of the initialised process group, else (1, 0)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class ResumableSampler(DistributedSampler):
    """Shuffled (or file-order) indices of one rank for one epoch, from ``seed + epoch`` only; ``start``
    skips the first indices of the next iteration once (set by :class:`ResumableDataLoader` on resume).

    ``num_replicas``/``rank`` default to the process group's at iteration time, not at construction, so a
    loader built before the group exists still shards."""

    def __init__(self, dataset: Sized, seed: int = 0, shuffle: bool = True, num_replicas: int | None = None,
                 rank: int | None = None) -> None:
        # DistributedSampler.__init__ needs a process group when num_replicas is None; the world is read lazily.
        self.dataset, self.seed, self.shuffle, self.drop_last = dataset, int(seed), shuffle, False
        self._replicas, self._rank = num_replicas, rank
        self.epoch = 0
        self.start = 0

    @property
    def num_replicas(self) -> int:  # type: ignore[override]
        """World size (the process group's unless given)."""
        return self._replicas if self._replicas is not None else _world()[0]

    @property
    def rank(self) -> int:  # type: ignore[override]
        """This process's rank (the process group's unless given)."""
        return self._rank if self._rank is not None else _world()[1]

    @property
    def num_samples(self) -> int:  # type: ignore[override]
        """Indices per rank per epoch (the dataset padded to a multiple of the world size)."""
        return math.ceil(len(self.dataset) / self.num_replicas)

    @property
    def total_size(self) -> int:  # type: ignore[override]
        """Indices over all ranks per epoch."""
        return self.num_samples * self.num_replicas

    def order(self) -> list[int]:
        """This rank's full index list for the current epoch (before ``start``)."""
        n = len(self.dataset)
        if self.shuffle:  # the generator DistributedSampler uses, so a plain DDP run orders the same
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if len(indices) < self.total_size:  # pad with repeats so every rank gets as many (the metrics de-duplicate)
            indices += (indices * math.ceil(self.total_size / max(n, 1)))[: self.total_size - len(indices)]
        return indices[self.rank: self.total_size: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        start, self.start = self.start, 0
        return iter(self.order()[start:])

    def __len__(self) -> int:
        return self.num_samples


def capture_rng() -> dict[str, Any]:
    """The process RNG states as tensors and plain lists (loadable with ``torch.load(weights_only=True)``)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Set the process RNG states saved by :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class _CountingIterator:
    """The loader's iterator, created at the first ``next`` (so a ``set_epoch`` or ``load_state_dict`` that
    Lightning calls after ``iter()`` still reaches the sampler and the forked workers), counting batches."""

    def __init__(self, loader: "ResumableDataLoader") -> None:
        self.loader = loader
        self._it: Iterator | None = None

    def __iter__(self) -> "_CountingIterator":
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self._it = self.loader._begin()
        batch = next(self._it)
        self.loader._batches += 1
        return batch

    def __len__(self) -> int:
        return len(self.loader)


class ResumableDataLoader(DataLoader):
    """A training DataLoader over a :class:`ResumableSampler` whose position Lightning checkpoints.

    Each epoch also reseeds the loader's own generator from ``(seed, epoch)``: worker base seeds are then a
    function of the epoch, and creating an iterator draws nothing from the global torch RNG (which the
    resumed run restores and must find untouched at its first step).  The dataset's ``epoch`` (per-epoch
    frame offsets) is set from the sampler before the workers fork."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("generator", torch.Generator())
        super().__init__(*args, **kwargs)
        self._batches = 0  # batches handed out in the current iteration
        self._start = 0  # samples skipped at its start (a resumed epoch)
        self._resume: tuple[int, int] | None = None  # (epoch, samples) loaded, applied at the next iteration
        self._rng: dict[str, Any] | None = None  # RNG states loaded, restored at the next iteration's first batch

    @property
    def resumable_sampler(self) -> ResumableSampler:
        """The sampler (Lightning may re-create the loader, but keeps a ``DistributedSampler``)."""
        if not isinstance(self.sampler, ResumableSampler):
            raise TypeError(f"ResumableDataLoader needs a ResumableSampler, got {type(self.sampler).__name__}")
        return self.sampler

    def __iter__(self) -> Iterator:  # type: ignore[override]
        return _CountingIterator(self)

    def _begin(self) -> Iterator:
        sampler = self.resumable_sampler
        self._start = 0
        if self._resume is not None:
            epoch, samples = self._resume
            self._resume = None
            if epoch == sampler.epoch:  # Lightning moved on to another epoch otherwise: start it afresh
                self._start = samples
        sampler.start = self._start
        self._batches = 0
        if self._rng is not None:  # as late as possible: nothing between here and the first step draws from them
            restore_rng(self._rng)
            self._rng = None
        if hasattr(self.dataset, "epoch"):
            self.dataset.epoch = sampler.epoch
        self.generator.manual_seed(sampler.seed * 1_000_003 + sampler.epoch)
        return DataLoader.__iter__(self)

    def state_dict(self) -> dict[str, Any]:
        """Epoch and samples of this rank consumed in it (an epoch seen to its end is the next epoch at 0)."""
        sampler = self.resumable_sampler
        bs = self.batch_size or 1
        if self._resume is not None:  # loaded, not yet iterated: still at the loaded position
            epoch, samples = self._resume
            return {"epoch": epoch, "samples": samples, "batch_size": bs, "seed": sampler.seed,
                    "num_replicas": sampler.num_replicas, "rng": self._rng or capture_rng()}
        batches = self._start // bs + self._batches
        epoch, samples = sampler.epoch, min(self._start + self._batches * bs, len(sampler))
        if batches >= len(self):
            epoch, samples = epoch + 1, 0
        return {"epoch": epoch, "samples": samples, "batch_size": bs, "seed": sampler.seed,
                "num_replicas": sampler.num_replicas, "rng": capture_rng()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue at ``state``'s position from the next iteration on, and restore the RNG states when it
        starts (loading twice, as the DataModule and Lightning's loop both may, is harmless)."""
        sampler = self.resumable_sampler
        if state.get("num_replicas", sampler.num_replicas) != sampler.num_replicas:
            warnings.warn(f"resuming on {sampler.num_replicas} ranks a run saved on {state['num_replicas']}: each "
                          "rank continues at the same position of its new shard, so this epoch may repeat or skip "
                          "samples", stacklevel=2)
        if state.get("seed", sampler.seed) != sampler.seed or state.get("batch_size", self.batch_size) != self.batch_size:
            warnings.warn("resuming with another data seed or batch size than the checkpoint's: the resumed epoch "
                          "is not the one that was stopped", stacklevel=2)
        sampler.set_epoch(int(state["epoch"]))
        self._resume = (int(state["epoch"]), int(state["samples"]))
        self._rng = state.get("rng")
