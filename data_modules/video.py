"""Video decoding: keyframe indices (``finsta_pl.graphs.keyframes``) and one decord reader per sample.

``decode_clip`` opens its own ``VideoReader`` (inside ``__getitem__``, so each DataLoader worker owns its
readers), asks for all sampled frames in one ``get_batch`` with sorted indices (decoders seek forward), and
resizes in the decoder.  ``keyframes="difference"`` decodes a candidate grid in that one call and keeps
the frames :func:`~finsta_pl.graphs.keyframes.select_keyframes` picks.  Any failure becomes
:class:`BadSampleError` naming the file.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from finsta_pl.errors import BadSampleError, DataNotFoundError
from finsta_pl.graphs.keyframes import candidate_indices, sample_indices, select_keyframes

log = logging.getLogger(__name__)

__all__ = ["BadSampleError", "NOT_VIDEO_EXTENSIONS", "VIDEO_EXTENSIONS", "decode_clip", "decode_frames", "index_videos",
           "names_tried", "probe_video", "sample_indices", "split_video_name", "VideoInfo", "window_frames"]

#: container extensions FFmpeg (under decord and OpenCV) demuxes: a file name ending in one of these has it as
#: its extension.  DiDeMo keeps its Flickr originals (.mov, .m4v, .mpg, .3gp, .3g2, .mts, .avi, ...); the
#: other datasets ship mp4, webm, mkv, avi or gif.
VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mkv", ".gif", ".mov", ".qt", ".m4v", ".mpg", ".mpeg", ".mpe", ".m1v",
                    ".m2v", ".mp2", ".wmv", ".asf", ".flv", ".f4v", ".3gp", ".3g2", ".mts", ".m2ts", ".ts", ".vob",
                    ".ogv", ".ogg", ".dv", ".mxf", ".rm", ".rmvb", ".divx", ".xvid", ".nut", ".mj2", ".y4m", ".ivf",
                    ".h264", ".264", ".hevc", ".avc", ".wtv")
#: extensions that are never a video (annotations, frames, features, subtitles, archives, audio): skipped by
#: the walk.  Any other name is a candidate video: an unknown suffix, a name ending in "." or no extension at
#: all is taken whole as the stem (42 of DiDeMo's 1,037 test videos end in "."; LSMDC clip ids hold dots).
NOT_VIDEO_EXTENSIONS = frozenset(
    ".json .jsonl .csv .tsv .txt .md .rst .html .pdf .xml .yaml .yml .ini .cfg .log .py .sh .pkl .pickle .h5 .hdf5 "
    ".npy .npz .pt .pth .ckpt .lmdb .mdb .jpg .jpeg .png .bmp .webp .tif .tiff .srt .vtt .ass .ssa .sub .zip .tar "
    ".gz .tgz .bz2 .xz .7z .rar .part .tmp .crdownload .lock .wav .mp3 .m4a .aac .flac .opus .wma .db .ds_store".split())


def split_video_name(name: str) -> tuple[str, str] | None:
    """``(stem, extension)`` of a video file name, or ``None`` for a file that is not a video.  The extension is
    one of :data:`VIDEO_EXTENSIONS` (any case) or empty: ``a.MTS`` -> ``("a", ".mts")``, ``a.`` -> ``("a", "")``,
    ``1012_X_00.05.41.120`` -> itself; hidden files (``.DS_Store``, macOS's ``._clip.mp4``) are not videos."""
    if not name or name.startswith("."):
        return None
    stem, dot, ext = name.rpartition(".")
    ext = f".{ext.lower()}" if dot else ""
    if dot and stem and ext in VIDEO_EXTENSIONS:
        return stem, ext
    if dot and stem and ext in NOT_VIDEO_EXTENSIONS:
        return None
    return name.rstrip(".") or None, ""


def names_tried(keys: tuple[str, ...], pattern: str = "{id}") -> list[str]:
    """The file names :func:`index_videos` would accept for any of ``keys`` under ``pattern`` (``<ext>``: any
    video extension, or none), for missing-video messages."""
    extension = Path(pattern).suffix.lower() if Path(pattern).suffix.lower() in VIDEO_EXTENSIONS else ""
    base = pattern[: -len(extension)] if extension else pattern
    return [base.replace("{id}", k) + (extension or "[.<ext>]") for k in dict.fromkeys(keys)]


def index_videos(video_dir: Path, pattern: str = "{id}") -> dict[str, Path]:
    """Map video keys to paths by one walk of ``video_dir`` (any depth; any file that is not known to be
    something else, see :func:`split_video_name`), once per run in the main process; workers inherit the map
    (no per-sample directory scans).

    ``pattern`` is the file name with ``{id}`` where the annotation's video id stands (``"{id}"``: the file
    stem is the id; ``"video{id}"``, ``"v_{id}"``, ``"{id}_360p"``; with an extension, ``"{id}.webm"``, only
    that extension is taken).  Files that do not match are left out.  Two files with one id (the same clip
    in two sub-folders or two formats) keep the first in sorted path order, and the count is logged: a
    silent pick between a clip and its re-encode would make runs differ between machines.
    """
    if not video_dir.is_dir():
        raise DataNotFoundError(f"video folder not found: {video_dir}")
    match = _pattern_matcher(pattern)
    out: dict[str, Path] = {}
    duplicates: list[Path] = []
    for path in sorted(video_dir.rglob("*")):
        if not path.is_file():
            continue
        key = match(path)
        if key is None:
            continue
        if key in out:
            duplicates.append(path)
            continue
        out[key] = path
    if duplicates:
        log.warning("%s: %d video files repeat an id already found; the first in path order is kept (e.g. %s "
                    "is left out for %s)", video_dir, len(duplicates), duplicates[0], out[match(duplicates[0])])
    return out


def _pattern_matcher(pattern: str) -> Callable[[Path], str | None]:
    """The function that reads the video id out of a path for a ``{id}`` file-name pattern."""
    if pattern.count("{id}") != 1 or "/" in pattern or "\\" in pattern:
        raise ValueError(f"video_pattern must be a file name holding '{{id}}' once, not {pattern!r}")
    extension = Path(pattern).suffix.lower()
    if extension in VIDEO_EXTENSIONS:
        pattern = pattern[: -len(extension)]
    else:
        extension = ""
    prefix, suffix = pattern.split("{id}")
    regex = re.compile(re.escape(prefix) + "(?P<id>.+?)" + re.escape(suffix) + r"\Z")

    def match(path: Path) -> str | None:
        name = split_video_name(path.name)
        if name is None or (extension and name[1] != extension):
            return None
        found = regex.match(name[0])
        return found.group("id") if found else None

    return match


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says about itself: frame count, frame rate, width and height."""

    frames: int
    fps: float
    width: int
    height: int

    @property
    def seconds(self) -> float:
        """Duration (0 when the file has no frame rate)."""
        return self.frames / self.fps if self.fps > 0 else 0.0


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path`` and read its metadata without decoding frames; unreadable files raise
    :class:`BadSampleError` naming the file (decord for videos, Pillow for GIFs)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".gif":
            from PIL import Image

            with Image.open(path) as image:
                delay_ms = image.info.get("duration") or 100
                return VideoInfo(getattr(image, "n_frames", 1), 1000.0 / delay_ms, *image.size)
        import decord

        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        height, width = reader[0].shape[:2] if len(reader) else (0, 0)
        return VideoInfo(len(reader), float(reader.get_avg_fps()), int(width), int(height))
    except Exception as exc:  # decord's DECORDError, Pillow's errors, OSError, ...
        raise BadSampleError(f"{path}: cannot open video ({type(exc).__name__}: {exc})") from exc


def window_frames(count: int, fps: float, window: tuple[float, float] | None, path: Path) -> tuple[int, int]:
    """The source frames ``[first, stop)`` of a time window in seconds (the whole video without one), clipped
    to the video; a window that starts after the last frame is a bad sample naming the file."""
    if window is None:
        return 0, count
    start, end = window
    if not fps > 0:
        raise BadSampleError(f"{path}: no frame rate in the file, cannot seek to the window [{start}, {end}] s")
    first = max(0, int(np.floor(start * fps)))
    if first >= count:
        raise BadSampleError(f"{path}: window [{start}, {end}] s starts after the video's end ({count / fps:.2f} s)")
    return first, min(count, max(first + 1, int(np.ceil(end * fps))))


def decode_clip(
    path: str | Path, num_samples: int, size: int | None = None, rng: np.random.Generator | None = None,
    keyframes: str = "uniform", candidates: int = 4, window: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``num_samples`` frames of ``path`` as RGB ``uint8 [T, size, size, 3]`` and their source indices.

    ``keyframes``/``candidates``: the keyframe method and candidate grid factor (``graphs.keyframes``).
    ``window``: ``(start, end)`` seconds; frames are sampled inside it and decoded by seeking (decord's
    frame-accurate ``get_batch``), never by decoding the file from its start.
    """
    import decord

    path = Path(path)
    if not path.is_file():
        raise BadSampleError(f"{path}: video file not found")
    try:
        def pick(count: int, fps: float) -> np.ndarray:
            first, stop = window_frames(count, fps, window, path)
            return first + candidate_indices(stop - first, num_samples, keyframes, candidates, rng)

        if path.suffix.lower() == ".gif":  # decord cannot measure a GIF's length (TGIF-QA ships GIFs)
            frames, indices = _decode_gif(path, size, pick)
        else:
            kwargs = {"width": size, "height": size} if size else {}
            reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1, **kwargs)
            indices = pick(len(reader), reader.get_avg_fps())
            frames = reader.get_batch(indices.tolist()).asnumpy()
        frames, indices = select_keyframes(frames, indices, num_samples, keyframes)
    except BadSampleError:
        raise
    except Exception as exc:  # decord raises its own DECORDError, RuntimeError, ValueError, ...
        raise BadSampleError(f"{path}: cannot decode video ({type(exc).__name__}: {exc})") from exc
    if frames.ndim != 4 or frames.shape[0] != num_samples:
        raise BadSampleError(f"{path}: decoded {frames.shape} instead of {num_samples} frames")
    return frames, indices


def decode_frames(path: str | Path, indices: list[int], size: tuple[int, int] | None = None) -> np.ndarray:
    """Frames ``indices`` (sorted source indices) of ``path`` as RGB ``uint8 [T, H, W, 3]``, resized to
    ``size = (H, W)`` in the decoder (aspect kept by the caller, unlike :func:`decode_clip`'s squares), in one
    ``get_batch``; for whole-video passes such as ``finsta-pl detect``.  GIFs through Pillow."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        from PIL import Image

        with Image.open(path) as image:
            return _gif_frames(image, indices, size)
    import decord

    kwargs = {"width": size[1], "height": size[0]} if size else {}
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1, **kwargs)
    return reader.get_batch(list(indices)).asnumpy()


def _decode_gif(path: Path, size: int | None, pick: Callable[[int, float], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """RGB frames ``pick(frame_count, fps)`` of a GIF through Pillow, resized like decord's output."""
    from PIL import Image

    with Image.open(path) as image:
        delay_ms = image.info.get("duration") or 100  # GIFs store a per-frame delay; 10 fps when absent
        indices = pick(getattr(image, "n_frames", 1), 1000.0 / delay_ms)
        return _gif_frames(image, indices, (size, size) if size else None), indices


def _gif_frames(image, indices, size: tuple[int, int] | None) -> np.ndarray:  # noqa: ANN001
    """RGB frames ``indices`` of an open Pillow GIF, resized to ``size = (H, W)`` when given."""
    from PIL import Image

    frames = []
    for i in indices:  # sorted, so each seek continues forward from the last one
        image.seek(int(i))
        frame = image.convert("RGB")
        frames.append(np.asarray(frame.resize((size[1], size[0]), Image.BILINEAR) if size else frame))
    return np.stack(frames)
