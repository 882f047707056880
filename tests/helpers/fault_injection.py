"""Fault injection for tests: a copy of the embedded world whose MSRVTT-QA training split (``msrvtt_qa/`` and
``videos/`` at the world's root) has about 10% of the world's videos broken in each way a cluster meets them,
plus odd captions and malformed annotation records.

    faults = inject_faults(copy_of_world, num_frames=4)

- videos: one zero-byte, one truncated (first 40% of the bytes), one with a corrupt header (first 64 bytes
  overwritten), one missing; every record of those videos is a bad sample;
- one video shorter than ``num_frames`` (2 frames): *not* bad, its frames repeat (``sample_indices``);
- captions: one empty (a malformed record: bad), one very long (5000 characters), two non-English (good);
- malformed records: one without ``video_id``, one that is not an object (bad, named ``train_qa.json:<k>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Faults:
    """What was broken: the ids that must be reported as bad (with the path or file:record each names), the
    ids that must train although odd, and the short video's key."""

    bad: dict[str, str] = field(default_factory=dict)  # sample id -> path or file:record in its reason
    odd_but_good: list[str] = field(default_factory=list)
    short_video: str = ""


def inject_faults(root: Path, num_frames: int) -> Faults:
    """Break ``root`` (a writable copy of the world) in place as described above; returns what to expect."""
    from finsta_pl.data_modules.synthetic.video_file import write_mp4

    ann = root / "msrvtt_qa" / "train_qa.json"
    records = json.loads(ann.read_text())
    by_video: dict[int, list[dict]] = {}
    for r in records:
        by_video.setdefault(r["video_id"], []).append(r)
    videos = sorted(by_video)
    zero, truncated, header, missing, short = videos[:5]
    faults = Faults(short_video=f"video{short}")
    for vid in (zero, truncated, header, missing):
        path = root / "videos" / f"video{vid}.mp4"
        data = path.read_bytes()
        if vid == zero:
            path.write_bytes(b"")
        elif vid == truncated:
            path.write_bytes(data[: int(len(data) * 0.4)])
        elif vid == header:
            path.write_bytes(b"\xde\xad\xbe\xef" * 16 + data[64:])
        else:
            path.unlink()
        faults.bad.update({str(r["id"]): f"video{vid}" for r in by_video[vid]})
    frames = np.full((2, 64, 64, 3), 80, np.uint8)
    frames[1, 20:40, 20:40] = 220
    write_mp4(root / "videos" / f"video{short}.mp4", frames, fps=10)
    faults.odd_but_good += [str(r["id"]) for r in by_video[short]]

    good = [r for r in records if r["video_id"] not in (zero, truncated, header, missing, short)]
    long_q, zh, es = good[0], good[1], good[2]
    long_q["question"] = ("what does the red circle do " * 200)[:5000]
    zh["question"] = "红色的圆圈往哪个方向移动？"
    es["question"] = "¿hacia dónde se mueve el círculo rojo?"
    faults.odd_but_good += [str(long_q["id"]), str(zh["id"]), str(es["id"])]
    empty = good[3]
    empty["question"] = ""
    no_video = dict(good[4])
    del no_video["video_id"]
    records = [r for r in records if r is not good[4]]
    records += [no_video, "garbage line, not a record"]  # type: ignore[list-item]
    for k, r in enumerate(records):
        if r is empty or r is no_video or isinstance(r, str):
            faults.bad[f"train_qa.json:{k}"] = f"train_qa.json: record {k} is malformed"
    ann.write_text(json.dumps(records, ensure_ascii=False))
    return faults
