"""Precomputed detections: per-video sidecar JSON files, the way users bring Faster R-CNN / YOLO / DINO output.

Sidecar schema (one file ``<root>/<video key>.json`` per video)::

    {"video": "video12",                 # the dataset's video key
     "frame_size": [H, W],               # pixel space of the boxes (the source video, usually)
     "frames": [{"frame": 120,           # source frame index (0-based, as decord counts)
                 "objects": [{"box": [x1, y1, x2, y2], "label": "cup", "score": 0.9,
                              "attributes": ["red"],        # optional
                              "feature": [0.1, ...],        # optional appearance vector
                              "track": 3,                   # optional track id (annotated tracks)
                              "relations": [{"predicate": "holding", "object": 5}]}]}]}
                                                            # optional: this object -> the object of track 5

Annotated ``relations`` (Action Genome, VidVRD/VidOR) become DSG predicates between the two objects of that
frame, next to the geometric ones; their objects are named by ``track``, so only tracked objects take part.

``label`` may be left out (class-agnostic proposals): such boxes become "object" nodes, and the HSG then
links them to the text by host embedding similarity (``graphs/hsg.py`` ``LinkConfig.method``).

A frame listed with no objects means "annotated, nothing there"; a frame not listed is unknown, and a
keyframe takes the nearest listed frame within ``tolerance`` source frames (none: no detections).
Converters write sidecars from Action Genome and VidVRD/VidOR annotations (``python -m
finsta_pl.graphs.precomputed convert --help``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from finsta_pl.errors import BadSampleError, FinstaError
from finsta_pl.graphs.detect import Detection, Detector, color_name, make_detector
from finsta_pl.safety import inside_root


@dataclass
class PrecomputedDetection(Detection):
    """A :class:`Detection` with the optional appearance ``feature``, annotated ``track`` id and annotated
    ``relations`` (``(predicate, object track id)``, this detection the subject) of a sidecar."""

    feature: tuple[float, ...] | None = None
    track: int | None = None
    relations: tuple[tuple[str, int], ...] = ()


class DetectionSource(Protocol):
    """Per-keyframe detections of one sample, given what frame-only detectors cannot know."""

    def detections(self, video_key: str, frames: np.ndarray, frame_indices: Sequence[int]) -> list[list[Detection]]:
        """Detections for each of ``frames`` (``[T, H, W, 3]``), the keyframes ``frame_indices`` of ``video_key``."""
        ...


@dataclass
class FrameDetectorSource:
    """Adapter: a frame-only :class:`Detector` (motion, grid) as a :class:`DetectionSource`."""

    detector: Detector

    def detections(self, video_key: str, frames: np.ndarray, frame_indices: Sequence[int]) -> list[list[Detection]]:
        """The wrapped detector's output; the video key and indices are not needed."""
        return self.detector(frames)


@dataclass(frozen=True)
class Sidecar:
    """A parsed sidecar: annotated source frames (sorted) and their raw object dicts."""

    video: str
    frame_size: tuple[int, int]
    frames: np.ndarray  # [F] int64, sorted
    objects: tuple[list[dict[str, Any]], ...]


@lru_cache(maxsize=256)
def _load_cached(path: str, mtime_ns: int) -> Sidecar:
    # Keyed by mtime too, so a rewritten sidecar is re-read; each worker parses each file once per epoch at most.
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    try:
        h, w = (int(v) for v in raw["frame_size"])
        entries = sorted(raw["frames"], key=lambda e: int(e["frame"]))
        return Sidecar(str(raw.get("video", Path(path).stem)), (h, w),
                       np.array([int(e["frame"]) for e in entries], dtype=np.int64),
                       tuple(list(e.get("objects", [])) for e in entries))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a finsta-pl detection sidecar ({type(exc).__name__}: {exc})") from exc


def load_sidecar(path: str | Path) -> Sidecar:
    """Parse (and memoise per process) the sidecar at ``path``; malformed files raise ``ValueError``."""
    return _load_cached(str(path), os.stat(path).st_mtime_ns)


def nearest_frame(annotated: np.ndarray, frame: int, tolerance: int) -> int | None:
    """Position in sorted ``annotated`` of the frame nearest ``frame`` (earlier wins ties), or None if too far."""
    if annotated.size == 0:
        return None
    i = int(np.searchsorted(annotated, frame))
    best = min((j for j in (i - 1, i) if 0 <= j < annotated.size), key=lambda j: (abs(annotated[j] - frame), j))
    return best if abs(int(annotated[best]) - frame) <= tolerance else None


@dataclass
class PrecomputedDetector:
    """Detections read from sidecars under ``root`` (schema in the module docstring).

    Boxes are rescaled from the sidecar's ``frame_size`` to the decoded frames and clipped; colour and mean RGB
    (used by the tracker) are measured on the decoded frame.  Objects below ``min_score`` are dropped and the
    ``max_objects`` best kept.  ``missing``: ``"empty"`` (no detections, warned once) or ``"raise"``.
    """

    root: str = "."
    tolerance: int = 15  # source frames, about half a second at 30 fps
    min_score: float = 0.3
    max_objects: int = 10
    missing: str = "empty"

    def __post_init__(self) -> None:
        if self.missing not in {"empty", "raise"}:
            raise ValueError(f"missing must be 'empty' or 'raise', not {self.missing!r}")
        self._warned: set[str] = set()

    def sidecar_path(self, video_key: str) -> Path:
        """Where the sidecar of ``video_key`` lives; a key that would leave ``root`` (``..``, absolute) raises
        :class:`~finsta_pl.errors.UnsafePathError` (a bad sample: the key comes from the annotation)."""
        return inside_root(self.root, f"{video_key}.json", f"detection sidecars: the annotation's video id {video_key!r}")

    def __call__(self, frames: np.ndarray, frame_indices: Sequence[int] | None = None,
                 video_key: str | None = None) -> list[list[Detection]]:
        """Detector-protocol entry; sidecars need ``frame_indices`` and ``video_key``, so both are required."""
        if frame_indices is None or video_key is None:
            raise TypeError("PrecomputedDetector needs frame_indices and video_key; call it as a DetectionSource")
        return self.detections(video_key, frames, frame_indices)

    def detections(self, video_key: str, frames: np.ndarray, frame_indices: Sequence[int]) -> list[list[Detection]]:
        """Per-keyframe detections of ``video_key`` from its sidecar (empty lists where nothing is known)."""
        path = self.sidecar_path(video_key)
        if not path.is_file():
            if self.missing == "raise":
                raise FileNotFoundError(f"{path}: no detection sidecar for video {video_key!r}")
            if video_key not in self._warned:
                self._warned.add(video_key)
                warnings.warn(f"{path}: no detection sidecar; {video_key!r} gets scene-only graphs", stacklevel=2)
            return [[] for _ in range(len(frames))]
        side = load_sidecar(path)
        h, w = frames.shape[1:3]
        sx, sy = w / side.frame_size[1], h / side.frame_size[0]
        out: list[list[Detection]] = []
        for frame, index in zip(frames, frame_indices):
            pos = nearest_frame(side.frames, int(index), self.tolerance)
            objs = [] if pos is None else [o for o in side.objects[pos] if float(o.get("score", 1.0)) >= self.min_score]
            # Boxes outside the decoded frame are dropped before the cut, so they take no one's place.
            try:
                dets = [d for d in (_detection(o, frame, sx, sy) for o in objs) if d is not None]
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise BadSampleError(f"{path}: malformed object near frame {int(index)} "
                                     f"({type(exc).__name__}: {exc})") from None
            out.append(sorted(dets, key=lambda d: -d.score)[: self.max_objects])
        return out


def _detection(obj: dict[str, Any], frame: np.ndarray, sx: float, sy: float) -> PrecomputedDetection | None:
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in obj["box"])
    x1, x2 = min(max(x1 * sx, 0.0), w), min(max(x2 * sx, 0.0), w)
    y1, y2 = min(max(y1 * sy, 0.0), h), min(max(y2 * sy, 0.0), h)
    if x2 - x1 < 1e-3 or y2 - y1 < 1e-3:  # outside the frame, or degenerate: nothing to attach nodes to
        return None
    crop = frame[int(y1) : max(math.ceil(y2), int(y1) + 1), int(x1) : max(math.ceil(x2), int(x1) + 1)]
    mean = crop.reshape(-1, 3).mean(0)
    feature = obj.get("feature")
    return PrecomputedDetection(
        (x1, y1, x2, y2), str(obj.get("label") or "object"), float(obj.get("score", 1.0)), color_name(mean),
        tuple(float(v) for v in mean), [str(a) for a in obj.get("attributes", [])],
        tuple(float(v) for v in feature) if feature is not None else None,
        int(obj["track"]) if obj.get("track") is not None else None,
        tuple((_predicate(r["predicate"]), int(r["object"])) for r in obj.get("relations", ())))


def _predicate(name: Any) -> str:
    """Annotation predicate names as words: ``looking_at`` -> ``looking at`` (labels are encoded word by word)."""
    return str(name).replace("_", " ").strip()


def given_tracks(detections: list[list[Detection]]) -> list[list[int]] | None:
    """Annotated track ids remapped to ``0, 1, ...`` in order of appearance, if *every* detection has one.

    ``dsg.track`` should return this instead of Hungarian matching when it is not None (annotated tracks are
    better than any matcher); a clip mixing annotated and unannotated detections is matched as usual.
    """
    flat = [getattr(d, "track", None) for dets in detections for d in dets]
    if not flat or any(t is None for t in flat):
        return None
    remap: dict[int, int] = {}
    return [[remap.setdefault(int(d.track), len(remap)) for d in dets] for dets in detections]  # type: ignore[attr-defined]


def make_source(name: str, **kwargs: Any) -> DetectionSource:
    """The :class:`DetectionSource` for detector ``name``: ``precomputed`` or any frame detector of detect.py."""
    if name == "precomputed":
        return PrecomputedDetector(**kwargs)
    return FrameDetectorSource(make_detector(name, **kwargs))


def write_sidecar(sidecar: dict[str, Any], out_dir: str | Path, source: str = "sidecar") -> Path:
    """Write ``sidecar`` to ``out_dir/<video>.json`` atomically (temp file + replace); returns the path.
    The video name comes from a converted annotation (``source`` names it): it must stay inside ``out_dir``."""
    path = inside_root(out_dir, f"{sidecar['video']}.json", f"{source}: video {sidecar['video']!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(sidecar, f, separators=(",", ":"))
    os.replace(tmp, path)
    return path


_AG_PERSON, _AG_OBJECTS = 0, 1000  # track ids: persons 0, 1, ...; object classes 1000, 1001, ...
_AG_RELATIONS = ("attention_relationship", "spatial_relationship", "contacting_relationship")


def convert_action_genome(objects_pkl: str | Path, out_dir: str | Path, person_pkl: str | Path | None = None,
                          frame_size: tuple[int, int] | None = None, allow_pickle: bool = False) -> list[Path]:
    """Sidecars from Action Genome's ``object_bbox_and_relationship.pkl`` (+ ``person_bbox.pkl`` if given).

    Object boxes are xywh (converted to xyxy), invisible objects (``bbox None``) skipped, score 1.0 (manual).
    AG labels one instance per class per video, so the class is the track; persons are tracks 0, 1, ...  The
    attention, spatial and contacting relationships become relations from the person to each object.
    Person boxes (xyxy, Faster R-CNN) become ``person`` objects, and their ``bbox_size`` (W, H) gives the
    frame size; without them ``frame_size`` (H, W) is required.  Frame ids are the numbers of the
    ``FRAME.png`` names, taken as source frame indices.  Pickles run code when loaded, so reading them needs
    ``allow_pickle=True`` (``--allow-pickle``): only for files from a source you trust.
    """
    if not allow_pickle:
        raise FinstaError(f"{objects_pkl}: Action Genome annotations are Python pickles, which can run code when "
                          "loaded; pass allow_pickle=True (--allow-pickle) only for files from a trusted source")

    def load(p: str | Path) -> dict:
        with open(p, "rb") as f:  # AG pickles come from Python 2: latin1 decodes their byte strings
            return pickle.load(f, encoding="latin1")

    objects, persons = load(objects_pkl), (load(person_pkl) if person_pkl else {})
    videos: dict[str, dict[int, list[dict[str, Any]]]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    class_track: dict[str, dict[str, int]] = {}  # AG annotates one instance per class: class = identity
    for key in sorted(set(objects) | set(persons)):
        video, frame_name = key.split("/")
        video, frame = video.rsplit(".", 1)[0], int(Path(frame_name).stem)
        objs = videos.setdefault(video, {}).setdefault(frame, [])
        person = persons.get(key)
        people: list[dict[str, Any]] = []
        if person is not None:
            sizes.setdefault(video, (int(person["bbox_size"][1]), int(person["bbox_size"][0])))
            people = [{"box": [float(v) for v in b], "label": "person", "score": 1.0, "track": _AG_PERSON + i}
                      for i, b in enumerate(np.asarray(person["bbox"], dtype=float).reshape(-1, 4))]
            objs += people
        tracks = class_track.setdefault(video, {})
        for o in objects.get(key, []):
            if o.get("bbox") is None or not o.get("visible", True):
                continue
            x, y, bw, bh = (float(v) for v in o["bbox"])
            label = str(o["class"])
            tid = tracks.setdefault(label, _AG_OBJECTS + len(tracks))
            objs.append({"box": [x, y, x + bw, y + bh], "label": label, "score": 1.0, "track": tid})
            # AG relations go from the person (the first, Faster R-CNN's most confident box) to the object.
            names = [r for kind in _AG_RELATIONS for r in (o.get(kind) or [])]
            if people and names:
                people[0].setdefault("relations", []).extend({"predicate": r, "object": tid} for r in names)
    paths = []
    for video, frames in videos.items():
        size = sizes.get(video, frame_size)
        if size is None:
            raise ValueError(f"{video}: no person_bbox.pkl frame size; pass frame_size (H, W)")
        paths.append(write_sidecar({"video": video, "frame_size": list(size), "frames": [
            {"frame": f, "objects": frames[f]} for f in sorted(frames)]}, out_dir, str(objects_pkl)))
    return paths


def convert_vidvrd(json_paths: Iterable[str | Path], out_dir: str | Path, stride: int = 1) -> list[Path]:
    """Sidecars from VidVRD/VidOR annotation JSONs: every ``stride``-th frame, categories by ``tid``, the
    ``tid`` kept as ``track``; score 1.0.  Each relation instance is a relation of its subject in every kept
    frame of ``[begin_fid, end_fid)``."""
    paths = []
    for p in json_paths:
        with open(p, encoding="utf-8") as f:
            ann = json.load(f)
        category = {int(o["tid"]): str(o["category"]) for o in ann["subject/objects"]}
        relations: dict[tuple[int, int], list[dict[str, Any]]] = {}  # (frame, subject tid) -> relations
        for r in ann.get("relation_instances", []):
            for fid in range(int(r["begin_fid"]), int(r["end_fid"])):
                relations.setdefault((fid, int(r["subject_tid"])), []).append(
                    {"predicate": str(r["predicate"]), "object": int(r["object_tid"])})

        def obj(fid: int, t: dict[str, Any]) -> dict[str, Any]:
            tid = int(t["tid"])
            out = {"box": [float(t["bbox"][k]) for k in ("xmin", "ymin", "xmax", "ymax")],
                   "label": category[tid], "score": 1.0, "track": tid}
            if (fid, tid) in relations:
                out["relations"] = relations[(fid, tid)]
            return out

        frames = [{"frame": fid, "objects": [obj(fid, t) for t in traj]}
                  for fid, traj in enumerate(ann["trajectories"]) if fid % stride == 0]
        paths.append(write_sidecar({"video": str(ann["video_id"]), "frame_size": [int(ann["height"]),
                                    int(ann["width"])], "frames": frames}, out_dir, f"{p}: video_id"))
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    """``convert --format action_genome|vidvrd --input ... --out DIR``: write sidecars."""
    ap = argparse.ArgumentParser(prog="python -m finsta_pl.graphs.precomputed")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="write detection sidecars from Action Genome or VidVRD/VidOR annotations")
    c.add_argument("--format", required=True, choices=["action_genome", "vidvrd"])
    c.add_argument("--input", required=True, nargs="+",
                   help="AG: object_bbox_and_relationship.pkl; VidVRD/VidOR: JSON files or folders of them")
    c.add_argument("--person-bbox", help="AG person_bbox.pkl (person boxes and frame sizes)")
    c.add_argument("--frame-size", type=int, nargs=2, metavar=("H", "W"), help="AG frame size without person_bbox")
    c.add_argument("--stride", type=int, default=1, help="VidVRD/VidOR: keep every n-th frame")
    c.add_argument("--out", required=True, help="output folder of <video>.json sidecars")
    c.add_argument("--allow-pickle", action="store_true",
                   help="AG: read its .pkl files (pickles can run code: only files from a trusted source)")
    a = ap.parse_args(argv)
    if a.format == "action_genome":
        paths = convert_action_genome(a.input[0], a.out, a.person_bbox, tuple(a.frame_size) if a.frame_size else None,
                                      allow_pickle=a.allow_pickle)
    else:
        files = [q for p in map(Path, a.input) for q in (sorted(p.rglob("*.json")) if p.is_dir() else [p])]
        paths = convert_vidvrd(files, a.out, a.stride)
    print(f"wrote {len(paths)} sidecars to {a.out}")


if __name__ == "__main__":
    main()
