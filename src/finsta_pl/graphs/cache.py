"""On-disk caches of dynamic scene graphs and of per-frame detections, so later epochs detect nothing again.

Two levels.  :class:`DetectionCache` keeps, per video, the detections of every source frame a frame-local
detector has seen: training samples new random offsets each epoch, so whole-clip entries would never hit,
while the video's frames recur (a 16-frame video sampled 8 at a time has every frame cached within a few
epochs, and the records sharing a video share its frames in the first).  :class:`DSGCache` keeps whole DSGs
for clips whose keyframes repeat exactly (evaluation, fixed offsets), which skips tracking too.

DSG entries are keyed by (video content hash, DSG config, detector config, keyframe indices, extras such as the
decoded frame size) and stored as ``torch.save`` dicts of tensors and label strings, read back with
``weights_only=True`` (no arbitrary unpickling).  Concurrent DataLoader workers and processes are safe: a
writer writes a temp file in the entry's folder and ``os.replace``s it, which is atomic on POSIX, so readers
see a whole old file, a whole new one or none; an unreadable file counts as a miss and is rewritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finsta_pl.graphs.container import SceneGraph
from finsta_pl.graphs.detection import Detection, Detector, frame_local

#: bytes hashed at each end of a video file.
HASH_CHUNK = 1 << 20
#: bumped whenever the stored layout or the DSG builder's output changes meaning.
CACHE_VERSION = 1
_TENSOR_FIELDS = ("node_type", "edge_index", "edge_type", "node_span", "node_frame", "node_track", "node_box")


def content_hash(path: str | Path) -> str:
    """sha1 hex of ``<size in bytes as decimal ASCII>\\n`` + the first and the last ``HASH_CHUNK`` bytes.

    Why: hashing whole videos (GBs per dataset) would cost more than building graphs, while a path or mtime
    changes when data moves or is copied.  Container headers (first MiB) and the tail (index/moov atoms, last
    packets) plus the exact size tell re-encoded or truncated files apart in practice.  Files under 2 MiB are
    hashed whole (the two chunks overlap, the overlap is hashed twice, which is harmless).
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha1(f"{size}\n".encode())
    with open(path, "rb") as f:
        h.update(f.read(HASH_CHUNK))
        f.seek(max(size - HASH_CHUNK, 0))
        h.update(f.read(HASH_CHUNK))
    return h.hexdigest()


_HASHES: dict[tuple[str, int, int], str] = {}


def cached_content_hash(path: str | Path) -> str:
    """:func:`content_hash`, memoised per process by (path, size, mtime) so each epoch reads 2 MiB once."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = content_hash(path)
    return _HASHES[key]


def _plain(value: Any) -> Any:
    """JSON-able form of configs: dataclasses as dicts, numpy scalars/arrays as lists, the rest as is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def cache_key(video_hash: str, dsg_config: Any, detector_config: Mapping[str, Any],
              frame_indices: Sequence[int], **extra: Any) -> str:
    """sha1 hex key of one DSG: canonical JSON (sorted keys) of everything the graph depends on.

    ``detector_config`` holds the detector's name and arguments (and, for sidecars, their content hash);
    ``extra`` anything else, e.g. ``frame_size`` of the decoded frames and the keyframe method.
    """
    blob = json.dumps({"v": CACHE_VERSION, "video": video_hash, "dsg": _plain(dsg_config),
                       "detector": _plain(detector_config), "frames": [int(i) for i in frame_indices],
                       "extra": _plain(extra)}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


def default_cache_dir() -> Path:
    """``$FINSTA_PL_DATA/dsg_cache``, or ``~/.cache/finsta_pl/dsg_cache`` when the variable is unset."""
    base = os.environ.get("FINSTA_PL_DATA") or Path.home() / ".cache" / "finsta_pl"
    return Path(base).expanduser() / "dsg_cache"


class DSGCache:
    """A folder of DSGs keyed by :func:`cache_key`; ``hits``/``misses`` count this process's lookups."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        """File of ``key`` (two-level fan-out keeps folders small on large datasets)."""
        return self.root / key[:2] / f"{key}.pt"

    def get(self, key: str) -> SceneGraph | None:
        """The cached graph, or None (and a miss) when absent or unreadable."""
        try:
            data = torch.load(self.path(key), map_location="cpu", weights_only=True)
            graph = SceneGraph(node_label=list(data["node_label"]), **{f: data[f] for f in _TENSOR_FIELDS})
            if data.get("version") != CACHE_VERSION:
                raise ValueError("stale cache layout")
        except Exception:  # noqa: BLE001 - missing, truncated, foreign or stale: all mean "build it again"
            self.misses += 1
            return None
        self.hits += 1
        return graph

    def put(self, key: str, graph: SceneGraph) -> None:
        """Store ``graph`` atomically (temp file in the same folder, then ``os.replace``)."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": CACHE_VERSION, "node_label": list(graph.node_label),
                **{f: getattr(graph, f).contiguous() for f in _TENSOR_FIELDS}}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(data, f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_or_build(self, key: str, build: Callable[[], SceneGraph]) -> SceneGraph:
        """The cached graph of ``key``, or ``build()`` stored under it."""
        graph = self.get(key)
        if graph is None:
            graph = build()
            self.put(key, graph)
        return graph


#: bumped whenever the detection file layout or a detector's output changes meaning.
DETECTION_CACHE_VERSION = 1


def detections_key(video_hash: str, detector_config: Mapping[str, Any], frame_size: Sequence[int]) -> str:
    """sha1 hex key of one video's detection file: the video, the detector (name and arguments) and the
    decoded frame size; the frames themselves are entries inside the file."""
    blob = json.dumps({"v": DETECTION_CACHE_VERSION, "video": video_hash, "detector": _plain(detector_config),
                       "frame_size": [int(x) for x in frame_size]}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


class DetectionCache:
    """A folder of per-video JSON files, source frame index -> that frame's detections.

    Only frames the detector marks as frame-local (:func:`~finsta_pl.graphs.detection.frame_local`: their
    detections depend on that frame alone) are stored, so a cached frame gives exactly what detecting it again
    in any clip would.  JSON, not pickle: the files are read back without executing anything.  Writers merge
    with the file as they find it and ``os.replace`` atomically; two workers writing one video at once may
    drop each other's new frames, which costs a later miss, never a wrong graph.  ``hits``/``misses`` count
    keyframes of this process.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = (Path(root) if root else default_cache_dir()) / "detections"
        self.hits = 0
        self.misses = 0
        self._warned = False

    def path(self, key: str) -> Path:
        """File of ``key`` (two-level fan-out like the DSG cache)."""
        return self.root / key[:2] / f"{key}.json"

    def load(self, key: str) -> dict[int, list[Detection]]:
        """The cached frames of ``key`` (empty when absent, unreadable or of another layout version)."""
        try:
            data = json.loads(self.path(key).read_bytes())
            if data.get("v") != DETECTION_CACHE_VERSION:
                return {}
            # Rows in field order (box, label, score, color, mean_rgb, attributes): positional construction.
            return {int(i): [Detection(tuple(r[0]), r[1], r[2], r[3], tuple(r[4]), r[5]) for r in rows]
                    for i, rows in data["frames"].items()}
        except Exception:  # noqa: BLE001 - missing, truncated or foreign: all mean "detect again"
            return {}

    def store(self, key: str, frames: Mapping[int, list[Detection]], known: Mapping[int, list[Detection]] | None = None) -> None:
        """Write ``frames`` and ``known`` (the file's frames as last read; read again when not given) to the
        file of ``key``: a temp file, then an atomic ``os.replace``.  A cache that cannot be written (read-only
        or full disk) costs later misses, never the sample: the failure is warned about once per process."""
        merged = {**(self.load(key) if known is None else known), **frames}
        path = self.path(key)
        tmp = None
        try:
            blob = json.dumps({"v": DETECTION_CACHE_VERSION, "frames": {
                str(i): [[d.box, d.label, d.score, d.color, d.mean_rgb, d.attributes] for d in dets]
                for i, dets in merged.items()}}, separators=(",", ":"), default=float)  # numpy scalars as floats
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(blob)
            os.replace(tmp, path)
        except (OSError, TypeError, ValueError) as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            if not self._warned:
                self._warned = True
                warnings.warn(f"detection cache {self.root}: cannot write {path.name} ({type(exc).__name__}: {exc}); "
                              "frames are detected again instead", stacklevel=2)

    def detections(self, key: str, detector: Detector, frames: np.ndarray,
                   frame_indices: Sequence[int]) -> list[list[Detection]]:
        """Per keyframe, the cached detections or the detector's (then stored when frame-local).

        When every keyframe is frame-local, only the missing ones are detected; otherwise the detector needs
        the whole clip (e.g. the motion detector's temporal median on a textured background) and sees it.
        """
        cached = self.load(key)
        indices = [int(i) for i in frame_indices]
        missing = [k for k, i in enumerate(indices) if i not in cached]
        self.hits += len(indices) - len(missing)
        self.misses += len(missing)
        if not missing:
            return [cached[i] for i in indices]
        local = frame_local(detector, frames)
        if local.all():
            fresh = dict(zip(missing, detector(frames[missing])))
        else:
            every = detector(frames)
            fresh = {k: every[k] for k in missing}
        new = {indices[k]: dets for k, dets in fresh.items() if local[k]}
        if new:
            self.store(key, new, known=cached)
        return [fresh[k] if k in fresh else cached[i] for k, i in enumerate(indices)]

