"""Writing the embedded world's clips as mp4 files (the real decoder reads them back, as it reads datasets)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_mp4(path: Path, frames_bgr: np.ndarray, fps: int) -> None:
    """Write ``uint8 [T, H, W, 3]`` BGR frames as mp4v through OpenCV's FFmpeg backend (decord reads it)."""
    height, width = frames_bgr.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"synthetic world: OpenCV cannot write mp4v video {path}")
    for frame in frames_bgr:
        writer.write(frame)
    writer.release()
