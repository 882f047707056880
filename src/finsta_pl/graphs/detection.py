"""What every detector gives, and the words it uses: the :class:`Detection` record, the :class:`Detector`
protocol, and basic colour names.  Below the detectors (``graphs/detect.py``, ``graphs/torchvision_detector.py``)
and the DSG builder, which all read these and nothing of each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

#: OpenCV hue (0-180) upper bounds of the named chromatic colours, in order.
HUE_NAMES: tuple[tuple[int, str], ...] = (
    (9, "red"), (22, "orange"), (35, "yellow"), (85, "green"), (100, "cyan"), (130, "blue"),
    (150, "purple"), (170, "pink"), (181, "red"),
)


@dataclass
class Detection:
    """One detected object in one frame: pixel box ``x1, y1, x2, y2`` (exclusive end), label and cues."""

    box: tuple[float, float, float, float]
    label: str
    score: float
    color: str
    mean_rgb: tuple[float, float, float]
    attributes: list[str] = field(default_factory=list)

    @property
    def center(self) -> tuple[float, float]:
        """Box centre in pixels."""
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    @property
    def area(self) -> float:
        """Box area in pixels."""
        return max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0)


class Detector(Protocol):
    """Anything that turns a clip into per-frame detections.

    A detector may also define ``frame_local(frames) -> bool [T]``: which frames' detections depend on that
    frame alone, so they can be cached per source frame (``graphs.cache.DetectionCache``); see
    :func:`frame_local`.
    """

    def __call__(self, frames: np.ndarray) -> list[list[Detection]]:
        """Detections for each frame of ``frames`` (``[T, H, W, 3]`` RGB uint8)."""
        ...


def frame_local(detector: Detector, frames: np.ndarray) -> np.ndarray:
    """``bool [T]``: the frames whose detections ``detector`` makes from that frame alone; none for a detector
    that does not say (it may look across the clip)."""
    fn = getattr(detector, "frame_local", None)
    return np.asarray(fn(frames), dtype=bool) if fn is not None else np.zeros(len(frames), dtype=bool)


def color_name(rgb: np.ndarray | tuple[float, float, float]) -> str:
    """The basic colour name of an RGB value (hue bins for saturated colours, value for grays)."""
    pixel = np.asarray(rgb, dtype=np.uint8).reshape(1, 1, 3)
    return hsv_name(*(int(x) for x in cv2.cvtColor(pixel, cv2.COLOR_RGB2HSV)[0, 0]))


def color_names(rgb: np.ndarray) -> list[str]:
    """:func:`color_name` of every row of ``rgb [n, 3]`` with one colour conversion."""
    pixels = np.asarray(rgb, dtype=np.float64).astype(np.uint8).reshape(-1, 1, 3)
    hsv = cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(int)
    return [hsv_name(*row) for row in hsv]


def hsv_name(h: int, s: int, v: int) -> str:
    """The colour name of an OpenCV HSV value (see :func:`color_name`)."""
    if s < 60:
        return "black" if v < 50 else ("white" if v > 200 else "gray")
    return next(name for bound, name in HUE_NAMES if h < bound)
