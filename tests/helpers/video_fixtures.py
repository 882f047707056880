"""Short generated clips for reader tests (no downloads): a grey ramp whose pixel value tells the source frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FPS = 10


def write_ramp(path: Path, frames: int = 40, fourcc: str = "mp4v") -> None:
    """A 32x32 clip at :data:`FPS` whose frame ``i`` is uniformly ``6 * i`` grey (mp4v, or e.g. ``VP80`` webm)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (32, 32))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} with {fourcc}")
    for i in range(frames):
        writer.write(np.full((32, 32, 3), 6 * i, np.uint8))
    writer.release()
