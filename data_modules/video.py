"""Video decoding: sampled frame indices and one decord reader per sample.

``decode_clip`` opens its own ``VideoReader`` (inside ``__getitem__``, so each DataLoader worker owns its
readers), asks for all sampled frames in one ``get_batch`` with sorted indices (decoders seek forward), and
resizes in the decoder.  Any failure becomes :class:`BadSampleError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from finsta_pl.errors import BadSampleError

__all__ = ["BadSampleError", "decode_clip", "sample_indices"]


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


def decode_clip(
    path: str | Path, num_samples: int, size: int | None = None, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``num_samples`` frames of ``path`` as RGB ``uint8 [T, size, size, 3]`` and their source indices."""
    import decord

    path = Path(path)
    if not path.is_file():
        raise BadSampleError(f"{path}: video file not found")
    try:
        kwargs = {"width": size, "height": size} if size else {}
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1, **kwargs)
        count = len(reader)
        indices = sample_indices(count, num_samples, rng)
        frames = reader.get_batch(indices.tolist()).asnumpy()
    except BadSampleError:
        raise
    except Exception as exc:  # decord raises its own DECORDError, RuntimeError, ValueError, ...
        raise BadSampleError(f"{path}: cannot decode video ({type(exc).__name__}: {exc})") from exc
    if frames.ndim != 4 or frames.shape[0] != num_samples:
        raise BadSampleError(f"{path}: decoded {frames.shape} instead of {num_samples} frames")
    return frames, indices
