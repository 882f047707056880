"""ActivityNet Captions for paragraph-to-video retrieval (DATASETS.md §7), or the embedded world's copy.

``{"v_<id>": {"duration": s, "timestamps": [[s, e], ...], "sentences": [...]}}`` per split file.  The
protocol (ClipBERT, CLIP4Clip): a video's sentences, stripped and joined in file order, are one paragraph
that retrieves the whole video; train on ``train.json``, evaluate on ``val_1.json``.  Sentence times are kept
(``CaptionRecord.segments``), clipped to ``[0, duration]``.
"""

from __future__ import annotations

import json
from pathlib import Path

from finsta_pl.data_modules.msrvtt_captions import CaptionRecord
from finsta_pl.errors import BadSampleError, DataNotFoundError

#: our split -> the file of the release that holds it (``val_2.json`` re-captions a subset of val_1's videos).
FILES = {"train": "train.json", "val": "val_1.json", "test": "val_2.json"}


def read_activitynet_paragraphs(folder: Path, files: dict[str, str] | None = None) -> dict[str, list[CaptionRecord]]:
    """One paragraph record per video and split from whichever of ``files`` are in ``folder``."""
    names = {**FILES, **(files or {})}
    present = {split: folder / name for split, name in names.items() if (folder / name).is_file()}
    if "train" not in present:
        raise DataNotFoundError(f"{folder}: {names['train']} not found (ActivityNet Captions: captions.zip from "
                                "cs.stanford.edu/people/ranjaykrishna/densevid holds train.json, val_1.json, val_2.json)")
    out: dict[str, list[CaptionRecord]] = {}
    for split, path in present.items():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BadSampleError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        records = []
        for key, entry in data.items():
            try:
                sentences = [str(s).strip() for s in entry["sentences"]]
                duration = float(entry["duration"])
                times = [(max(0.0, float(a)), min(duration, float(b))) for a, b in entry["timestamps"]]
                if len(times) != len(sentences):
                    raise ValueError(f"{len(sentences)} sentences but {len(times)} timestamps")
                kept = [(s, t) for s, t in zip(sentences, times) if s]
                if not kept:
                    raise ValueError("no non-empty sentence")
            except (KeyError, TypeError, ValueError) as exc:
                raise BadSampleError(f"{path}: malformed entry {key!r} ({type(exc).__name__}: {exc})") from None
            records.append(CaptionRecord(key, key, " ".join(s for s, _ in kept), tuple(t for _, t in kept)))
        out[split] = records
    return out


def activitynet_video_keys(key: str) -> tuple[str, ...]:
    """File stems a video key may have on disk: ``v_<id>`` as in the JSON, or ``<id>`` (CLIP4Clip's layout)."""
    return (key, key[2:]) if key.startswith("v_") else (key,)
