"""Keyframe choice: which source frames of a video become the clip's ``T`` keyframes.

- ``uniform``: segment centres (or a random frame per segment while training): :func:`sample_indices`,
  which lives here (the graphs layer) so data_modules imports it, not the other way round.
- ``difference``: a candidate grid of ``factor * T`` frames (uniform the same way), then ``T`` of them chosen
  greedily by how much each differs from the chosen frame before it, on small grayscale thumbnails.

The decoder still decodes once per sample with sorted indices: it decodes the candidate grid in one
``get_batch`` at the clip's frame size and keeps the chosen frames (:func:`select_keyframes`).  A separate
low-resolution pass would not be cheaper: decoders decode at the source resolution and scale afterwards, so
a second pass costs another seek and decode of the kept frames.
"""

from __future__ import annotations

import cv2
import numpy as np

KEYFRAME_METHODS: tuple[str, ...] = ("uniform", "difference")


def sample_indices(num_available: int, num_samples: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``num_samples`` sorted frame indices: segment centres, or a random frame per segment when ``rng`` is given.

    A video shorter than ``num_samples`` repeats frames, so every clip has the same length.
    """
    if num_available <= 0:
        raise ValueError("video has no frames")
    edges = np.linspace(0, num_available, num_samples + 1)
    if rng is None:
        idx = (edges[:-1] + edges[1:]) / 2
    else:
        idx = edges[:-1] + rng.random(num_samples) * (edges[1:] - edges[:-1])
    return np.clip(np.floor(idx).astype(np.int64), 0, num_available - 1)


def candidate_indices(
    num_available: int, num_samples: int, method: str = "uniform", factor: int = 4,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Sorted source frames to decode: the keyframes themselves (``uniform``) or the candidate grid."""
    if method not in KEYFRAME_METHODS:
        raise ValueError(f"unknown keyframe method {method!r}; choose one of {list(KEYFRAME_METHODS)}")
    if method == "uniform" or num_available <= num_samples:
        return sample_indices(num_available, num_samples, rng)
    return np.unique(sample_indices(num_available, min(num_available, factor * num_samples), rng))


def thumbnails(frames: np.ndarray, side: int = 32) -> np.ndarray:
    """Grayscale ``float32 [N, side, side]`` thumbnails of RGB ``uint8 [N, H, W, 3]`` frames (area resampling,
    so codec noise averages out instead of aliasing into fake differences)."""
    return np.stack([
        cv2.resize(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY), (side, side),
                   interpolation=cv2.INTER_AREA) for f in frames
    ]).astype(np.float32) if len(frames) else np.zeros((0, side, side), np.float32)


def difference_keyframes(thumbs: np.ndarray, num_samples: int, spread_weight: float = 0.01) -> np.ndarray:
    """Positions (sorted) of ``num_samples`` of the candidate ``thumbs``, chosen greedily by change.

    The first candidate is always kept.  Each step adds the candidate with the largest
    ``min(diff to the chosen frame before it, diff to the candidate before it)`` (mean absolute difference,
    0-1): a frame that both shows something new relative to what is kept and starts a change, so a cut gets
    the frame right after it, not the most drifted frame long after it.  ``spread_weight`` times the distance
    to the nearest chosen frame (a fraction of the grid) breaks near-ties towards temporal coverage, so static
    clips and slow fades get an even spread; exact ties go to the earlier frame (deterministic).
    With no more candidates than ``num_samples`` the candidates are repeated as ``sample_indices`` would.
    """
    n = len(thumbs)
    if n <= num_samples:
        return sample_indices(max(n, 1), num_samples) if n else np.zeros(num_samples, np.int64)
    flat = thumbs.reshape(n, -1) / 255.0
    chosen = np.zeros(n, dtype=bool)
    chosen[0] = True
    positions = np.arange(n)
    local = np.r_[0.0, np.abs(flat[1:] - flat[:-1]).mean(1)]  # change into each candidate from the one before
    for _ in range(num_samples - 1):
        # The chosen frame preceding each candidate, and the distance to the nearest chosen frame either side.
        last = np.maximum.accumulate(np.where(chosen, positions, 0))
        nxt = np.minimum.accumulate(np.where(chosen, positions, 2 * n)[::-1])[::-1]
        gap = np.minimum(positions - last, nxt - positions) / n
        score = np.minimum(np.abs(flat - flat[last]).mean(1), local) + spread_weight * gap
        score[chosen] = -np.inf
        chosen[int(np.argmax(score))] = True  # argmax returns the first maximum: earlier frames win ties
    return np.flatnonzero(chosen)


def select_keyframes(frames: np.ndarray, indices: np.ndarray, num_samples: int, method: str = "uniform",
                     thumb_side: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The ``num_samples`` keyframes among decoded candidates ``frames`` (source frames ``indices``).

    ``uniform`` candidates already are the keyframes (returned as they are); ``difference`` keeps the frames
    :func:`difference_keyframes` picks on thumbnails.  Returns ``(frames [T, H, W, 3], indices [T])``, sorted.
    """
    if method == "uniform" or len(frames) == num_samples:
        return frames, indices
    pos = difference_keyframes(thumbnails(frames, thumb_side), num_samples)
    return frames[pos], indices[pos]
