"""MSR-VTT caption annotations, official schema (DATASETS.md §1): ``train_val_videodatainfo.json`` and
``test_videodatainfo.json`` with ``videos[]`` (``video_id``, ``split`` in train/validate/test) and
``sentences[]`` (``video_id``, ``caption``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from finsta_pl.data_modules.annotation_io import load_json
from finsta_pl.data_modules.registry import FORMATS
from finsta_pl.errors import BadSampleError, DataNotFoundError

OFFICIAL_FILES = ("train_val_videodatainfo.json", "test_videodatainfo.json")
#: raw split names of the official files -> ours (DATASETS.md §14: map them explicitly).
SPLITS = {"train": "train", "validate": "val", "val": "val", "test": "test"}


@dataclass(frozen=True)
class CaptionRecord:
    """One caption (or paragraph) of one retrieval item.  ``video`` names the item (a clip, or a whole video);
    when the item is a segment of a longer file, ``file`` names that file and ``window`` its (start, end)
    seconds.  ``segments`` are the (start, end) seconds of a paragraph's sentences, in order, where the format
    has them (ActivityNet Captions, DiDeMo, LSMDC)."""

    id: str
    video: str
    caption: str
    segments: tuple[tuple[float, float], ...] = ()
    file: str | None = None
    window: tuple[float, float] | None = None


@FORMATS.register("msrvtt", kind="caption", title="MSR-VTT", per_file=False,
                  files={"train": OFFICIAL_FILES[0], "val": OFFICIAL_FILES[0], "test": OFFICIAL_FILES[1]},
                  record_id="`sen_id` (per caption)", fields=("videos[].video_id", "videos[].split",
                  "sentences[].sen_id", "sentences[].video_id", "sentences[].caption"),
                  source="the MSR-VTT 10K release: train_val_videodatainfo.json, test_videodatainfo.json")
def read_msrvtt_official(folder: Path, files: dict[str, str] | None = None) -> dict[str, list[CaptionRecord]]:
    """Captions per split from whichever official files are in ``folder`` (at least one must be)."""
    names = dict.fromkeys((files or {}).values()) or dict.fromkeys(OFFICIAL_FILES)
    paths = [folder / name for name in names if (folder / name).is_file()]
    if not paths:
        raise DataNotFoundError(f"{folder}: none of {', '.join(names)} found (MSR-VTT official release)")
    out: dict[str, list[CaptionRecord]] = {}
    for path in paths:
        data = load_json(path, dict)
        try:
            split_of = {v["video_id"]: SPLITS[v["split"]] for v in data["videos"]}
            for k, s in enumerate(data["sentences"]):
                caption = str(s["caption"]).strip()
                if not caption:
                    raise ValueError(f"empty caption (sentence {s.get('sen_id', k)} of {s['video_id']})")
                out.setdefault(split_of[s["video_id"]], []).append(
                    CaptionRecord(str(s.get("sen_id", k)), s["video_id"], caption))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadSampleError(f"{path}: malformed MSR-VTT annotation ({type(exc).__name__}: {exc})") from None
    return out
