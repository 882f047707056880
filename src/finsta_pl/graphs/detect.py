"""Training-free object detectors for dynamic scene graphs, behind one protocol.

``motion``: colour-segmented connected components of the foreground, where the foreground is what differs
from the frame's border colour (static objects on a plain background) or from the clip's temporal median
(moving objects on a textured background).  Segmenting per colour bin keeps two touching objects of different
colours apart.  ``grid``: fixed regions, the fallback that always yields nodes.
Frames are RGB ``uint8`` arrays ``[T, H, W, 3]`` as decord returns them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Detection, Detector, frame_local and color_name live one layer down (graphs/detection.py), shared with the
# torchvision detector; they are named here too for the callers that build detectors.
from finsta_pl.graphs.detection import HUE_NAMES, Detection, Detector, color_name, color_names, frame_local

__all__ = ["DETECTORS", "Detection", "Detector", "GridDetector", "MotionDetector", "color_name", "frame_local",
           "make_detector"]


def _shape_of(mask: np.ndarray) -> str:
    """Shape of a blob from its box: squares fill their corners, upright triangles are thin at the top,
    circles are neither (fill ratios: square ~1, circle ~pi/4, triangle ~1/2, blurred by the codec).
    Fill ratios are pixel counts over areas (``count_nonzero``: a blob is described in microseconds)."""
    h, w = mask.shape
    if h < 4 or w < 4:
        return "object"
    k = max(1, min(h, w) // 5)
    on = np.count_nonzero
    corners = (on(mask[:k, :k]) + on(mask[:k, -k:]) + on(mask[-k:, :k]) + on(mask[-k:, -k:])) / (4 * k * k)
    quarter = max(1, h // 4)
    top_to_bottom = (on(mask[:quarter]) / (quarter * w)) / max(on(mask[-quarter:]) / (quarter * w), 1e-6)
    fill = on(mask) / (h * w)
    if corners >= 0.6 and fill >= 0.8:
        return "square"
    if top_to_bottom < 0.6 and fill < 0.76:
        return "triangle"
    if corners >= 0.6:
        return "square"
    return "circle" if fill >= 0.55 else "object"


#: OpenCV hue (0-255 lookup) -> colour bin of ``HUE_NAMES`` (red's two ends are bin 0).
_HUE_BIN_LUT = np.searchsorted(np.array([b for b, _ in HUE_NAMES]), np.arange(256), side="right")
_HUE_BIN_LUT = np.where(_HUE_BIN_LUT == len(HUE_NAMES) - 1, 0, _HUE_BIN_LUT).astype(np.uint8)


def _channel_max_absdiff(frames: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``max_c |frames - other|`` as ``uint8 [T, H, W]`` (``other`` broadcasts to ``frames``), with OpenCV's
    saturating kernels instead of int16 temporaries (several times faster on a clip)."""
    t, h, w, _ = frames.shape
    other = np.ascontiguousarray(np.broadcast_to(np.clip(other, 0, 255).astype(np.uint8), frames.shape))
    d = cv2.absdiff(frames.reshape(t * h, w, 3), other.reshape(t * h, w, 3))
    r, g, b = cv2.split(d)
    return cv2.max(cv2.max(r, g), b).reshape(t, h, w)


def _stride(h: int) -> int:
    """Rows per frame in a :func:`_stacked` image: the frame and one or two zero rows, always an even number.
    OpenCV labels 8-connected components in 2x2 blocks and numbers them in the order of their first block, so
    a frame must start on an even row for its components to be numbered as in a pass over that frame alone."""
    return h + 2 if h % 2 == 0 else h + 1


def _stacked(masks: np.ndarray) -> np.ndarray:
    """``[T, H, W]`` masks as one ``uint8 [T * stride, W]`` image, each frame followed by zero rows (see
    :func:`_stride`), so one OpenCV call labels every frame (a zero row keeps 8-connected components of two
    frames apart)."""
    t, h, w = masks.shape
    out = np.zeros((t, _stride(h), w), np.uint8)
    out[:, :h] = masks
    return out.reshape(t * _stride(h), w)


def _opened(stacked: np.ndarray, h: int) -> np.ndarray:
    """The 3x3 opening of every frame of a :func:`_stacked` image, as each frame alone would have it: the
    separator rows count as foreground while eroding (OpenCV's border never erodes) and as background while
    dilating (its border never dilates)."""
    kernel = np.ones((3, 3), np.uint8)
    rows = stacked.reshape(-1, _stride(h), stacked.shape[1])
    padded = rows.copy()
    padded[:, h:] = 1
    eroded = cv2.erode(padded.reshape(stacked.shape), kernel).reshape(rows.shape)
    eroded[:, h:] = 0
    return cv2.dilate(eroded.reshape(stacked.shape), kernel)


def _solid_labels(stacked: np.ndarray, h: int, min_pixels: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected components of a :func:`_stacked` mask that have ``min_pixels`` and survive a 3x3 opening
    (which drops codec fringes and specks), taken unopened (which keeps thin parts: a triangle's apex).
    Returns the label image, the OpenCV stats and the sorted ids of the solid components."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(stacked, connectivity=8)
    survivors = np.unique(labels[_opened(stacked, h) > 0])
    solid = survivors[(survivors > 0) & (stats[survivors, cv2.CC_STAT_AREA] >= min_pixels)]
    return labels, stats, solid


@dataclass
class _Parts:
    """Solid parts of a clip: label image and stats of the component pass they come from, their ids."""

    labels: np.ndarray
    stats: np.ndarray
    ids: np.ndarray
    order: list[tuple[int, int, int]]  # per part: (component, colour bin or -1, sub-component)


@dataclass
class MotionDetector:
    """Colour-segmented foreground components (see module docstring); all thresholds are in config.

    Every frame is labelled in one OpenCV pass over the frames stacked into one image (no loop over frames
    or components for the segmentation); only the few parts found are described one by one.
    """

    min_area: float = 0.004  # fraction of the frame
    max_objects: int = 6
    diff_threshold: int = 40
    size_threshold: float = 0.2  # sqrt(box area) / frame side above which an object is "large"
    shape_labels: bool = True

    def _borders(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per frame, the border colour ``int16 [T, 3]`` and whether the background is plain (``bool [T]``)."""
        border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
        background = np.median(border, axis=1).astype(np.int16)
        plain = (np.abs(border.astype(np.int16) - background[:, None]).max(-1) <= self.diff_threshold).mean(1) > 0.8
        return background, plain

    def frame_local(self, frames: np.ndarray) -> np.ndarray:
        """Frames on a plain background: their foreground is what differs from their own border, so their
        detections depend on them alone; on a textured one the clip's temporal median decides."""
        return self._borders(np.ascontiguousarray(frames))[1]

    def __call__(self, frames: np.ndarray) -> list[list[Detection]]:
        """Detect per frame; the temporal median is taken over the frames given (the clip's keyframes)."""
        frames = np.ascontiguousarray(frames)
        t, h, w, _ = frames.shape
        if t == 0:
            return []
        background, plain = self._borders(frames)
        fg = _channel_max_absdiff(frames, background[:, None, None]) > self.diff_threshold
        # On a plain background the border colour says it all, and the temporal median would only add ghosts
        # (where a moving object was at the median time).  On a textured one the median separates movers.
        if t >= 3 and not bool(plain.all()):
            median = np.median(frames, axis=0).astype(np.int16)
            moving = _channel_max_absdiff(frames, median[None]) > self.diff_threshold
            fg = np.where(plain[:, None, None], fg, moving)
        hsv = cv2.cvtColor(frames.reshape(t * h, w, 3), cv2.COLOR_RGB2HSV).reshape(t, h, w, 3)
        # Colour bin per pixel: 0-7 chromatic bins (red wraps), 8 for gray-ish pixels.
        hue_bin = cv2.LUT(np.ascontiguousarray(hsv[..., 0]).reshape(t * h, w), _HUE_BIN_LUT).reshape(t, h, w)
        hue_bin[hsv[..., 1] < 60] = 8
        hue_bin = _stacked(hue_bin)
        min_pixels = self.min_area * h * w
        # Objects are foreground components at full resolution, split by colour only where one holds several
        # solid colours (touching objects): colour alone is blocky, as codecs keep it at half resolution,
        # which eats the corners and apexes of small shapes.
        stacked_fg = _stacked(fg)
        labels, stats, solid = _solid_labels(stacked_fg, h, min_pixels)
        if solid.size == 0:
            return [[] for _ in range(t)]
        inside = np.isin(labels, solid)
        pairs = np.unique(labels[inside] * 9 + hue_bin[inside].astype(np.int32))  # (component, colour) present
        colours = np.bincount(pairs // 9, minlength=labels.max() + 1)
        # Each part keeps the place its detection had in a per-frame pass (component, colour bin, sub-component
        # in raster order), so equal areas sort as they always did.
        whole = [c for c in solid.tolist() if colours[c] == 1]
        parts = [_Parts(labels, stats, np.array(whole, dtype=np.int64), [(c, -1, 0) for c in whole])]
        mixed = solid[colours[solid] > 1]
        if mixed.size:
            # Per colour bin, the solid parts inside mixed components; a component splits only when at least
            # two of its colours have one.  Components never touch each other, so one pass per bin over the
            # whole clip finds the same parts as one pass per component would.
            in_mixed = np.isin(labels, mixed)
            found = []
            for b in np.unique(pairs[np.isin(pairs // 9, mixed)] % 9).tolist():
                sub_labels, sub_stats, sub_solid = _solid_labels((in_mixed & (hue_bin == b)).astype(np.uint8), h,
                                                                 min_pixels)
                found.append((b, sub_labels, sub_stats, {int(c): _owner(labels, sub_labels, sub_stats, c)
                                                         for c in sub_solid}))
            owner_colours: dict[int, set[int]] = {}
            for b, _, _, owners in found:
                for owner in owners.values():
                    owner_colours.setdefault(owner, set()).add(b)
            split = {c for c, bins in owner_colours.items() if len(bins) > 1}
            kept = [c for c in mixed.tolist() if c not in split]
            parts.append(_Parts(labels, stats, np.array(kept, dtype=np.int64), [(c, -1, 0) for c in kept]))
            for b, sub_labels, sub_stats, owners in found:
                sub = [c for c, owner in owners.items() if owner in split]
                parts.append(_Parts(sub_labels, sub_stats, np.array(sub, dtype=np.int64),
                                    [(owners[c], b, c) for c in sub]))
        found_dets: list[list[tuple[tuple[int, int, int], Detection]]] = [[] for _ in range(t)]
        for group in parts:
            for det, frame, order in self._describe(group, frames, h, w):
                found_dets[frame].append((order, det))
        out = []
        for per_frame in found_dets:
            dets = [d for _, d in sorted(per_frame, key=lambda od: od[0])]
            dets.sort(key=lambda d: -d.area)
            out.append(dets[: self.max_objects])
        return out

    def _describe(self, parts: _Parts, frames: np.ndarray, h: int, w: int) -> list[tuple[Detection, int, tuple]]:
        """A detection per part (box, mean colour, colour name, size and shape) with its frame and order key."""
        if parts.ids.size == 0:
            return []
        boxes = parts.stats[parts.ids, :4].astype(int)
        blobs, means = [], []
        for part, (x, y0, bw, bh) in zip(parts.ids, boxes):
            frame, y = divmod(int(y0), _stride(h))  # a part never crosses a separator row
            blob = parts.labels[y0 : y0 + bh, x : x + bw] == part
            blobs.append((frame, x, y, bw, bh, blob))
            means.append(frames[frame, y : y + bh, x : x + bw][blob].mean(0))
        names = color_names(np.array(means))
        out = []
        for (frame, x, y, bw, bh, blob), mean, name, order in zip(blobs, means, names, parts.order):
            size = "large" if np.sqrt(bw * bh) / max(h, w) > self.size_threshold else "small"
            label = _shape_of(blob) if self.shape_labels else "object"
            det = Detection((float(x), float(y), float(x + bw), float(y + bh)), label,
                            float(np.count_nonzero(blob) / blob.size), name, tuple(mean.tolist()), [name, size])
            out.append((det, frame, order))
        return out


def _owner(labels: np.ndarray, sub_labels: np.ndarray, sub_stats: np.ndarray, part: int) -> int:
    """The component of ``labels`` that sub-component ``part`` of ``sub_labels`` lies in (one of its pixels)."""
    x, y, bw, bh = (int(v) for v in sub_stats[part, :4])
    window = sub_labels[y : y + bh, x : x + bw] == part
    return int(labels[y : y + bh, x : x + bw][window][0])


@dataclass
class GridDetector:
    """``grid x grid`` fixed regions per frame, labelled by their dominant colour; never empty."""

    grid: int = 2

    def frame_local(self, frames: np.ndarray) -> np.ndarray:
        """Every frame: a cell's colour is the frame's own."""
        return np.ones(len(frames), dtype=bool)

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
