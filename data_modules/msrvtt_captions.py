"""MSR-VTT caption annotations, official schema (DATASETS.md §1): ``train_val_videodatainfo.json`` and
``test_videodatainfo.json`` with ``videos[]`` (``video_id``, ``split`` in train/validate/test) and
``sentences[]`` (``video_id``, ``caption``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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


def read_msrvtt_official(folder: Path) -> dict[str, list[CaptionRecord]]:
    """Captions per split from whichever official files are in ``folder`` (at least one must be)."""
    files = [folder / name for name in OFFICIAL_FILES if (folder / name).is_file()]
    if not files:
        raise DataNotFoundError(f"{folder}: none of {', '.join(OFFICIAL_FILES)} found (MSR-VTT official release)")
    out: dict[str, list[CaptionRecord]] = {}
    for path in files:
        try:
            data = json.loads(path.read_text())
            split_of = {v["video_id"]: SPLITS[v["split"]] for v in data["videos"]}
            for k, s in enumerate(data["sentences"]):
                caption = str(s["caption"]).strip()
                if not caption:
                    raise ValueError(f"empty caption (sentence {s.get('sen_id', k)} of {s['video_id']})")
                out.setdefault(split_of[s["video_id"]], []).append(
                    CaptionRecord(str(s.get("sen_id", k)), s["video_id"], caption))
        except json.JSONDecodeError as exc:
            raise BadSampleError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise BadSampleError(f"{path}: malformed MSR-VTT annotation ({type(exc).__name__}: {exc})") from None
    return out
