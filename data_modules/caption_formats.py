"""Caption and paragraph annotation formats for retrieval and captioning (DATASETS.md §1, §5, §6, §7, §10),
each read into :class:`CaptionRecord` lists per split:

- ``msrvtt``: the official ``train_val_videodatainfo.json`` / ``test_videodatainfo.json`` (full split).
- ``msrvtt_1ka_9k`` / ``msrvtt_1ka_7k``: the 1k-A retrieval protocol from CLIP4Clip's zip (``MSRVTT_data.json``,
  the 9k or 7k training list, ``MSRVTT_JSFUSION_test.csv`` with one caption per test video).
- ``activitynet``: ActivityNet Captions paragraphs (``activitynet.py``).
- ``didemo``: ``{train,val,test}_data.json``; a video's descriptions joined (JSON order) into one paragraph
  that retrieves the whole video; each description's moment (the annotators' most common 5-second chunk
  span, in seconds, ``[5 s, 5 (e + 1)]`` clipped at 30 s) kept as a segment.  Video names carry their
  original extension (``.mov``, ``.m4v``, ...); files are found by name or by stem.
- ``lsmdc``: ``LSMDC16_annos_training.csv``, ``LSMDC16_annos_val.csv``, ``LSMDC16_challenge_1000_publictect.csv``:
  tab-separated, no header, no quoting, six fields; the dotted times (``00.05.41.120``) become seconds.
- ``youcook2``: ``youcookii_annotations_trainval.json``; every annotated segment is a retrieval item
  ``<youtube id>_<segment id>`` (VALUE's clip names): a pre-cut clip file of that name when there is one, else
  the full video decoded over the segment's window.  Validation serves as test (test captions are hidden).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from finsta_pl.data_modules.activitynet import activitynet_video_keys, read_activitynet_paragraphs
from finsta_pl.data_modules.base import read_video_list
from finsta_pl.data_modules.msrvtt_captions import OFFICIAL_FILES, SPLITS, CaptionRecord, read_msrvtt_official
from finsta_pl.errors import BadSampleError, DataNotFoundError

DIDEMO_FILES = {"train": "train_data.json", "val": "val_data.json", "test": "test_data.json"}
DIDEMO_MAX_SECONDS = 30.0  # DiDeMo videos were truncated to 30 s; chunks are 5 s
LSMDC_FILES = {"train": "LSMDC16_annos_training.csv", "val": "LSMDC16_annos_val.csv",
               "test": "LSMDC16_challenge_1000_publictect.csv"}
YOUCOOK2_FILE = "youcookii_annotations_trainval.json"


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadSampleError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def _require(folder: Path, name: str, what: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise DataNotFoundError(f"{path} not found ({what})")
    return path


def read_didemo(folder: Path) -> dict[str, list[CaptionRecord]]:
    """One paragraph record per video and split (see the module docstring)."""
    _require(folder, DIDEMO_FILES["train"], "DiDeMo: LisaAnne/LocalizingMoments data/train_data.json")
    out: dict[str, list[CaptionRecord]] = {}
    for split, name in DIDEMO_FILES.items():
        path = folder / name
        if not path.is_file():
            continue
        by_video: dict[str, list[tuple[str, tuple[float, float]]]] = {}
        for k, item in enumerate(_load_json(path)):
            try:
                text = str(item["description"]).strip()
                spans = [(int(s), int(e)) for s, e in item["times"]]
                if not spans or any(e < s for s, e in spans):
                    raise ValueError(f"times {item['times']!r}")
                start, end = Counter(spans).most_common(1)[0][0]  # ties: the first annotator's span
                moment = (5.0 * start, min(5.0 * (end + 1), DIDEMO_MAX_SECONDS))
                if text:
                    by_video.setdefault(str(item["video"]), []).append((text, moment))
            except (KeyError, TypeError, ValueError) as exc:
                raise BadSampleError(f"{path}: record {k} is malformed ({type(exc).__name__}: {exc})") from None
        out[split] = [CaptionRecord(video, video, " ".join(t for t, _ in parts), tuple(m for _, m in parts))
                      for video, parts in by_video.items()]
    return out


def didemo_video_keys(key: str) -> tuple[str, ...]:
    """A DiDeMo video name with its extension, or without (files are indexed by stem)."""
    stem = key.rsplit(".", 1)[0] if "." in key else key
    return (key, stem)


def lsmdc_seconds(value: str) -> float:
    """``HH.MM.SS.mmm`` (LSMDC's dotted times) -> seconds."""
    hours, minutes, seconds, millis = (int(p) for p in value.strip().split("."))
    return 3600 * hours + 60 * minutes + seconds + millis / 1000


def read_lsmdc(folder: Path) -> dict[str, list[CaptionRecord]]:
    """One record per line of each LSMDC 2016 file (clip ids repeat in train/val: several sentences)."""
    _require(folder, LSMDC_FILES["train"], "LSMDC 2016: LSMDC16_annos_training.csv, access on request from MPII")
    out: dict[str, list[CaptionRecord]] = {}
    for split, name in LSMDC_FILES.items():
        path = folder / name
        if not path.is_file():
            continue
        records = []
        with open(path, newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
                if not row:
                    continue
                try:
                    if len(row) != 6:
                        raise ValueError(f"{len(row)} fields instead of 6")
                    clip, sentence = row[0].strip(), row[5].strip()
                    if not clip or not sentence:
                        raise ValueError("empty clip id or sentence")
                    span = (lsmdc_seconds(row[1]), lsmdc_seconds(row[2]))
                except ValueError as exc:
                    raise BadSampleError(f"{path}:{line}: malformed LSMDC line ({exc})") from None
                records.append(CaptionRecord(f"{clip}#{line}", clip, sentence, (span,)))
        out[split] = records
    return out


_YOUCOOK2_SUBSETS = {"training": "train", "validation": "val"}


def read_youcook2(folder: Path) -> dict[str, list[CaptionRecord]]:
    """Every annotated segment of the training and validation videos; validation is also the test split."""
    path = _require(folder, YOUCOOK2_FILE, "YouCook2: youcook2.eecs.umich.edu/download")
    data = _load_json(path)
    out: dict[str, list[CaptionRecord]] = {}
    for video, entry in (data.get("database") or {}).items():
        try:
            split = _YOUCOOK2_SUBSETS.get(entry["subset"])
            if split is None:
                continue  # "testing": its sentences are hidden
            duration = float(entry.get("duration") or 0) or None
            for ann in entry["annotations"]:
                start, end = (float(t) for t in ann["segment"])
                end = min(end, duration) if duration else end
                sentence = str(ann["sentence"]).strip()
                if end <= start or not sentence:
                    raise ValueError(f"segment {ann['segment']} / sentence {sentence!r}")
                clip = f"{video}_{ann['id']}"
                out.setdefault(split, []).append(CaptionRecord(clip, clip, sentence, ((start, end),), video, (start, end)))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadSampleError(f"{path}: video {video!r} is malformed ({type(exc).__name__}: {exc})") from None
    if "val" in out:
        out["test"] = out["val"]
    return out


JSFUSION_TEST = "MSRVTT_JSFUSION_test.csv"


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8-sig")
    delimiter = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t").delimiter  # a ";" copy exists
    return list(csv.DictReader(text.splitlines(), delimiter=delimiter))


def read_msrvtt_1ka(folder: Path, train_list: str) -> dict[str, list[CaptionRecord]]:
    """The 1k-A protocol from CLIP4Clip's ``msrvtt_data.zip``: training captions of the videos on ``train_list``
    (``MSRVTT_train.9k.csv`` or ``.7k.csv``) from ``MSRVTT_data.json``, and the JSFusion test's one caption per
    video as both val and test (1k-A has no separate val split)."""
    data_path = _require(folder, "MSRVTT_data.json", "MSR-VTT: CLIP4Clip's msrvtt_data.zip")
    listed = set(read_video_list(_require(folder, train_list, "MSR-VTT 1k-A training list")))
    data = _load_json(data_path)
    try:
        train = [CaptionRecord(str(s.get("sen_id", k)), s["video_id"], str(s["caption"]).strip())
                 for k, s in enumerate(data["sentences"]) if s["video_id"] in listed]
    except (KeyError, TypeError) as exc:
        raise BadSampleError(f"{data_path}: malformed sentence ({type(exc).__name__}: {exc})") from None
    test_path = _require(folder, JSFUSION_TEST, "MSR-VTT 1k-A test list")
    test = []
    for line, row in enumerate(_read_csv_rows(test_path), start=2):
        try:
            test.append(CaptionRecord(row["key"].strip(), row["video_id"].strip(), row["sentence"].strip()))
        except (KeyError, AttributeError) as exc:
            raise BadSampleError(f"{test_path}:{line}: malformed row ({type(exc).__name__}: {exc})") from None
    if not train:
        raise BadSampleError(f"{data_path}: no caption of a video on {train_list}")
    return {"train": train, "val": test, "test": test}


@dataclass(frozen=True)
class CaptionFormat:
    """An annotation format: its reader (folder -> records per split), the files it reads (for messages) and
    the file stems a record's file key may have on disk."""

    read: Callable[[Path], dict[str, list[CaptionRecord]]]
    files: str
    video_keys: Callable[[str], tuple[str, ...]] = lambda key: (key,)


#: format name -> reader.  ``dataset: synthetic`` writes ``msrvtt`` and ``activitynet`` (``annotation_dir``
#: picks the copy).
FORMATS: dict[str, CaptionFormat] = {
    "msrvtt": CaptionFormat(read_msrvtt_official, ", ".join(OFFICIAL_FILES)),
    "msrvtt_1ka_9k": CaptionFormat(lambda folder: read_msrvtt_1ka(folder, "MSRVTT_train.9k.csv"),
                                   f"MSRVTT_data.json, MSRVTT_train.9k.csv, {JSFUSION_TEST}"),
    "msrvtt_1ka_7k": CaptionFormat(lambda folder: read_msrvtt_1ka(folder, "MSRVTT_train.7k.csv"),
                                   f"MSRVTT_data.json, MSRVTT_train.7k.csv, {JSFUSION_TEST}"),
    "activitynet": CaptionFormat(read_activitynet_paragraphs, "train.json, val_1.json (val_2.json optional)",
                                 activitynet_video_keys),
    "didemo": CaptionFormat(read_didemo, ", ".join(DIDEMO_FILES.values()), didemo_video_keys),
    "lsmdc": CaptionFormat(read_lsmdc, ", ".join(LSMDC_FILES.values())),
    "youcook2": CaptionFormat(read_youcook2, YOUCOOK2_FILE),
}

__all__ = ["CaptionFormat", "CaptionRecord", "FORMATS", "SPLITS", "lsmdc_seconds", "read_didemo", "read_lsmdc",
           "read_youcook2"]
