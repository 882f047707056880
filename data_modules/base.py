"""What every finsta-pl DataModule shares: decoding, scene graphs, bad-sample policy, seeding and loaders.

A task's DataModule reads its annotation format into records and says how a record becomes text and targets;
:class:`VideoTextDataset` does the rest per sample in the worker (decode once, encode text, build graphs).
"""

from __future__ import annotations

import csv
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Dataset

from finsta_pl.batch import BadSample, FinstaBatch, Sample, SampleText, collate_samples
from finsta_pl.data_modules.graph_builder import GraphBuilder, GraphConfig
from finsta_pl.data_modules.sampler import ResumableDataLoader, ResumableSampler
from finsta_pl.data_modules.video import BadSampleError, decode_clip, index_videos
from finsta_pl.data_info import DataInfo
from finsta_pl.errors import DataNotFoundError
from finsta_pl.text import TextTokenizer, make_tokenizer

log = logging.getLogger(__name__)


class _HasVideo(Protocol):
    video: str


R = TypeVar("R", bound=_HasVideo)


def read_video_list(path: Path) -> list[str]:
    """Video ids of a split list: one id per line (``train_list_jsfusion.txt``) or a CSV with a ``video_id``
    column (``MSRVTT_train.9k.csv``, ``MSRVTT_JSFUSION_test.csv``; comma, semicolon or tab, sniffed)."""
    if not path.is_file():
        raise DataNotFoundError(f"split list not found: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if lines and lines[0] == "video_id":  # MSRVTT_train.9k.csv: a one-column CSV
        return list(dict.fromkeys(lines[1:]))
    if lines and any(d in lines[0] for d in ",;\t"):
        delimiter = csv.Sniffer().sniff(lines[0], delimiters=",;\t").delimiter
        rows = list(csv.DictReader(lines, delimiter=delimiter))
        if not rows or "video_id" not in rows[0]:
            raise DataNotFoundError(f"{path}: a CSV split list needs a 'video_id' column (header: {lines[0]!r})")
        return list(dict.fromkeys(r["video_id"].strip() for r in rows))
    return list(dict.fromkeys(lines))


@dataclass
class ClipConfig:
    """Frame sampling: frames per clip, square frame side after resizing, random offsets while training, and
    the keyframe method (``uniform`` or ``difference``, with ``keyframe_candidates`` x frames decoded)."""

    num_frames: int = 8
    frame_size: int = 64
    random_offsets: bool = True
    keyframes: str = "uniform"
    keyframe_candidates: int = 4


@dataclass
class LoaderConfig:
    """DataLoader settings.  Workers are not persistent so each epoch's frame sampling sees the new epoch."""

    batch_size: int = 32
    eval_batch_size: int | None = None
    num_workers: int = 2
    pin_memory: bool = False


@dataclass
class TextSpec:
    """One text of a record.  ``text`` is encoded for the host; the TSG is parsed from its first ``parse_chars``
    characters (all when ``None``), e.g. a statement without the subtitles after it."""

    text: str
    targets: dict[str, Any] = field(default_factory=dict)
    parse_chars: int | None = None


@dataclass
class SampleSpec:
    """What a task's dataset needs from one record: sample id, video key, its texts and target values, and the
    ``(start, end)`` seconds of the video it covers when it is a segment of a longer file."""

    id: str
    video: str
    texts: list[TextSpec]
    targets: dict[str, Any] = field(default_factory=dict)
    window: tuple[float, float] | None = None
    #: why the record cannot be used (a malformed annotation record): a bad sample, named by its file:position
    problem: str = ""

    @classmethod
    def single(cls, id: str, video: str, text: str, targets: dict[str, Any] | None = None,
               window: tuple[float, float] | None = None) -> "SampleSpec":
        """A record with one text (a question, a caption)."""
        return cls(id, video, [TextSpec(text)], dict(targets or {}), window)


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
    ) -> None:
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
            timings.update(self.graphs.timings)
        sample.timings = timings
        return sample


class FinstaDataModule(L.LightningDataModule):
    """Base DataModule: subclasses fill ``self.datasets`` in ``setup`` and describe themselves in :meth:`info`."""

    #: the task family, and the targets its batches carry per clip and per text (see DataInfo).
    task: str = ""
    target_keys: tuple[str, ...] = ()
    text_target_keys: tuple[str, ...] = ()

    def __init__(
        self,
        clip: ClipConfig | None = None,
        loader: LoaderConfig | None = None,
        graphs: GraphConfig | None = None,
        build_graphs: bool = True,
        max_text_len: int = 32,
        on_bad_sample: str = "skip",
        seed: int = 0,
        tokenizer: str = "words",
        split_lists: dict[str, str] | None = None,
        video_pattern: str = "{id}",
    ) -> None:
        """``split_lists``: split -> video list file (relative to the dataset root), replacing the
        annotation's own splits (see :meth:`regroup`): MSR-VTT's 9k/7k/1k-A lists, the compositional split.
        ``video_pattern``: the video file name with ``{id}`` for the annotation's video id (``video{id}``,
        ``{id}_360p``, ``{id}.webm``; see :func:`~finsta_pl.data_modules.video.index_videos`)."""
        super().__init__()
        if on_bad_sample not in {"skip", "raise"}:
            raise ValueError(f"on_bad_sample must be 'skip' or 'raise', not {on_bad_sample!r}")
        self.clip = clip or ClipConfig()
        self.loader = loader or LoaderConfig()
        self.graph_config = graphs or GraphConfig()
        self.build_graphs = build_graphs
        self.max_text_len = max_text_len
        self.on_bad_sample = on_bad_sample
        self.seed = seed
        self.tokenizer = tokenizer
        self.split_lists = dict(split_lists or {})
        self.video_pattern = video_pattern
        self.vocab: TextTokenizer | None = None
        self.datasets: dict[str, VideoTextDataset] = {}
        self._graph_builder: GraphBuilder | None = None

    @staticmethod
    def resolve_root(dataset: str, root: str | None, synthetic: Any = None) -> Path:
        """The data folder: the embedded world (generated on first use; ``root`` moves its cache) for
        ``synthetic``, else ``root`` or ``data/<dataset>``."""
        if dataset == "synthetic":
            from finsta_pl.data_modules.synthetic import WorldConfig, ensure_world

            return ensure_world(synthetic or WorldConfig(), Path(root) if root else None)
        return Path(root or f"data/{dataset}").expanduser()

    def regroup(self, records: dict[str, list[R]]) -> dict[str, list[R]]:
        """Apply ``split_lists``: each named split takes, in file order, the records of every annotation split
        whose video is on its list; splits not named are dropped (they would overlap the lists).  Unchanged
        without ``split_lists``.  Call with the records as read, before building the vocabulary."""
        if not self.split_lists:
            return records
        root = getattr(self, "root", Path("."))
        pool = [r for split_records in records.values() for r in split_records]
        out: dict[str, list[R]] = {}
        for split, name in self.split_lists.items():
            listed = set(read_video_list(root / name))
            out[split] = [r for r in pool if r.video in listed]
            found = len({r.video for r in out[split]})
            if not found:
                raise DataNotFoundError(f"{root / name}: none of its {len(listed)} video ids has a record in the "
                                        f"annotation (first listed: {next(iter(listed), None)!r})")
            if found < len(listed):
                log.warning("%s: %d of %d listed videos have no record (split %s)", root / name,
                            len(listed) - found, len(listed), split)
        return out

    def find_videos(self) -> dict[str, Path]:
        """Video id -> file under ``self.video_dir`` (set by the subclass), by ``video_pattern``: one walk of
        the folder per run, in the main process (see :func:`index_videos`)."""
        return index_videos(Path(self.video_dir), self.video_pattern)

    @staticmethod
    def alias_videos(videos: dict[str, Path], records: dict[str, list[R]],
                     keys_of: Callable[[str], tuple[str, ...]]) -> dict[str, Path]:
        """``videos`` plus, for each record's video (and ``file``, where records have one) that is not a file
        stem, the first of ``keys_of(key)`` that is (e.g. ActivityNet's ``v_<id>`` keys with ``<id>.mp4``)."""
        out = dict(videos)
        for split_records in records.values():
            for r in split_records:
                for key in (r.video, getattr(r, "file", None)):
                    if key is not None and key not in out:
                        path = next((videos[k] for k in keys_of(key) if k in videos), None)
                        if path is not None:
                            out[key] = path
        return out

    def report_unknown_labels(self, split: str, unknown: int, total: int, what: str) -> None:
        """Log how many records of ``split`` have a label (answer, class) outside the training labels: left
        out of training, counted wrong in evaluation (the field's convention), never an error mid-run."""
        if unknown:
            fate = "left out of training" if split == "train" else "counted wrong"
            log.warning("%s: %d of %d %s records have their %s outside the training vocabulary; they are %s",
                        type(self).__name__, unknown, total, split, what, fate)

    def build_vocab(self, training_texts: Iterable[str]) -> None:
        """Set ``self.vocab``: the ``tokenizer`` setting (``words``, or a `transformers` tokenizer folder)."""
        self.vocab = make_tokenizer(self.tokenizer, training_texts)

    def data_info(self) -> DataInfo:
        """What a task module must know about the data; subclasses add labels and baselines."""
        assert self.vocab is not None
        return DataInfo(self.task, self.vocab.info(), self.target_keys, self.text_target_keys)

    def info(self) -> dict[str, Any]:
        """:meth:`data_info` in its serialisable form (the CLI links it into the model; saved with it)."""
        return self.data_info().to_dict()

    def set_epoch(self, epoch: int) -> None:
        """Called at each training epoch start (before workers fork) so frame sampling changes per epoch."""
        if "train" in self.datasets:
            self.datasets["train"].epoch = epoch

    def make_dataset(self, specs: Sequence[SampleSpec], videos: dict[str, Path], train: bool) -> VideoTextDataset:
        """A :class:`VideoTextDataset` with this module's settings.  Records without a video file are bad
        samples (skipped and counted, or raised, per ``on_bad_sample``); when *no* record has one, the
        annotation and the video folder do not belong together, and that is one clear error."""
        assert self.vocab is not None
        missing = [s.video for s in specs if s.video not in videos and not s.problem]
        if specs and len(missing) == len(specs):
            where = getattr(self, "video_dir", "the video folder")
            raise DataNotFoundError(f"{type(self).__name__}: none of the {len(specs)} {'training' if train else 'evaluation'} "
                                    f"records has a video under {where} (first: {missing[0]!r}, {len(videos)} "
                                    "videos indexed); check data.init_args.video_dir and the file-name pattern")
        if missing:
            log.warning("%s: %d of %d records have no video file; they are skipped as bad samples",
                        type(self).__name__, len(missing), len(specs))
        if self.build_graphs and self._graph_builder is None:  # one per DataModule: parsers load models
            self._graph_builder = GraphBuilder(self.graph_config)
        builder = self._graph_builder if self.build_graphs else None
        return VideoTextDataset(specs, videos, self.vocab, self.clip, builder, train, self.max_text_len,
                                self.on_bad_sample, self.seed)

    def _collate(self) -> Callable[[list], FinstaBatch]:
        assert self.vocab is not None
        return CollateSamples(self.vocab)

    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            # An input error (exit 2 with this line), not a crash: a fit needs a validation file the data lacks.
            raise DataNotFoundError(f"{type(self).__name__} has no {split!r} split: no annotation for it under "
                                    f"{getattr(self, 'root', 'the data root')} (or setup did not run); see docs/DATASETS.md")
        bs = self.loader.batch_size if train else (self.loader.eval_batch_size or self.loader.batch_size)
        single_threaded_opencv()
        dataset = self.datasets[split]
        common = dict(batch_size=bs, num_workers=self.loader.num_workers, pin_memory=self.loader.pin_memory,
                      collate_fn=self._collate(), persistent_workers=False)
        if train:  # seeded by (seed, epoch), sharded per rank, resumable mid-epoch (see data_modules/sampler.py)
            loader = ResumableDataLoader(dataset, sampler=ResumableSampler(dataset, self.seed),
                                         drop_last=len(dataset) > bs, **common)
            if getattr(self, "_train_loader_state", None):
                loader.load_state_dict(self._train_loader_state)
                self._train_loader_state = None
            self._train_loader = loader
            return loader
        return DataLoader(dataset, shuffle=False, **common)

    def state_dict(self) -> dict[str, Any]:
        """The training loader's position and RNG states, saved in checkpoints with the DataModule.

        Lightning saves the loader's own state too, but restores it only when the loop creates the loader
        after the checkpoint is loaded; ``configure_optimizers`` asking ``estimated_stepping_batches`` creates
        it before, and that state is then dropped.  The DataModule is restored earlier than both."""
        loader = getattr(self, "_train_loader", None)
        return {"train_loader": loader.state_dict()} if loader is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the training loader's state for the next training loader this module makes."""
        self._train_loader_state = state_dict.get("train_loader")

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches."""
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in file order."""
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in file order."""
        return self._loader("test", False)

    def predict_dataloader(self) -> DataLoader:
        """Prediction runs over the test split."""
        return self._loader("test", False)


def single_threaded_opencv() -> None:
    """One OpenCV thread, set in the process that forks the DataLoader workers.

    Workers run in parallel already, so more OpenCV threads only oversubscribe.  It must happen in the
    parent: a forked worker that calls ``cv2.setNumThreads`` tears down a thread pool copied from the parent,
    and if the parent had used that pool (graph pictures, ``num_workers: 0``), the copy can hold a locked
    mutex and the worker hangs forever in ``pthread_cond_destroy`` (seen as a training run that stalls at an
    epoch start with idle CPUs).  A pool of one thread has no worker threads, so forking it is safe.
    """
    import cv2

    cv2.setNumThreads(1)


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
