"""ActivityNet Captions for paragraph-to-video retrieval (DATASETS.md §7), or the embedded world's copy.

``{"v_<id>": {"duration": s, "timestamps": [[s, e], ...], "sentences": [...]}}`` per split file.  The
protocol (ClipBERT, CLIP4Clip): a video's sentences, stripped and joined in file order, are one paragraph
that retrieves the whole video; train on ``train.json``, evaluate on ``val_1.json``.  Sentence times are kept
(``CaptionRecord.segments``), clipped to ``[0, duration]``.
"""

from __future__ import annotations

from pathlib import Path

from finsta_pl.data_modules.annotation_io import load_json
from finsta_pl.data_modules.msrvtt_captions import CaptionRecord
from finsta_pl.data_modules.registry import FORMATS
from finsta_pl.errors import BadSampleError, DataNotFoundError

#: our split -> the file of the release that holds it (``val_2.json`` re-captions a subset of val_1's videos).
FILES = {"train": "train.json", "val": "val_1.json", "test": "val_2.json"}


def activitynet_video_keys(key: str) -> tuple[str, ...]:
    """File stems a video key may have on disk: ``v_<id>`` as in the JSON, or ``<id>`` (CLIP4Clip's layout)."""
    return (key, key[2:]) if key.startswith("v_") else (key,)


@FORMATS.register("activitynet", kind="caption", title="ActivityNet Captions", files=FILES,
                  record_id="the `v_<id>` key (one paragraph per video)", fields=("<key>", "duration", "timestamps",
                  "sentences"), video_keys=activitynet_video_keys, max_text_len=128,
                  source="captions.zip from cs.stanford.edu/people/ranjaykrishna/densevid")
def read_activitynet_file(path: Path) -> list[CaptionRecord]:
    """One paragraph record per video of one ActivityNet Captions file."""
    records = []
    for key, entry in load_json(path, dict).items():
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
    return records


def read_activitynet_paragraphs(folder: Path, files: dict[str, str] | None = None) -> dict[str, list[CaptionRecord]]:
    """One paragraph record per video and split from whichever of ``files`` are in ``folder`` (``train.json``
    must be)."""
    names = {**FILES, **(files or {})}
    if not (folder / names["train"]).is_file():
        raise DataNotFoundError(f"{folder}: {names['train']} not found (ActivityNet Captions: captions.zip from "
                                "cs.stanford.edu/people/ranjaykrishna/densevid holds train.json, val_1.json, val_2.json)")
    return FORMATS.get("activitynet", "caption").read_splits(folder, names)
