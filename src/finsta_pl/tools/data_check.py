"""``finsta-pl data check --config experiments/<dataset>_<task>.yaml``: what a run would find, before it runs.

Builds the config's DataModule (the same readers, video index and split lists as ``fit``) and sets it up for
the stage (``--stage fit`` by default: the same split resolution, so a split that ``fit`` needs and cannot find
is an error here too, naming the expected file and folder).  Then per split it counts records and samples,
videos found and missing, and opens a sample of the found videos (metadata only: frame count, frame rate,
size) to count unreadable files and report duration and resolution ranges and windows that start after their
video ends.  It prints the folder it searched for videos, and the missing and unreadable videos are written to
a TSV file (``split, sample id, video key, reason``; a missing video's reason lists the file names tried).
Exit status: 0 when everything was found and readable, 1 when something was missing or unreadable (see the
file), 2 when the data cannot be read at all (the message says where it looked).

``finsta-pl data compress ...`` is :mod:`finsta_pl.tools.compress`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class SplitReport:
    """Counts and ranges of one split."""

    samples: int = 0
    videos: int = 0
    missing: int = 0
    probed: int = 0
    unreadable: int = 0
    bad_windows: int = 0
    seconds: list[float] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (sample id, video key, reason)

    def row(self, split: str) -> str:
        """One table row."""
        dur = f"{min(self.seconds):.1f}-{max(self.seconds):.1f}" if self.seconds else "-"
        size = (f"{min(w for w, _ in self.sizes)}x{min(h for _, h in self.sizes)}-"
                f"{max(w for w, _ in self.sizes)}x{max(h for _, h in self.sizes)}") if self.sizes else "-"
        return (f"{split:6s} {self.samples:8d} {self.videos:7d} {self.missing:8d} {self.probed:7d} "
                f"{self.unreadable:11d} {self.bad_windows:12d} {dur:>13s} {size:>17s}")


def check_dataset(dataset: Any, sample: int, seed: int = 0, names_tried: Any = None) -> SplitReport:
    """Report on one :class:`~finsta_pl.data_modules.base.VideoTextDataset` (its specs and video map);
    ``names_tried(key)`` lists the file names searched for a missing video (the DataModule's)."""
    from finsta_pl.data_modules.video import BadSampleError, probe_video

    report = SplitReport(samples=len(dataset.specs))
    keys = {spec.video for spec in dataset.specs}
    report.videos = sum(key in dataset.videos for key in keys)
    for spec in dataset.specs:
        if spec.video not in dataset.videos:
            report.missing += 1
            tried = f": tried {', '.join(names_tried(spec.video))}" if names_tried is not None else ""
            report.problems.append((spec.id, spec.video, f"no video file{tried}"))
    present = [s for s in dataset.specs if s.video in dataset.videos]
    rng = np.random.default_rng(seed)
    picked = [present[i] for i in sorted(rng.choice(len(present), min(sample, len(present)), replace=False))]
    probed: dict[str, Any] = {}
    for spec in picked:
        if spec.video not in probed:
            try:
                probed[spec.video] = probe_video(dataset.videos[spec.video])
            except BadSampleError as exc:
                probed[spec.video] = exc
        info = probed[spec.video]
        report.probed += 1
        if isinstance(info, BadSampleError):
            report.unreadable += 1
            report.problems.append((spec.id, spec.video, str(info)))
            continue
        report.seconds.append(info.seconds)
        report.sizes.append((info.width, info.height))
        if spec.window is not None and info.fps > 0 and spec.window[0] >= info.seconds:
            report.bad_windows += 1
            report.problems.append((spec.id, spec.video, f"window {spec.window} starts after the end ({info.seconds:.1f} s)"))
    return report


def main(argv: list[str]) -> int:
    """``finsta-pl data check --config ... [--stage fit] [--sample N] [--report FILE]`` (or ``data compress``)."""
    if argv and argv[0] == "compress":
        from finsta_pl.tools.compress import main as compress

        return compress(argv[1:])
    if not argv or argv[0] != "check":
        print("usage: finsta-pl data check --config CONFIG [--config ...] [--stage fit|validate|test] [--sample N] "
              "[--report FILE] [overrides]\n       finsta-pl data compress --config CONFIG --out FOLDER "
              "[--short-side 224] [--fps 3] [--workers N]")
        return 2
    parser = argparse.ArgumentParser(prog="finsta-pl data check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, help="config file(s), composed in order")
    parser.add_argument("--stage", default="fit", choices=("fit", "validate", "test", "predict"),
                        help="the run to check for: its splits must all be found (default: fit)")
    parser.add_argument("--sample", type=int, default=50, help="videos opened per split (metadata only)")
    parser.add_argument("--report", type=Path, default=None,
                        help="TSV of missing and unreadable videos (default: data_check_<config stem>.tsv)")
    args, rest = parser.parse_known_args(argv[1:])
    from finsta_pl.cli import build_cli, expand_config_args

    cli_args = expand_config_args([*(a for c in args.config for a in ("--config", c)), *rest])
    cli = build_cli([*cli_args, "--data.init_args.build_graphs=false"], run=False)  # files only, no graphs
    dm = cli.datamodule
    dm.trainer = cli.trainer  # the same split resolution as the run: fit validates unless the trainer does not
    dm.setup(args.stage)
    print(f"{type(dm).__name__} at {getattr(dm, 'root', '?')}")
    print(f"videos searched: {getattr(dm, 'video_dir', '?')} and every sub-folder, file names "
          f"{getattr(dm, 'video_pattern', '{id}')}[.<any video extension>]")
    print(f"{'split':6s} {'samples':>8s} {'videos':>7s} {'missing':>8s} {'opened':>7s} {'unreadable':>11s} "
          f"{'bad windows':>12s} {'duration (s)':>13s} {'size (WxH)':>17s}")
    tried = getattr(dm, "names_tried", None)
    reports = {split: check_dataset(ds, args.sample, names_tried=tried) for split, ds in dm.datasets.items()}
    for split, report in reports.items():
        print(report.row(split))
    problems = [(split, *p) for split, r in reports.items() for p in r.problems]
    for split, sample_id, key, reason in problems[:5]:
        print(f"  {split} {sample_id}: {reason}")
    path = args.report or Path(f"data_check_{Path(args.config[0]).stem}.tsv")
    path.write_text("split\tsample\tvideo\treason\n" + "".join("\t".join(p) + "\n" for p in problems))
    print(f"{len(problems)} problem(s) written to {path}" if problems else f"no problems (empty list in {path})")
    return 1 if problems else 0
