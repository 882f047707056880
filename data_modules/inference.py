"""Video-language inference data: VIOLIN's ``violin_annotation.json`` (DATASETS.md §9), LAVIS's VIOLIN list, or
the embedded world's copy of the original.  Each statement of a clip is a text of the clip's sample: the
statement followed by the clip's subtitles in time order (the TSG is parsed from the statement only), and the
label 1 (entailed, the "real" statement of a pair) or 0 (contradicted, the "fake" one)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from finsta_pl.data_info import DataInfo
from finsta_pl.data_modules.annotation_io import load_json
from finsta_pl.data_modules.base import FinstaDataModule, SampleSpec, TextSpec
from finsta_pl.data_modules.registry import FORMATS
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.errors import BadSampleError

#: VIOLIN's split names -> ours (third-party loaders disagree on validate/val: accept both).
_SPLITS = {"train": "train", "validate": "val", "val": "val", "test": "test"}
#: ``format`` of :class:`InferenceDataModule` -> registry name.
_FORMAT_NAMES = {"original": "violin", "lavis": "violin_lavis"}


@dataclass(frozen=True)
class Subtitle:
    """One subtitle line and its ``[start, end]`` seconds (``None`` where the annotation gives no times)."""

    text: str
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class StatementRecord:
    """One statement about one clip, with the clip's subtitles and whether it is entailed.  ``video`` is the
    clip's file key; ``span`` the ``(start, end)`` seconds decoded from it (LAVIS's windows).  VIOLIN's
    release cuts its clips from source videos: ``file`` names the source video and ``window`` the clip's span
    in it, decoded when the pre-cut clip ``video`` is not on disk."""

    id: str
    video: str
    statement: str
    subtitles: tuple[Subtitle, ...]
    label: int
    span: tuple[float, float] | None = None
    file: str | None = None
    window: tuple[float, float] | None = None

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


def _seconds(value: Any) -> float:
    """Seconds from a number, a numeric string or ``[HH:]MM:SS[.ms]``."""
    if isinstance(value, str) and ":" in value:
        seconds = 0.0
        for part in value.strip().split(":"):
            seconds = 60 * seconds + float(part)
        return seconds
    return float(value)


def _interval(start: Any, end: Any, what: str) -> tuple[float, float]:
    """A ``(start, end)`` of positive length in seconds."""
    a, b = _seconds(start), _seconds(end)
    if not 0 <= a < b:
        raise ValueError(f"{what} [{a}, {b}] is not an interval of positive length")
    return a, b


def _span(item: dict[str, Any]) -> tuple[float, float]:
    """The clip's span in its video, LAVIS's ``start_time``/``end_time`` seconds."""
    return _interval(item["start_time"], item["end_time"], "clip span")


_VIOLIN_FILE = "violin_annotation.json"


@FORMATS.register("violin", kind="statement", title="VIOLIN", per_file=False,
                  files={"train": _VIOLIN_FILE, "val": _VIOLIN_FILE, "test": _VIOLIN_FILE},
                  record_id="`<clip id>-<pair>-<0 real / 1 fake>` (per statement)",
                  fields=("<clip id>", "file", "source", "span", "split", "statement", "sub"), max_text_len=128,
                  source="jimmy646/violin README: 'Subtitles and statements' (violin_annotation.json); clips cut "
                         "from the source videos by each clip's span")
def read_violin(folder: Path, files: dict[str, str] | None = None) -> dict[str, list[StatementRecord]]:
    """Statements per split from the original annotation (clip id -> ``file``, ``source``, ``span``, ``split``,
    ``statement`` pairs ``[real, fake]``, ``sub`` entries ``[text, start, end]`` kept with their times).  Per
    VIOLIN's README the clips are cut from the source videos by their ``span``: a record decodes its pre-cut
    clip ``file`` when there is one, else its ``source`` video over the span (see :class:`StatementRecord`)."""
    out: dict[str, list[StatementRecord]] = {}
    for name in dict.fromkeys((files or {"train": _VIOLIN_FILE}).values()):
        path = folder / name
        for clip, item in load_json(path, dict).items():
            try:
                split = _SPLITS[item["split"]]
                subtitles = _subtitles(item.get("sub"))
                source = str(item["source"]).strip() if item.get("source") else None
                window = _interval(*item["span"], "span") if item.get("span") is not None else None
                for k, pair in enumerate(item["statement"]):
                    real, fake = (str(s).strip() for s in pair)
                    if not real or not fake:
                        raise ValueError(f"empty statement in pair {k}")
                    for label, text in ((1, real), (0, fake)):
                        out.setdefault(split, []).append(StatementRecord(
                            f"{clip}-{k}-{1 - label}", str(item["file"]).strip(), text, subtitles, label,
                            file=source if window else None, window=window))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise BadSampleError(f"{path}: clip {clip!r} is malformed ({type(exc).__name__}: {exc})") from None
    return out


_LAVIS_LABELS = {"correct": 1, "wrong": 0}


def lavis_split(name: str) -> str:
    """The split a LAVIS VIOLIN file is for, from its name (``train`` when it names none)."""
    return next((s for s in ("val", "test", "train") if s in Path(name).stem.lower()), "train")


@FORMATS.register("violin_lavis", kind="statement", title="VIOLIN (LAVIS lists)",
                  files={"train": "violin_train.json", "val": "violin_val.json", "test": "violin_test.json"},
                  record_id="`instance_id` (per statement)",
                  fields=("video_path", "start_time", "end_time", "statement", "label", "instance_id"),
                  max_text_len=128, source="salesforce/LAVIS VIOLIN annotation lists")
def read_violin_lavis(path: Path) -> list[StatementRecord]:
    """LAVIS's VIOLIN list (``[{"video_path", "start_time", "end_time", "statement", "label": "correct" |
    "wrong", "source", "instance_id"}]``), one file per split.  The video is keyed by the file stem of
    ``video_path`` (never opened as a path) and decoded over ``[start_time, end_time]``."""
    out: list[StatementRecord] = []
    for k, item in enumerate(load_json(path, list)):
        try:
            statement = str(item["statement"]).strip()
            if not statement:
                raise ValueError("empty statement")
            record_id = str(item.get("instance_id", k))
            out.append(StatementRecord(record_id, Path(str(item["video_path"])).stem, statement, (),
                                       _LAVIS_LABELS[item["label"]], _span(item)))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadSampleError(f"{path}: record {k} is malformed ({type(exc).__name__}: {exc})") from None
    return out


class InferenceDataModule(FinstaDataModule):
    """``dataset``: ``synthetic`` or ``violin``; ``annotation``: the annotation file under ``root``."""

    task = "inference"
    text_target_keys = ("label", "index")

    def __init__(self, dataset: str = "synthetic", root: str | None = None,
                 annotation: str | list[str] = "violin/violin_annotation.json", video_dir: str = "videos",
                 format: str = "original", synthetic: WorldConfig | None = None, **kwargs: Any) -> None:
        """``format``: ``original`` (VIOLIN's release) or ``lavis`` (one file per split: ``annotation`` may
        list them, each file's split taken from its name).  Shared arguments (clip, loader, graphs, ...) are
        :class:`FinstaDataModule`'s."""
        super().__init__(**kwargs)
        if dataset not in {"synthetic", "violin"}:
            raise ValueError(f"unknown inference dataset {dataset!r}; choose synthetic or violin")
        if format not in _FORMAT_NAMES:
            raise ValueError(f"unknown VIOLIN annotation format {format!r}; choose one of {sorted(_FORMAT_NAMES)}")
        names = [annotation] if isinstance(annotation, str) else list(annotation)
        fmt = FORMATS.get(_FORMAT_NAMES[format], "statement")
        files = ({lavis_split(n): n for n in names} if format == "lavis"
                 else {split: names[0] for split in ("train", "val", "test")})
        self.locate(fmt, dataset, root, "", video_dir, synthetic, files)
        self.records = self.read_annotations()
        self.build_vocab(f"{r.statement} {r.subtitle_text}" for r in self.records["train"])

    def data_info(self) -> DataInfo:
        """Adds chance and the majority label on validation (real and fake statements come in pairs)."""
        val = self.records.get("val", [])
        majority = max(sum(r.label for r in val), sum(1 - r.label for r in val)) / len(val) if val else 0.0
        return replace(super().data_info(), labels=("contradicted", "entailed"),
                       baselines={"chance": 0.5, "majority": majority})

    def build_datasets(self) -> None:
        """One sample per clip carrying all its statements (VIOLIN has six: three real/fake pairs), so the clip
        is decoded and its DSG built once; each text is a statement then the subtitles, its TSG from the
        statement, its targets the label and the statement's index (metrics count each statement once).  A
        clip whose pre-cut file is missing is decoded from its source video over its span."""
        videos = self.find_videos()
        for split, records in self.records.items():
            by_clip: dict[tuple[str, tuple[float, float] | None], list[TextSpec]] = {}
            for k, r in enumerate(records):
                video, span = r.video, r.span
                if video not in videos and r.file is not None and r.file in videos:
                    video, span = r.file, r.window
                by_clip.setdefault((video, span), []).append(TextSpec(f"{r.statement} {r.subtitle_text}".strip(),
                                                                      {"label": r.label, "index": k}, len(r.statement)))
            specs = [SampleSpec(_clip_id(video, span), video, texts, window=span)
                     for (video, span), texts in by_clip.items()]
            self.datasets[split] = self.make_dataset(split, specs, videos)


def _clip_id(video: str, span: tuple[float, float] | None) -> str:
    """A clip's sample id: its video, and its span where several clips share one video file."""
    return video if span is None else f"{video}@{span[0]:g}-{span[1]:g}"
