"""What every finsta-pl DataModule shares: locating files, splits, bad-sample policy, seeding and loaders.

A task's DataModule reads its annotation format into records and says how a record becomes text and targets;
:class:`VideoTextDataset` does the rest per sample in the worker (decode once, encode text, build graphs).
The pieces live in one module per job and are re-exported here: split lists (``split_lists``), settings and
sample specs (``specs``), the Dataset (``dataset``), the loader's resume state (``loader_state``), the OpenCV
fork workaround (``opencv_fork``) and collate (``collate``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

import lightning as L
from torch.utils.data import DataLoader

from finsta_pl.batch import FinstaBatch
from finsta_pl.data_modules.collate import CollateSamples
from finsta_pl.data_modules.dataset import GoldAnnotator, VideoTextDataset
from finsta_pl.data_modules.graph_builder import GraphBuilder, GraphConfig
from finsta_pl.data_modules.loader_state import LoaderResumeState
from finsta_pl.data_modules.opencv_fork import single_threaded_opencv
from finsta_pl.data_modules.registry import STAGE_SPLITS, DatasetFormat, check_unique_ids
from finsta_pl.data_modules.specs import ClipConfig, LoaderConfig, SampleSpec, TextSpec
from finsta_pl.data_modules.split_lists import read_video_list
from finsta_pl.data_modules.video import index_videos, names_tried
from finsta_pl.data_info import DataInfo
from finsta_pl.errors import DataNotFoundError
from finsta_pl.text import TextTokenizer, make_tokenizer

__all__ = ["ClipConfig", "CollateSamples", "FinstaDataModule", "LoaderConfig", "LoaderResumeState", "SampleSpec",
           "TextSpec", "VideoTextDataset", "read_video_list", "single_threaded_opencv"]

log = logging.getLogger(__name__)


class _HasVideo(Protocol):
    video: str


R = TypeVar("R", bound=_HasVideo)


class FinstaDataModule(LoaderResumeState, L.LightningDataModule):
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
        max_text_len: int | None = None,
        on_bad_sample: str = "skip",
        seed: int = 0,
        tokenizer: str = "words",
        split_lists: dict[str, str] | None = None,
        video_pattern: str = "{id}",
    ) -> None:
        """``split_lists``: split -> video list file (relative to the dataset root), replacing the
        annotation's own splits (see :meth:`regroup`): MSR-VTT's 9k/7k/1k-A lists, the compositional split.
        ``video_pattern``: the video file name with ``{id}`` for the annotation's video id (``video{id}``,
        ``{id}_360p``, ``{id}.webm``; see :func:`~finsta_pl.data_modules.video.index_videos`).
        ``max_text_len``: tokens per text; ``None`` takes the format's default (long enough for its texts:
        paragraphs get more than captions)."""
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
        self.format: DatasetFormat | None = None
        self.files: dict[str, str] = {}
        self._mapping: dict[str, str] = {}

    @staticmethod
    def resolve_root(dataset: str, root: str | None, synthetic: Any = None) -> Path:
        """The data folder: the embedded world (generated on first use; ``root`` moves its cache) for
        ``synthetic``, else ``root`` or ``data/<dataset>``."""
        if dataset == "synthetic":
            from finsta_pl.data_modules.synthetic import WorldConfig, ensure_world

            return ensure_world(synthetic or WorldConfig(), Path(root) if root else None)
        return Path(root or f"data/{dataset}").expanduser()

    def locate(self, fmt: DatasetFormat, dataset: str, root: str | None, annotation_dir: str, video_dir: str,
               synthetic: Any = None, files: dict[str, str] | None = None) -> None:
        """Set the format, ``root``, ``annotation_dir``, ``video_dir`` and the annotation file per split (the
        format's, with ``files`` overriding), and stop with :meth:`missing` when a folder is not there.  The
        one place every DataModule finds its files."""
        self.format = fmt
        self.dataset = dataset
        self.root = self.resolve_root(dataset, root, synthetic)
        self.annotation_dir = self.root / annotation_dir
        self.video_dir = self.root / video_dir
        self.files = {**fmt.files, **(files or {})}
        if self.max_text_len is None:
            self.max_text_len = fmt.max_text_len
        for folder, what in ((self.annotation_dir, "annotation folder"), (self.video_dir, "video folder")):
            if not folder.is_dir():
                raise self.missing(f"the {what} {folder} does not exist")

    def missing(self, what: str) -> DataNotFoundError:
        """The one message for missing data: what is missing, the layout expected and where the files come from."""
        fmt = self.format
        assert fmt is not None, "locate() sets the format"
        files = ", ".join(dict.fromkeys([*self.files.values(), *fmt.extra_files]))
        return DataNotFoundError(
            f"{fmt.title} (format {fmt.name}): {what}.\n"
            f"Expected layout (docs/DATASETS.md, {fmt.title}):\n"
            f"  {self.annotation_dir}/{{{files}}}\n"
            f"  {self.video_dir}/...   (the videos, any sub-folder)\n"
            + (f"Official files: {fmt.source}\n" if fmt.source else "")
            + "Put the files there, or point data.init_args.root (or annotation_dir / video_dir / files) at them.")

    def read_annotations(self, need_train: bool = True, **options: Any) -> dict[str, list[Any]]:
        """Records per split through the format's reader (with ``options``), ids checked to be unique per split,
        then :meth:`regroup`.  The training split must exist when ``need_train`` (the vocabulary is built from
        it); otherwise at least one split must."""
        fmt = self.format
        assert fmt is not None, "locate() sets the format"
        records = fmt.read_splits(self.annotation_dir, self.files, **options)
        if not records:
            raise self.missing(f"none of {', '.join(dict.fromkeys(self.files.values()))} is in {self.annotation_dir}")
        check_unique_ids(records, f"{fmt.title} under {self.annotation_dir}")
        records = self.regroup(records)
        if need_train and "train" not in records:
            raise self.missing(self._split_missing("train"))
        return records

    def _split_missing(self, split: str) -> str:
        """Why ``split`` has no records: its split list, or the annotation file expected for it."""
        if self.split_lists:
            return f"split_lists names no {split!r} list (it has {sorted(self.split_lists)})"
        name = self.files.get(split)
        if name is None:
            return (f"the {split} split has no annotation file in this format; name one with "
                    f"data.init_args.files.{split} (e.g. a test file to validate on)")
        path = self.annotation_dir / name
        return (f"the {split} split is read from {name} in {self.annotation_dir}, " +
                ("which is not there" if not path.is_file() else "which holds no record of it"))

    def needed_splits(self, stage: str | None) -> tuple[str, ...]:
        """The splits ``stage`` reads: ``fit`` trains, and validates when a trainer that runs validation is
        attached (Lightning attaches it before ``setup``; ``data check`` attaches the config's), ``validate``
        reads val, ``test`` and ``predict`` read test."""
        needed = STAGE_SPLITS.get(stage or "", ())
        if stage == "fit" and (self.trainer is None or not self.trainer.limit_val_batches):
            needed = ("train",)
        return needed

    def require_splits(self, stage: str | None) -> None:
        """Stop, naming the expected file and folder, when ``stage`` needs a split that has no records: the
        same check in ``fit`` and ``data check``, before any loader is made."""
        records = getattr(self, "records", {})
        for split in self.needed_splits(stage):
            if not records.get(split):
                raise self.missing(f"{stage} needs the {split} split, but {self._split_missing(split)}")

    def setup(self, stage: str | None = None) -> None:
        """Check that the splits ``stage`` needs exist, then build the datasets once (:meth:`build_datasets`)."""
        self.require_splits(stage)
        if not self.datasets:
            self.build_datasets()

    def build_datasets(self) -> None:
        """Fill ``self.datasets`` (split -> :class:`VideoTextDataset`) from the records; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} does not build datasets")

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

    def video_keys(self, key: str) -> tuple[str, ...]:
        """The file stems a record's video key may have: the format's own (``v_<id>`` and ``<id>``, a name with
        and without its extension), then its name in the format's mapping file (MSVD's YouTube clip names)."""
        keys = self.format.video_keys(key) if self.format is not None else (key,)
        mapped = self._mapping.get(key)
        return keys + (mapped,) if mapped and mapped not in keys else keys

    def find_videos(self, records: dict[str, list[R]] | None = None) -> dict[str, Path]:
        """Video key -> file under ``self.video_dir``, by ``video_pattern``: one walk of the folder per run, in
        the main process (see :func:`index_videos`); with ``records``, each record's video (and ``file``)
        that is not a file stem is added under the first of :meth:`video_keys` that is."""
        if self.format is not None and self.format.mapping and not self._mapping:
            from finsta_pl.data_modules.qa_formats import read_msvd_mapping

            path = self.annotation_dir / self.format.mapping
            if not path.is_file():
                raise self.missing(f"{path}: the video-name mapping was not found")
            self._mapping = read_msvd_mapping(path)
        videos = index_videos(Path(self.video_dir), self.video_pattern)
        if records is None:
            return videos
        out = dict(videos)
        for split_records in records.values():
            for r in split_records:
                for key in (r.video, getattr(r, "file", None)):
                    if key is not None and key not in out:
                        path = next((videos[k] for k in self.video_keys(key) if k in videos), None)
                        if path is not None:
                            out[key] = path
        return out

    def names_tried(self, key: str) -> list[str]:
        """The file names searched for video key ``key`` (for missing-video messages and ``data check``)."""
        return names_tried(self.video_keys(key), self.video_pattern)

    def report_unknown_labels(self, split: str, unknown: int, total: int, what: str, unlabelled: int = 0) -> None:
        """Log how many records of ``split`` have a label (answer, class) outside the training labels: left
        out of training, counted wrong in evaluation (the field's convention), never an error mid-run.
        ``unlabelled`` records carry no label at all (Kinetics' official test CSV): they can be predicted, and
        are said to be unscored rather than outside the vocabulary."""
        if unlabelled:
            log.warning("%s: %d of %d %s records carry no %s (the release does not label this split); they can "
                        "be predicted but not scored", type(self).__name__, unlabelled, total, split, what)
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

    def make_dataset(self, split: str, specs: Sequence[SampleSpec], videos: dict[str, Path]) -> VideoTextDataset:
        """A :class:`VideoTextDataset` of ``split`` with this module's settings.  Records without a video file
        are bad samples (skipped and counted, or raised, per ``on_bad_sample``), reported once per split with
        the folder searched and the names tried; when *no* record has one, the annotation and the video folder
        do not belong together, and that is one clear error.  Texts longer than ``max_text_len`` are counted
        once per split (their share, in one warning)."""
        assert self.vocab is not None and self.max_text_len is not None
        missing = [s.video for s in specs if s.video not in videos and not s.problem]
        source = f"{split} split ({self.files.get(split, 'split list')})"
        if missing:
            where = (f"under {self.video_dir} (any sub-folder; {len(videos)} videos indexed); for {missing[0]!r} "
                     f"it tried {', '.join(self.names_tried(missing[0]))}")
            if len(missing) == len(specs):
                raise DataNotFoundError(f"{type(self).__name__}: none of the {len(specs)} records of the {source} has "
                                        f"a video {where}; check data.init_args.video_dir and video_pattern")
            log.warning("%s: %d of %d records of the %s have no video file %s; they are skipped as bad samples "
                        "(`finsta-pl data check` lists them all)", type(self).__name__, len(missing), len(specs),
                        source, where)
        self.report_truncation(split, [t.text for s in specs for t in s.texts])
        if self.build_graphs and self._graph_builder is None:  # one per DataModule: parsers load models
            self._graph_builder = GraphBuilder(self.graph_config)
        builder = self._graph_builder if self.build_graphs else None
        return VideoTextDataset(specs, videos, self.vocab, self.clip, builder, split == "train", self.max_text_len,
                                self.on_bad_sample, self.seed, self.gold_annotator() if builder is not None else None)

    def gold_annotator(self) -> GoldAnnotator | None:
        """Gold object ids for the graphs' nodes where the data has gold scene graphs: the embedded world's
        own video ids (its ``scene_graphs/``), for the alignment diagnostics; ``None`` elsewhere."""
        if getattr(self, "dataset", None) != "synthetic":
            return None
        from finsta_pl.data_modules.synthetic.gold import WorldGold

        return WorldGold(self.root)

    def report_truncation(self, split: str, texts: list[str]) -> float:
        """Warn once for ``split`` with the share of its texts longer than ``max_text_len`` tokens (they are cut
        at that length); returns the share."""
        assert self.vocab is not None and self.max_text_len is not None
        unique = set(texts)
        if not unique:
            return 0.0
        long = {t for t in unique if len(self.vocab.encode(t, 1 << 30)[0]) > self.max_text_len}
        cut = sum(t in long for t in texts)
        if cut:
            log.warning("%s: %d of %d %s texts (%.1f%%) are longer than max_text_len=%d tokens and are cut; raise "
                        "data.init_args.max_text_len (the host must accept that length)", type(self).__name__, cut,
                        len(texts), split, 100.0 * cut / len(texts), self.max_text_len)
        return cut / len(texts)

    def _collate(self) -> Callable[[list], FinstaBatch]:
        assert self.vocab is not None
        return CollateSamples(self.vocab)

    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            # An input error (exit 2 with this line), not a crash: a fit needs a validation file the data lacks.
            if self.format is not None:
                raise self.missing(f"no {split!r} split to load: {self._split_missing(split)}")
            raise DataNotFoundError(f"{type(self).__name__} has no {split!r} split (setup did not run)")
        bs = self.loader.batch_size if train else (self.loader.eval_batch_size or self.loader.batch_size)
        single_threaded_opencv()
        dataset = self.datasets[split]
        common = dict(batch_size=bs, num_workers=self.loader.num_workers, pin_memory=self.loader.pin_memory,
                      collate_fn=self._collate(), persistent_workers=False)
        if train:  # seeded by (seed, epoch), sharded per rank, resumable mid-epoch (see data_modules/sampler.py)
            return self.resumable_train_loader(dataset, self.seed, drop_last=len(dataset) > bs, **common)
        return DataLoader(dataset, shuffle=False, **common)


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
