"""``finsta-pl detect --config <cfg> --out <folder>``: detect once, train many times.

Runs the config's frame detector (``data.init_args.graphs.detector``: ``torchvision``, or ``motion``/``grid``)
over every video of every split and writes one sidecar per video in the ``precomputed`` schema
(``graphs/precomputed.py``), which ``detector: precomputed`` with ``detector_args.root: <folder>`` then reads.

- Lightning ``predict``: videos are decoded in DataLoader workers (every ``--stride``-th source frame, the
  longer side at most ``--max-side`` pixels), the detector runs batched on the accelerator
  (``--accelerator``/``--devices``; with several devices each rank writes its share of the videos).
- Resumable: a video whose sidecar exists is skipped (sidecars are written atomically, so one that exists is
  whole).  Unreadable videos are counted and listed, never fatal.
- The sidecar's ``frame_size`` is the decoded size, so boxes rescale to whatever size training decodes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Dataset

from finsta_pl.errors import BadSampleError, FinstaError
from finsta_pl.graphs.detect import Detection, Detector, make_detector
from finsta_pl.graphs.precomputed import write_sidecar
from finsta_pl.safety import inside_root


@dataclass
class VideoFrames:
    """Decoded frames of one video for detection (``frames`` is ``None`` and ``error`` says why when the
    video cannot be read)."""

    key: str
    frames: np.ndarray | None
    indices: list[int]
    error: str = ""


class VideoFramesDataset(Dataset):
    """Every ``stride``-th frame of each video, resized so the longer side is at most ``max_side``."""

    def __init__(self, videos: dict[str, Path], stride: int, max_side: int) -> None:
        self.items, self.stride, self.max_side = sorted(videos.items()), stride, max_side

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> VideoFrames:
        key, path = self.items[index]
        try:
            return VideoFrames(key, *self._decode(path))
        except Exception as exc:  # decord/Pillow errors of a broken file: counted, the run goes on
            return VideoFrames(key, None, [], f"{path}: {type(exc).__name__}: {exc}")

    def _decode(self, path: Path) -> tuple[np.ndarray, list[int]]:
        from finsta_pl.data_modules.video import decode_frames, probe_video

        info = probe_video(path)
        if info.frames == 0:
            raise BadSampleError(f"{path}: no frames")
        scale = min(1.0, self.max_side / max(info.width, info.height)) if self.max_side else 1.0
        size = (max(1, round(info.height * scale)), max(1, round(info.width * scale)))
        indices = list(range(0, info.frames, self.stride))
        return decode_frames(path, indices, size), indices


def _detections_json(dets: list[Detection]) -> list[dict[str, Any]]:
    return [{"box": [round(v, 2) for v in d.box], "label": d.label, "score": round(d.score, 4),
             "attributes": list(d.attributes)} for d in dets]


class SidecarWriter(L.LightningModule):
    """Predict-only module: detects each video's frames on this module's device and writes its sidecar."""

    def __init__(self, detector: Detector, out: Path) -> None:
        super().__init__()
        self.detector, self.out = detector, out
        self.written: list[str] = []
        self.failed: list[str] = []

    def on_predict_start(self) -> None:
        """Run the detector where Lightning put this module (the accelerator of this rank)."""
        if hasattr(self.detector, "device") and getattr(self.detector, "device") != str(self.device):
            self.detector.device = str(self.device)
            self.detector._net = None  # rebuilt on that device at first use

    def predict_step(self, batch: list[VideoFrames], batch_idx: int) -> None:
        """One video per step: detect all its frames (batched inside the detector) and write the sidecar."""
        for video in batch:
            if video.frames is None:
                self.failed.append(video.error)
                continue
            per_frame = self.detector(video.frames)
            write_sidecar({"video": video.key, "frame_size": list(video.frames.shape[1:3]),
                           "frames": [{"frame": i, "objects": _detections_json(d)}
                                      for i, d in zip(video.indices, per_frame)]}, self.out, "detect")
            self.written.append(video.key)

    def configure_optimizers(self) -> None:
        """Nothing to train."""
        return None


def detect_videos(videos: dict[str, Path], detector: Detector, out: str | Path, stride: int = 8,
                  max_side: int = 640, num_workers: int = 2, **trainer: Any) -> dict[str, Any]:
    """Write the sidecars of ``videos`` (key -> file) under ``out``, skipping keys that have one; returns the
    counts (``written``, ``skipped``, ``failed`` with their reasons).  ``trainer``: Trainer arguments."""
    out = Path(out)
    todo = {k: p for k, p in videos.items() if not inside_root(out, f"{k}.json", f"detect: video {k!r}").is_file()}
    writer = SidecarWriter(detector, out)
    if todo:
        loader = DataLoader(VideoFramesDataset(todo, stride, max_side), batch_size=1, num_workers=num_workers,
                            collate_fn=list)
        args = {"accelerator": "auto", "devices": 1, "logger": False, "enable_progress_bar": False,
                "enable_model_summary": False, **trainer}
        L.Trainer(**args).predict(writer, loader, return_predictions=False)
    return {"written": len(writer.written), "skipped": len(videos) - len(todo), "failed": writer.failed}


def main(argv: list[str]) -> int:
    """``finsta-pl detect --config CFG --out DIR [--stride N] [--max-side PX] [--accelerator A] [overrides]``."""
    parser = argparse.ArgumentParser(prog="finsta-pl detect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, help="config file(s), composed in order")
    parser.add_argument("--out", type=Path, required=True, help="folder of the sidecars (<video key>.json)")
    parser.add_argument("--stride", type=int, default=8, help="detect every N-th source frame")
    parser.add_argument("--max-side", type=int, default=640, help="decode with the longer side at most this (0: native)")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--devices", default="1", help="devices (several: each rank writes its share)")
    parser.add_argument("--num-workers", type=int, default=2, help="decoding workers")
    args, rest = parser.parse_known_args(argv)
    from finsta_pl.cli import build_cli, expand_config_args

    cli_args = expand_config_args([*(a for c in args.config for a in ("--config", c)), *rest])
    cli = build_cli([*cli_args, "--data.init_args.build_graphs=false"], run=False)  # files only
    dm = cli.datamodule
    graphs = dm.graph_config
    if graphs.detector == "precomputed":
        raise FinstaError("finsta-pl detect runs a frame detector and writes sidecars; the config's detector is "
                          "'precomputed'. Set --data.init_args.graphs.detector=torchvision (and detector_args)")
    detector = make_detector(graphs.detector, **graphs.detector_args)
    dm.setup("fit")
    videos = {s.video: ds.videos[s.video] for ds in dm.datasets.values() for s in ds.specs if s.video in ds.videos}
    devices: Any = int(args.devices) if args.devices.isdigit() else args.devices
    counts = detect_videos(videos, detector, args.out, args.stride, args.max_side, args.num_workers,
                           accelerator=args.accelerator, devices=devices)
    print(f"detect: {counts['written']} sidecars written, {counts['skipped']} already there, "
          f"{len(counts['failed'])} unreadable videos -> {args.out}")
    for reason in counts["failed"]:
        print(f"  unreadable: {reason}")
    return 1 if counts["failed"] else 0
