"""Training-free object detectors for dynamic scene graphs, behind one protocol.

``motion``: colour-segmented connected components of the foreground, where the foreground is what differs
from the frame's border colour (static objects on a plain background) or from the clip's temporal median
(moving objects on a textured background).  Segmenting per colour bin keeps two touching objects of different
colours apart.  ``grid``: fixed regions, the fallback that always yields nodes.
Frames are RGB ``uint8`` arrays ``[T, H, W, 3]`` as decord returns them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

#: OpenCV hue (0-180) upper bounds of the named chromatic colours, in order.
_HUE_NAMES: tuple[tuple[int, str], ...] = (
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
    """Anything that turns a clip into per-frame detections."""

    def __call__(self, frames: np.ndarray) -> list[list[Detection]]:
        """Detections for each frame of ``frames`` (``[T, H, W, 3]`` RGB uint8)."""
        ...


def color_name(rgb: np.ndarray | tuple[float, float, float]) -> str:
    """The basic colour name of an RGB value (hue bins for saturated colours, value for grays)."""
    pixel = np.asarray(rgb, dtype=np.uint8).reshape(1, 1, 3)
    h, s, v = (int(x) for x in cv2.cvtColor(pixel, cv2.COLOR_RGB2HSV)[0, 0])
    if s < 60:
        return "black" if v < 50 else ("white" if v > 200 else "gray")
    return next(name for bound, name in _HUE_NAMES if h < bound)


def _shape_of(mask: np.ndarray) -> str:
    """Shape of a blob from its box: squares fill their corners, upright triangles are thin at the top,
    circles are neither (fill ratios: square ~1, circle ~pi/4, triangle ~1/2, blurred by the codec)."""
    h, w = mask.shape
    if h < 4 or w < 4:
        return "object"
    k = max(1, min(h, w) // 5)
    corners = np.mean([mask[:k, :k].mean(), mask[:k, -k:].mean(), mask[-k:, :k].mean(), mask[-k:, -k:].mean()])
    quarter = max(1, h // 4)
    top_to_bottom = mask[:quarter].mean() / max(mask[-quarter:].mean(), 1e-6)
    fill = float(mask.mean())
    if corners >= 0.6 and fill >= 0.8:
        return "square"
    if top_to_bottom < 0.6 and fill < 0.76:
        return "triangle"
    if corners >= 0.6:
        return "square"
    return "circle" if fill >= 0.55 else "object"


def _solid_components(mask: np.ndarray, min_pixels: float) -> list[np.ndarray]:
    """Connected components of ``mask`` with ``min_pixels`` that survive a 3x3 opening, taken unopened.

    The opening drops codec fringes and specks; the unopened component keeps thin parts (a triangle's apex).
    """
    raw = mask.astype(np.uint8)
    opened = cv2.morphologyEx(raw, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(raw, connectivity=8)
    solid = [c for c in np.unique(labels[opened > 0]) if c > 0 and stats[c, cv2.CC_STAT_AREA] >= min_pixels]
    return [labels == c for c in solid]


@dataclass
class MotionDetector:
    """Colour-segmented foreground components (see module docstring); all thresholds are in config."""

    min_area: float = 0.004  # fraction of the frame
    max_objects: int = 6
    diff_threshold: int = 40
    size_threshold: float = 0.2  # sqrt(box area) / frame side above which an object is "large"
    shape_labels: bool = True

    def __call__(self, frames: np.ndarray) -> list[list[Detection]]:
        """Detect per frame; the temporal median is taken over the frames given (the clip's keyframes)."""
        frames = np.ascontiguousarray(frames)
        t, h, w, _ = frames.shape
        median = np.median(frames, axis=0).astype(np.int16) if t >= 3 else None
        hsv = cv2.cvtColor(frames.reshape(t * h, w, 3), cv2.COLOR_RGB2HSV).reshape(t, h, w, 3)
        border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
        background = np.median(border, axis=1).astype(np.int16)  # [T, 3]
        fg = np.abs(frames.astype(np.int16) - background[:, None, None]).max(-1) > self.diff_threshold
        # On a plain background the border colour says it all, and the temporal median would only add ghosts
        # (where a moving object was at the median time).  On a textured one the median separates movers.
        plain = (np.abs(border.astype(np.int16) - background[:, None]).max(-1) <= self.diff_threshold).mean(1) > 0.8
        if median is not None and not bool(plain.all()):
            moving = np.abs(frames.astype(np.int16) - median).max(-1) > self.diff_threshold
            fg = np.where(plain[:, None, None], fg, moving)
        # Colour bin per pixel: 0-7 chromatic bins (red wraps), 8 for gray-ish pixels.
        hue_bin = np.searchsorted(np.array([b for b, _ in _HUE_NAMES]), hsv[..., 0], side="right")
        hue_bin = np.where(hue_bin == len(_HUE_NAMES) - 1, 0, hue_bin)
        hue_bin = np.where(hsv[..., 1] < 60, 8, hue_bin)
        min_pixels = self.min_area * h * w
        out: list[list[Detection]] = []
        for k in range(t):
            dets: list[Detection] = []
            # Objects are foreground components at full resolution, split by colour only where one holds
            # several solid colours (touching objects): colour alone is blocky, as codecs keep it at half
            # resolution, which eats the corners and apexes of small shapes.
            for comp in _solid_components(fg[k], min_pixels):
                colours = np.unique(hue_bin[k][comp])
                by_colour = [_solid_components(comp & (hue_bin[k] == b), min_pixels) for b in colours]
                parts = [p for ps in by_colour for p in ps] if sum(map(bool, by_colour)) > 1 else [comp]
                for part in parts:
                    ys, xs = np.nonzero(part)
                    x, y, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
                    blob = part[y:y2, x:x2]
                    mean = frames[k, y:y2, x:x2][blob].mean(0)
                    name = color_name(mean)
                    size = "large" if np.sqrt((x2 - x) * (y2 - y)) / max(h, w) > self.size_threshold else "small"
                    label = _shape_of(blob) if self.shape_labels else "object"
                    dets.append(Detection((float(x), float(y), float(x2), float(y2)), label, float(blob.mean()),
                                          name, tuple(mean.tolist()), [name, size]))
            dets.sort(key=lambda d: -d.area)
            out.append(dets[: self.max_objects])
        return out


@dataclass
class GridDetector:
    """``grid x grid`` fixed regions per frame, labelled by their dominant colour; never empty."""

    grid: int = 2

    def __call__(self, frames: np.ndarray) -> list[list[Detection]]:
        """One detection per cell per frame."""
        t, h, w, _ = frames.shape
        ys = np.linspace(0, h, self.grid + 1).astype(int)
        xs = np.linspace(0, w, self.grid + 1).astype(int)
        out = []
        for k in range(t):
            dets = []
            for i in range(self.grid):
                for j in range(self.grid):
                    mean = frames[k, ys[i] : ys[i + 1], xs[j] : xs[j + 1]].reshape(-1, 3).mean(0)
                    name = color_name(mean)
                    dets.append(Detection((float(xs[j]), float(ys[i]), float(xs[j + 1]), float(ys[i + 1])),
                                          "region", 1.0, name, tuple(mean.tolist()), [name]))
            out.append(dets)
        return out


def _torchvision(**kwargs: object) -> Detector:
    # Imported on use: the module needs torch (and builds torchvision models) where the frame detectors need neither.
    from finsta_pl.graphs.torchvision_detector import TorchvisionDetector

    return TorchvisionDetector(**kwargs)  # type: ignore[arg-type]


#: detector name -> constructor (``torchvision``: graphs/torchvision_detector.py).
DETECTORS = {"motion": MotionDetector, "grid": GridDetector, "torchvision": _torchvision}


def make_detector(name: str, **kwargs: object) -> Detector:
    """The detector called ``name`` (a key of :data:`DETECTORS`), built with ``kwargs``."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {sorted(DETECTORS)}")
    return DETECTORS[name](**kwargs)  # type: ignore[operator]
