"""The loaders' collate function (a picklable class, timed per batch)."""

from __future__ import annotations

import time

from finsta_pl.batch import FinstaBatch, collate_samples
from finsta_pl.text import TextTokenizer


class CollateSamples:
    """The loaders' collate function: :func:`collate_samples` with the vocabulary's label encoder, timed (the
    batch's ``worker_seconds["collate"]``).  A class, so it pickles where workers are spawned."""

    def __init__(self, vocab: TextTokenizer) -> None:
        self.vocab = vocab

    def __call__(self, samples: list) -> FinstaBatch:
        start = time.perf_counter()
        batch = collate_samples(samples, self.vocab.encode_label)
        batch.worker_seconds["collate"] = time.perf_counter() - start  # the whole batch's, like the others' sums
        return batch
