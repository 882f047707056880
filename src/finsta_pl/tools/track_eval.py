"""Tracking quality on the embedded world's gold tracks: MOTA and IDF1 (motmetrics) of the DSG tracker, side by
side with the tracker of stop 16 (no class or appearance cost, no motion prediction, unbounded memory), on the
same detections.  ``miss_rate`` drops that share of detections (seeded) to measure how tracks survive missed
frames, the failure a real detector adds.  Used by ``finsta-pl sg-eval --tracking``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from finsta_pl.errors import DataNotFoundError
from finsta_pl.graphs.detect import Detection, make_detector
from finsta_pl.graphs.dsg import DSGConfig, _iou, track

#: the rows of the table: name -> tracker settings.
TRACKERS: dict[str, DSGConfig] = {
    "stop-16 tracker": DSGConfig(class_weight=0.0, appearance_weight=0.0, max_age=0, predict=False),
    "current tracker": DSGConfig(),
}


def _drop(detections: list[list[Detection]], rate: float, rng: np.random.Generator) -> list[list[Detection]]:
    return [[d for d in dets if rng.random() >= rate] for dets in detections]


def _iou_distance(gold: np.ndarray, pred: np.ndarray, min_iou: float = 0.5) -> np.ndarray:
    """motmetrics' distance matrix: ``1 - IoU``, NaN (no match possible) below ``min_iou``.  Ours, because
    motmetrics 1.4's ``iou_matrix`` calls ``np.asfarray``, gone in NumPy 2."""
    iou = _iou(gold, pred) if len(gold) and len(pred) else np.zeros((len(gold), len(pred)))
    return np.where(iou >= min_iou, 1 - iou, np.nan)


def evaluate_tracking(root: Path, detector: str = "motion", num_frames: int = 8, miss_rate: float = 0.0,
                      seed: int = 0) -> dict[str, dict[str, float]]:
    """``{tracker: {mota, idf1, switches, ...}}`` over every gold video under ``root/scene_graphs``."""
    import motmetrics as mm

    from finsta_pl.data_modules.video import decode_clip

    files = sorted((root / "scene_graphs").glob("video*.json"), key=lambda p: int(p.stem[5:]))
    if not files:
        raise DataNotFoundError(f"{root / 'scene_graphs'}: no gold scene graphs (video*.json) here")
    detect = make_detector(detector)
    accumulators: dict[str, list[Any]] = {name: [] for name in TRACKERS}
    for n, f in enumerate(files):
        gold = json.loads(f.read_text())
        frames, idx = decode_clip(root / "videos" / f"{gold['video_id']}.mp4", num_frames)
        dets = _drop(detect(frames), miss_rate, np.random.default_rng([seed, n]))
        scale = np.array(gold["frame_size"][::-1] * 2, float) / np.array(frames.shape[2:0:-1] * 2, float)
        for name, config in TRACKERS.items():
            ids = track(dets, float(max(frames.shape[1:3])), config)
            acc = mm.MOTAccumulator(auto_id=True)
            for k, src in enumerate(idx.tolist()):
                gboxes = gold["frames"][src]["boxes"]
                g = np.array([b["box"] for b in gboxes], float).reshape(-1, 4)
                h = np.array([d.box for d in dets[k]], float).reshape(-1, 4) * scale
                dist = _iou_distance(g, h)
                acc.update([b["object"] for b in gboxes], ids[k], dist)
            accumulators[name].append(acc)
    mh = mm.metrics.create()
    out = {}
    for name, accs in accumulators.items():
        summary = mh.compute_many(accs, metrics=["mota", "idf1", "num_switches", "num_fragmentations", "precision",
                                                  "recall"], names=[str(i) for i in range(len(accs))],
                                  generate_overall=True)
        row = summary.loc["OVERALL"]
        out[name] = {"mota": float(row["mota"]), "idf1": float(row["idf1"]), "switches": int(row["num_switches"]),
                     "fragmentations": int(row["num_fragmentations"]), "precision": float(row["precision"]),
                     "recall": float(row["recall"])}
    return out


def format_tracking(result: dict[str, dict[str, float]], miss_rate: float) -> str:
    """The comparison as a text table."""
    lines = [f"tracking (motmetrics), detections dropped at rate {miss_rate:.2f}",
             f"{'tracker':<18}{'MOTA':>7}{'IDF1':>7}{'IDsw':>6}{'frag':>6}{'P':>7}{'R':>7}"]
    for name, m in result.items():
        lines.append(f"{name:<18}{m['mota']:>7.3f}{m['idf1']:>7.3f}{m['switches']:>6}{m['fragmentations']:>6}"
                     f"{m['precision']:>7.3f}{m['recall']:>7.3f}")
    return "\n".join(lines)
