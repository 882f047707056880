"""Video-language inference data: VIOLIN's ``violin_annotation.json`` (DATASETS.md §9), LAVIS's VIOLIN list, or
the embedded world's copy of the original.  Each statement of a clip is a text of the clip's sample: the
statement followed by the clip's subtitles in time order (the TSG is parsed from the statement only), and the
label 1 (entailed, the "real" statement of a pair) or 0 (contradicted, the "fake" one)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from finsta_pl.data_info import DataInfo
from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec, TextSpec
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.errors import BadSampleError, DataNotFoundError

#: VIOLIN's split names -> ours (third-party loaders disagree on validate/val: accept both).
_SPLITS = {"train": "train", "validate": "val", "val": "val", "test": "test"}
_WHERE = """{name} was not found at {root}.
Expected layout (docs/DATASETS.md, VIOLIN):
  {root}/{ann}          (violin_annotation.json from the VIOLIN release)
  {root}/{vid}/<file>.mp4   (the clips, named by each record's "file"; any sub-folder)
Put the files there, or point data.init_args.root (or annotation / video_dir) at them."""


@dataclass(frozen=True)
class Subtitle:
    """One subtitle line and its ``[start, end]`` seconds (``None`` where the annotation gives no times)."""

    text: str
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class StatementRecord:
    """One statement about one clip, with the clip's subtitles, whether it is entailed, and the clip's span
    ``(start, end)`` seconds in the video ``video`` (decoded as a window) when the annotation gives one."""

    id: str
    video: str
    statement: str
    subtitles: tuple[Subtitle, ...]
    label: int
    span: tuple[float, float] | None = None

    @property
    def subtitle_text(self) -> str:
        """The subtitles joined in time order (the order of the file where there are no times)."""
        return " ".join(s.text for s in self.subtitles)


def _subtitles(entries: Any) -> tuple[Subtitle, ...]:
    """``sub`` entries ``[text, start, end]`` (times optional) as :class:`Subtitle` in time order; empty
    lines dropped (a subtitle file's blank cues carry nothing to read)."""
    subs = []
    for entry in entries or []:
        text, *times = entry if isinstance(entry, (list, tuple)) else [entry]
        start, end = (float(times[0]), float(times[1])) if len(times) >= 2 else (None, None)
        if str(text).strip():
            subs.append(Subtitle(str(text).strip(), start, end))
    return tuple(sorted(subs, key=lambda s: -1.0 if s.start is None else s.start))


def _span(item: dict[str, Any]) -> tuple[float, float]:
    """The clip's span in its video, LAVIS's ``start_time``/``end_time`` seconds."""
    start, end = float(item["start_time"]), float(item["end_time"])
    if not 0 <= start < end:
        raise ValueError(f"clip span [{start}, {end}] is not an interval of positive length")
    return start, end


def read_violin(path: Path) -> dict[str, list[StatementRecord]]:
    """Statements per split from the original annotation (clip id -> ``file``, ``split``, ``statement`` pairs
    ``[real, fake]``, ``sub`` entries ``[text, start, end]`` kept with their times).  The release's ``file``
    is a pre-cut clip, so no window is decoded (its clip-span field is unconfirmed; LAVIS's list has one)."""
    data = _load_json(path, dict)
    out: dict[str, list[StatementRecord]] = {}
    for clip, item in data.items():
        try:
            split = _SPLITS[item["split"]]
            subtitles = _subtitles(item.get("sub"))
            for k, pair in enumerate(item["statement"]):
                real, fake = (str(s).strip() for s in pair)
                if not real or not fake:
                    raise ValueError(f"empty statement in pair {k}")
                for label, text in ((1, real), (0, fake)):
                    out.setdefault(split, []).append(
                        StatementRecord(f"{clip}-{k}-{1 - label}", str(item["file"]), text, subtitles, label))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise BadSampleError(f"{path}: clip {clip!r} is malformed ({type(exc).__name__}: {exc})") from None
    return out


_LAVIS_LABELS = {"correct": 1, "wrong": 0}


def read_violin_lavis(path: Path) -> dict[str, list[StatementRecord]]:
    """LAVIS's VIOLIN list (``[{"video_path", "start_time", "end_time", "statement", "label": "correct" |
    "wrong", "source", "instance_id"}]``), one file per split, so every record goes to the split the file is
    named for (``train``/``val``/``test`` in its name; ``train`` otherwise).  The video is keyed by the file
    stem of ``video_path`` (never opened as a path) and decoded over ``[start_time, end_time]``."""
    split = next((s for s in ("val", "test", "train") if s in path.stem.lower()), "train")
    out: list[StatementRecord] = []
    for k, item in enumerate(_load_json(path, list)):
        try:
            statement = str(item["statement"]).strip()
            if not statement:
                raise ValueError("empty statement")
            record_id = str(item.get("instance_id", k))
            out.append(StatementRecord(record_id, Path(str(item["video_path"])).stem, statement, (),
                                       _LAVIS_LABELS[item["label"]], _span(item)))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadSampleError(f"{path}: record {k} is malformed ({type(exc).__name__}: {exc})") from None
    return {split: out}


def _load_json(path: Path, kind: type) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadSampleError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, kind):
        raise BadSampleError(f"{path}: expected a JSON {kind.__name__}, got {type(data).__name__}")
    return data


#: annotation format -> reader (``format`` of :class:`InferenceDataModule`).
READERS: dict[str, Callable[[Path], dict[str, list[StatementRecord]]]] = {
    "original": read_violin, "lavis": read_violin_lavis}


class InferenceDataModule(FinstaDataModule):
    """``dataset``: ``synthetic`` or ``violin``; ``annotation``: the annotation file under ``root``."""

    task = "inference"
    text_target_keys = ("label", "index")

    def __init__(self, dataset: str = "synthetic", root: str | None = None,
                 annotation: str | list[str] = "violin/violin_annotation.json", video_dir: str = "videos",
                 format: str = "original", synthetic: WorldConfig | None = None, **kwargs: Any) -> None:
        """``format``: a name of :data:`READERS` (``lavis`` takes one file per split: ``annotation`` may list
        them).  Shared arguments (clip, loader, graphs, ...) are :class:`FinstaDataModule`'s."""
        super().__init__(**kwargs)
        if dataset not in {"synthetic", "violin"}:
            raise ValueError(f"unknown inference dataset {dataset!r}; choose synthetic or violin")
        if format not in READERS:
            raise ValueError(f"unknown VIOLIN annotation format {format!r}; choose one of {sorted(READERS)}")
        self.root = self.resolve_root(dataset, root, synthetic)
        self.video_dir = self.root / video_dir
        paths = [self.root / a for a in ([annotation] if isinstance(annotation, str) else annotation)]
        missing = next((p for p in paths if not p.is_file()), None)
        if missing is not None or not self.video_dir.is_dir():
            raise DataNotFoundError(_WHERE.format(name=dataset, root=self.root, vid=video_dir,
                                                  ann=(missing or paths[0]).relative_to(self.root)))
        records: dict[str, list[StatementRecord]] = {}
        for path in paths:
            for split, split_records in READERS[format](path).items():
                records.setdefault(split, []).extend(split_records)
        self.records = self.regroup(records)
        if "train" not in self.records:
            raise DataNotFoundError(f"{', '.join(map(str, paths))}: no training statements (split 'train')")
        self.build_vocab(f"{r.statement} {r.subtitle_text}" for r in self.records["train"])

    def data_info(self) -> DataInfo:
        """Adds chance and the majority label on validation (real and fake statements come in pairs)."""
        val = self.records.get("val", [])
        majority = max(sum(r.label for r in val), sum(1 - r.label for r in val)) / len(val) if val else 0.0
        return replace(super().data_info(), labels=("contradicted", "entailed"),
                       baselines={"chance": 0.5, "majority": majority})

    def setup(self, stage: str | None = None) -> None:
        """One sample per clip carrying all its statements (VIOLIN has six: three real/fake pairs), so the clip
        is decoded and its DSG built once; each text is a statement then the subtitles, its TSG from the
        statement, its targets the label and the statement's index (metrics count each statement once)."""
        if self.datasets:
            return
        videos = self.find_videos()
        for split, records in self.records.items():
            by_clip: dict[tuple[str, tuple[float, float] | None], list[TextSpec]] = {}
            for k, r in enumerate(records):
                by_clip.setdefault((r.video, r.span), []).append(TextSpec(f"{r.statement} {r.subtitle_text}".strip(),
                                                                          {"label": r.label, "index": k}, len(r.statement)))
            specs = [SampleSpec(_clip_id(video, span), video, texts, window=span)
                     for (video, span), texts in by_clip.items()]
            self.datasets[split] = self.make_dataset(specs, videos, train=split == "train")


def _clip_id(video: str, span: tuple[float, float] | None) -> str:
    """A clip's sample id: its video, and its span where several clips share one video file."""
    return video if span is None else f"{video}@{span[0]:g}-{span[1]:g}"
