"""The one Dataset every task uses: a record's clip decoded, its texts encoded and its scene graphs built, all in
the worker's ``__getitem__``; a record that cannot be loaded is a bad sample (skipped and counted, or raised)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from finsta_pl.batch import BadSample, Sample, SampleText
from finsta_pl.data_modules.graph_builder import GraphBuilder
from finsta_pl.data_modules.specs import ClipConfig, SampleSpec
from finsta_pl.data_modules.video import BadSampleError, decode_clip
from finsta_pl.graphs.container import SceneGraph
from finsta_pl.text import TextTokenizer

#: ``(video_key, frame_indices, dsg, tsgs) -> (dsg node gold ids, [tsg node gold ids per text])`` or ``None``
#: (no gold for that video): :class:`finsta_pl.data_modules.synthetic.gold.WorldGold`.
GoldAnnotator = Callable[[str, Sequence[int], SceneGraph, Sequence[SceneGraph]], "tuple[Tensor, list[Tensor]] | None"]


class VideoTextDataset(Dataset):
    """Decodes a record's clip, encodes its text and builds its scene graphs, all in ``__getitem__``."""

    def __init__(
        self,
        specs: Sequence[SampleSpec],
        videos: dict[str, Path],
        vocab: TextTokenizer,
        clip: ClipConfig,
        graphs: GraphBuilder | None,
        train: bool,
        max_text_len: int,
        on_bad_sample: str = "skip",
        seed: int = 0,
        gold: GoldAnnotator | None = None,
    ) -> None:
        """``gold``: gold object ids for the graphs' nodes (datasets with gold scene graphs: the embedded world),
        for the alignment diagnostics only."""
        self.gold = gold
        self.specs, self.videos, self.vocab, self.clip, self.graphs = list(specs), videos, vocab, clip, graphs
        self.train, self.max_text_len, self.on_bad_sample, self.seed = train, max_text_len, on_bad_sample, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, index: int) -> Sample | BadSample:
        spec = self.specs[index]
        try:
            return self._load(index, spec)
        except BadSampleError as exc:
            if self.on_bad_sample == "raise":
                raise
            warnings.warn(f"skipping sample {spec.id}: {exc}", stacklevel=1)
            return BadSample(spec.id, str(self.videos.get(spec.video, spec.video)), str(exc))

    def _load(self, index: int, spec: SampleSpec) -> Sample:
        if spec.problem:
            raise BadSampleError(spec.problem)
        path = self.videos.get(spec.video)
        if path is None:
            raise BadSampleError(f"no video file for {spec.video!r} (sample {spec.id})")
        # Random offsets depend only on (seed, epoch, index): the same on any worker count or rank.
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train and self.clip.random_offsets else None
        start = time.perf_counter()
        frames, frame_indices = decode_clip(path, self.clip.num_frames, self.clip.frame_size, rng,
                                            self.clip.keyframes, self.clip.keyframe_candidates, spec.window)
        decoded = time.perf_counter()
        encoded = [self.vocab.encode(t.text, self.max_text_len) for t in spec.texts]
        timings = {"decode": decoded - start, "text": time.perf_counter() - decoded}
        texts = [SampleText(ids, targets=dict(t.targets)) for (ids, _), t in zip(encoded, spec.texts)]
        sample = Sample(spec.id, frames, texts, targets=dict(spec.targets))
        if self.graphs is not None:
            parsed = [(t.text[: t.parse_chars], offsets) for t, (_, offsets) in zip(spec.texts, encoded)]
            sample.dsg, graphs = self.graphs(frames, frame_indices, parsed, seed=self.seed + index,
                                             video_key=spec.video, video_path=path, repeatable=rng is None)
            for text, g in zip(texts, graphs):
                text.graphs = g
            gold = None if self.gold is None else self.gold(spec.video, frame_indices, sample.dsg, [g.tsg for g in graphs])
            if gold is not None:
                sample.dsg_gold = gold[0]
                for text, ids in zip(texts, gold[1]):
                    text.gold = ids
            timings.update(self.graphs.timings)
        sample.timings = timings
        return sample
