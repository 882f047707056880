"""Caption and paragraph annotation formats for retrieval and captioning (DATASETS.md §1, §5, §6, §7, §10),
each registered in :data:`~finsta_pl.data_modules.registry.FORMATS` (kind ``caption``) and read into
:class:`CaptionRecord` lists per split:

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

from collections import Counter
from pathlib import Path

from finsta_pl.data_modules.activitynet import read_activitynet_paragraphs  # noqa: F401  (registers activitynet)
from finsta_pl.data_modules.annotation_io import Table, load_json, read_table
from finsta_pl.data_modules.base import read_video_list
from finsta_pl.data_modules.msrvtt_captions import SPLITS, CaptionRecord
from finsta_pl.data_modules.registry import FORMATS
from finsta_pl.errors import BadSampleError

DIDEMO_FILES = {"train": "train_data.json", "val": "val_data.json", "test": "test_data.json"}
DIDEMO_MAX_SECONDS = 30.0  # DiDeMo videos were truncated to 30 s; chunks are 5 s
LSMDC_FILES = {"train": "LSMDC16_annos_training.csv", "val": "LSMDC16_annos_val.csv",
               "test": "LSMDC16_challenge_1000_publictect.csv"}
#: LSMDC 2016's six tab-separated fields, no header (CLIP4Clip asserts six per line).
LSMDC_TABLE = Table(("clip_id", "start_aligned", "end_aligned", "start_extracted", "end_extracted", "sentence"),
                    delimiter="\t", header=False, quoted=False)
YOUCOOK2_FILE = "youcookii_annotations_trainval.json"
#: paragraphs (several sentences joined) need more tokens than one caption: most DiDeMo paragraphs are under
#: 64 words, ActivityNet's reach 200 (the host's text positions must cover it: 128 for the built-in host).
PARAGRAPH_TEXT_LEN = 128


def didemo_video_keys(key: str) -> tuple[str, ...]:
    """A DiDeMo video name with its extension, or without (files are indexed by stem; a name ending in "."
    has none)."""
    stem = key.rsplit(".", 1)[0] if "." in key else key
    return tuple(dict.fromkeys((key, stem, key.rstrip("."))))


@FORMATS.register("didemo", kind="caption", title="DiDeMo", files=DIDEMO_FILES,
                  record_id="`video` (one paragraph per video)", fields=("video", "description", "times"),
                  video_keys=didemo_video_keys, max_text_len=PARAGRAPH_TEXT_LEN,
                  source="LisaAnne/LocalizingMoments data/ (JSON); videos from the multimedia-commons AWS copy")
def read_didemo_file(path: Path) -> list[CaptionRecord]:
    """One paragraph record per video of one DiDeMo file (see the module docstring)."""
    by_video: dict[str, list[tuple[str, tuple[float, float]]]] = {}
    for k, item in enumerate(load_json(path, list)):
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
    return [CaptionRecord(video, video, " ".join(t for t, _ in parts), tuple(m for _, m in parts))
            for video, parts in by_video.items()]


def read_didemo(folder: Path) -> dict[str, list[CaptionRecord]]:
    """Every DiDeMo split file present in ``folder``."""
    return FORMATS.get("didemo", "caption").read_splits(folder, DIDEMO_FILES)


def lsmdc_seconds(value: str) -> float:
    """``HH.MM.SS.mmm`` (LSMDC's dotted times) -> seconds."""
    hours, minutes, seconds, millis = (int(p) for p in value.strip().split("."))
    return 3600 * hours + 60 * minutes + seconds + millis / 1000


@FORMATS.register("lsmdc", kind="caption", title="LSMDC", files=LSMDC_FILES,
                  record_id="`<CLIP_ID>#<line>` (clip ids repeat in train/val)", fields=("CLIP_ID", "START_ALIGNED",
                  "END_ALIGNED", "SENTENCE"), source="MPII LSMDC 2016 (on request)")
def read_lsmdc_file(path: Path) -> list[CaptionRecord]:
    """One record per line of an LSMDC 2016 file (clip ids repeat in train/val: several sentences)."""
    records = []
    for line, row in read_table(path, LSMDC_TABLE):
        clip, sentence = row["clip_id"].strip(), row["sentence"].strip()
        try:
            if not clip or not sentence:
                raise ValueError("empty clip id or sentence")
            span = (lsmdc_seconds(row["start_aligned"]), lsmdc_seconds(row["end_aligned"]))
        except ValueError as exc:
            raise BadSampleError(f"{path}:{line}: malformed LSMDC line ({exc})") from None
        records.append(CaptionRecord(f"{clip}#{line}", clip, sentence, (span,)))
    return records


def read_lsmdc(folder: Path) -> dict[str, list[CaptionRecord]]:
    """Every LSMDC split file present in ``folder``."""
    return FORMATS.get("lsmdc", "caption").read_splits(folder, LSMDC_FILES)


_YOUCOOK2_SUBSETS = {"training": "train", "validation": "val"}


@FORMATS.register("youcook2", kind="caption", title="YouCook2",
                  files={"train": YOUCOOK2_FILE, "val": YOUCOOK2_FILE, "test": YOUCOOK2_FILE}, per_file=False,
                  record_id="`<youtube id>_<segment id>` (a segment)", fields=("database", "subset", "duration",
                  "annotations[].id", "annotations[].segment", "annotations[].sentence"),
                  source="youcook2.eecs.umich.edu/download")
def read_youcook2(folder: Path, files: dict[str, str] | None = None) -> dict[str, list[CaptionRecord]]:
    """Every annotated segment of the training and validation videos; validation is also the test split."""
    path = folder / (files or {}).get("train", YOUCOOK2_FILE)
    data = load_json(path, dict)
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
#: the JSFusion test list (a ``;``-separated public copy exists, so the delimiter is sniffed).
JSFUSION_TABLE = Table(("key", "video_id", "sentence"), delimiter=None)
_1KA = dict(kind="caption", title="MSR-VTT", record_id="train: `sen_id`; val/test: `key`",
            fields=("sentences[].sen_id", "sentences[].video_id", "sentences[].caption", "video_id", "key",
                    "sentence"), per_file=False,
            source="CLIP4Clip's msrvtt_data.zip (github.com/ArrowLuo/CLIP4Clip releases)")


@FORMATS.register("msrvtt_1ka_9k", files={"train": "MSRVTT_data.json", "val": JSFUSION_TEST, "test": JSFUSION_TEST},
                  extra_files=("MSRVTT_train.9k.csv",), options={"train_list": "MSRVTT_train.9k.csv"}, **_1KA)
@FORMATS.register("msrvtt_1ka_7k", files={"train": "MSRVTT_data.json", "val": JSFUSION_TEST, "test": JSFUSION_TEST},
                  extra_files=("MSRVTT_train.7k.csv",), options={"train_list": "MSRVTT_train.7k.csv"}, **_1KA)
def read_msrvtt_1ka(folder: Path, files: dict[str, str] | None = None,
                    train_list: str = "MSRVTT_train.9k.csv") -> dict[str, list[CaptionRecord]]:
    """The 1k-A protocol from CLIP4Clip's ``msrvtt_data.zip``: training captions of the videos on ``train_list``
    (``MSRVTT_train.9k.csv`` or ``.7k.csv``) from ``MSRVTT_data.json``, and the JSFusion test's one caption per
    video as both val and test (1k-A has no separate val split)."""
    names = {"train": "MSRVTT_data.json", "val": JSFUSION_TEST, **(files or {})}
    data_path, test_path = folder / names["train"], folder / names["val"]
    out: dict[str, list[CaptionRecord]] = {}
    if data_path.is_file():
        listed = set(read_video_list(folder / train_list))
        data = load_json(data_path, dict)
        try:
            out["train"] = [CaptionRecord(str(s.get("sen_id", k)), s["video_id"], str(s["caption"]).strip())
                            for k, s in enumerate(data["sentences"]) if s["video_id"] in listed]
        except (KeyError, TypeError, AttributeError) as exc:
            raise BadSampleError(f"{data_path}: malformed sentence ({type(exc).__name__}: {exc})") from None
        if not out["train"]:
            raise BadSampleError(f"{data_path}: no caption of a video on {train_list}")
    if test_path.is_file():
        test = [CaptionRecord(row["key"].strip(), row["video_id"].strip(), row["sentence"].strip())
                for _, row in read_table(test_path, JSFUSION_TABLE)]
        out["val"] = out["test"] = test
    return out


__all__ = ["CaptionRecord", "SPLITS", "lsmdc_seconds", "read_didemo", "read_lsmdc", "read_youcook2"]
