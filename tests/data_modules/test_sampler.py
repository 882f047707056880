"""The resumable training order: seeded by (seed, epoch) only, sharded per rank, continued exactly from a
loader state, with the process RNG states restored; Lightning keeps the sampler under DDP."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from finsta_pl.data_modules.sampler import ResumableDataLoader, ResumableSampler, capture_rng, restore_rng


class _Ids(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.n, self.epoch = n, -1

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[int, int]:
        return index, self.epoch


def _loader(n: int = 10, bs: int = 3, seed: int = 5, **kwargs: int) -> ResumableDataLoader:
    data = _Ids(n)
    return ResumableDataLoader(data, sampler=ResumableSampler(data, seed, **kwargs), batch_size=bs,
                               collate_fn=lambda items: items)


def test_order_depends_on_seed_and_epoch_only_and_shards_cover_the_data() -> None:
    a, b = ResumableSampler(range(11), seed=3), ResumableSampler(range(11), seed=3)
    b.set_epoch(1)
    assert list(a) == list(ResumableSampler(range(11), seed=3)) and list(a) != list(b) and sorted(a) == list(range(11))
    # the same permutation DistributedSampler makes (a DDP run without this sampler orders the same)
    assert list(a) == list(DistributedSampler(range(11), num_replicas=1, rank=0, seed=3))
    shards = [list(ResumableSampler(range(11), seed=3, num_replicas=2, rank=r)) for r in (0, 1)]
    assert [len(s) for s in shards] == [6, 6] and set(shards[0]) | set(shards[1]) == set(range(11))
    assert shards == [list(DistributedSampler(range(11), num_replicas=2, rank=r, seed=3)) for r in (0, 1)]
    # Lightning replaces a sampler under DDP only when it is not a DistributedSampler
    assert isinstance(a, DistributedSampler)


def test_loader_state_continues_the_epoch_where_it_stopped() -> None:
    full = _loader()
    full.sampler.set_epoch(2)
    reference = [item for batch in full for item in batch]
    assert sorted(i for i, _ in reference) == list(range(10)) and {e for _, e in reference} == {2}

    stopped = _loader()
    stopped.sampler.set_epoch(2)
    it = iter(stopped)
    seen = [item for _ in range(2) for item in next(it)]
    state = stopped.state_dict()
    assert (state["epoch"], state["samples"]) == (2, 6)

    resumed = _loader()
    resumed.load_state_dict(state)
    it = iter(resumed)
    resumed.sampler.set_epoch(2)  # Lightning sets the epoch after iter(): the iterator starts lazily
    rest = [item for batch in it for item in batch]
    assert seen + rest == reference  # no sample repeated or skipped, dataset epoch 2 in the workers' view
    assert resumed.state_dict()["epoch"] == 3 and resumed.state_dict()["samples"] == 0  # epoch seen to its end


def test_a_loaded_position_of_an_earlier_epoch_is_dropped_when_lightning_moves_on() -> None:
    stopped = _loader()
    it = iter(stopped)
    next(it)
    state = stopped.state_dict()
    resumed = _loader()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(1)
    assert len([i for batch in resumed for i in batch]) == 10


def test_rng_states_round_trip_and_iteration_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    state = capture_rng()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(state)
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
    before = torch.get_rng_state()
    list(_loader())
    assert torch.equal(torch.get_rng_state(), before)
