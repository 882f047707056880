"""``finsta-pl data compress --config <cfg> --out <folder> [--short-side 224] [--fps 3] [--workers N]``.

Decoding full-resolution footage is the data pipeline's bottleneck (a 720p H.264 clip costs about 165 ms for
8 frames at 224 px: 16 workers deliver about 100 clips/s, half of what one GPU trains on).  The field's answer,
CLIP4Clip's ``preprocess/compress_video.py``, is to transcode once to a short side of 224 px at a few frames
per second; this is that step for any dataset a config reads.

- Which videos: every file the config's DataModule indexes under its video folder (its ``video_pattern``).
- Names: each output keeps the input's path relative to the video folder, file name and extension included
  (decord and OpenCV probe the content, not the name), so readers and ``video_pattern`` work unchanged:
  point ``data.init_args.video_dir`` at ``--out``.
- Encoder: ``ffmpeg`` (H.264) when it is on ``PATH``, else OpenCV's own FFmpeg build (MPEG-4 Part 2, the
  encoder every ``opencv-python-headless`` wheel carries): a fresh machine with only the declared
  dependencies can run it.  GIFs stay GIFs (Pillow), since they are decoded by Pillow.
- Never upscales (a short side already under ``--short-side`` is kept) nor raises the frame rate; times are
  kept, so time windows (How2QA, YouCook2, Kinetics full videos) still select the same moments.
- Parallel (``--workers``, one process per file), resumable (outputs are written to a hidden temporary file
  and renamed when complete, so an existing output is done and a rerun skips it), and failures are reported
  per file (printed, and listed in ``<out>/compress_failures.tsv``; exit status 1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable

FAILURES = "compress_failures.tsv"


@dataclass(frozen=True)
class Job:
    """One video: its file, and where its compressed copy goes."""

    source: Path
    target: Path


@dataclass(frozen=True)
class Outcome:
    """What happened to one job: ``done``, ``skipped`` (already there) or ``failed`` (with the reason)."""

    job: Job
    status: str
    detail: str = ""
    seconds: float = 0.0


def plan(videos: Iterable[Path], video_dir: Path, out: Path) -> list[Job]:
    """A job per video, its target at the same path relative to ``video_dir`` under ``out``."""
    jobs = []
    for path in sorted(set(videos)):
        try:
            relative = path.relative_to(video_dir)
        except ValueError:  # a symlinked file resolved elsewhere: keep its name at the top of ``out``
            relative = Path(path.name)
        jobs.append(Job(path, out / relative))
    return jobs


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``(width, height)`` with the short side brought down to ``short_side`` (never up), both even (the
    encoders' chroma subsampling needs it), the aspect ratio kept."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def compress_one(job: Job, short_side: int, fps: float) -> Outcome:
    """Compress one video (or skip it when its output exists); never raises: a failure is an outcome."""
    start = time.perf_counter()
    if job.target.exists():
        return Outcome(job, "skipped")
    job.target.parent.mkdir(parents=True, exist_ok=True)
    gif = job.source.name.lower().endswith(".gif")
    partial = job.target.with_name(f".{job.target.name}.partial{'.gif' if gif else '.mp4'}")
    try:
        if gif:
            _compress_gif(job.source, partial, short_side, fps)
        elif shutil.which("ffmpeg"):
            _compress_ffmpeg(job.source, partial, short_side, fps)
        else:
            _compress_opencv(job.source, partial, short_side, fps)
        os.replace(partial, job.target)  # atomic: an existing target is always a complete one
    except Exception as exc:  # any decoder or encoder error: report it for this file and go on
        partial.unlink(missing_ok=True)
        return Outcome(job, "failed", f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
    return Outcome(job, "done", seconds=time.perf_counter() - start)


def _source_info(path: Path) -> tuple[float, int, int]:
    """Frame rate, width and height of a video, through OpenCV."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise OSError(f"{path}: cannot open video")
        return (capture.get(cv2.CAP_PROP_FPS) or 0.0, int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        capture.release()


def _compress_ffmpeg(source: Path, target: Path, short_side: int, fps: float) -> None:
    """H.264 through the ffmpeg binary (the container named explicitly: the target keeps any name)."""
    src_fps, width, height = _source_info(source)
    w, h = output_size(width, height, short_side)
    rate = min(fps, src_fps) if src_fps > 0 else fps
    cmd = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(source), "-map", "0:v:0", "-an",
           "-vf", f"fps={rate:g},scale={w}:{h}", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
           "-pix_fmt", "yuv420p", "-f", "mp4", str(target)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg exited {result.returncode}: {result.stderr.strip()[-300:]}")


def _compress_opencv(source: Path, target: Path, short_side: int, fps: float) -> None:
    """MPEG-4 Part 2 through OpenCV: every source frame is read in order and the one at each output time kept."""
    import cv2

    cv2.setNumThreads(1)  # one file per process: the processes are the parallelism
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise OSError("OpenCV cannot open it")
    src_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    rate = min(fps, src_fps) if src_fps > 0 else fps
    writer = None
    written, index = 0, 0
    try:
        while True:
            if not capture.grab():
                break
            # Keep the source frame nearest each output time k / rate (times are kept, so windows still hold).
            due = src_fps <= 0 or index / src_fps + 0.5 / src_fps >= written / rate
            index += 1
            if not due:
                continue
            ok, frame = capture.retrieve()
            if not ok:
                break
            if writer is None:
                size = output_size(frame.shape[1], frame.shape[0], short_side)
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), rate, size)
                if not writer.isOpened():
                    raise OSError("OpenCV cannot write MPEG-4 (mp4v)")
            if (frame.shape[1], frame.shape[0]) != size:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            writer.write(frame)
            written += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if not written:
        raise OSError("no frame could be decoded")


def _compress_gif(source: Path, target: Path, short_side: int, fps: float) -> None:
    """A smaller GIF through Pillow (GIFs are decoded with Pillow, so they stay GIFs)."""
    from PIL import Image, ImageSequence

    frames, durations, elapsed, next_time = [], [], 0.0, 0.0
    with Image.open(source) as image:
        size = output_size(image.width, image.height, short_side)
        for frame in ImageSequence.Iterator(image):
            delay = (frame.info.get("duration") or 100) / 1000.0
            if elapsed + 1e-6 >= next_time:
                frames.append(frame.convert("RGB").resize(size, Image.BILINEAR))
                durations.append(0.0)
                next_time += 1.0 / fps
            durations[-1] += delay
            elapsed += delay
    if not frames:
        raise OSError("no frame in the GIF")
    frames[0].save(target, save_all=True, append_images=frames[1:], duration=[int(1000 * d) for d in durations],
                   loop=0)


def compress_all(jobs: list[Job], short_side: int = 224, fps: float = 3.0, workers: int | None = None) -> list[Outcome]:
    """Run ``jobs`` in ``workers`` processes (spawned: no OpenCV thread pool is copied into them), printing
    each outcome as it comes; returns the outcomes in job order."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    outcomes: dict[Job, Outcome] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(compress_one, job, short_side, fps): job for job in jobs}
        for n, future in enumerate(as_completed(futures), start=1):
            outcome = future.result()
            outcomes[outcome.job] = outcome
            note = f": {outcome.detail}" if outcome.detail else f" ({outcome.seconds:.1f} s)" if outcome.seconds else ""
            print(f"[{n}/{len(jobs)}] {outcome.status:7s} {outcome.job.source}{note}", flush=True)
    return [outcomes[job] for job in jobs]


def main(argv: list[str]) -> int:
    """``finsta-pl data compress``; exit status 0 when every video is compressed or already was, 1 when some
    failed (listed per file), 2 when the data cannot be found."""
    parser = argparse.ArgumentParser(prog="finsta-pl data compress", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, help="config file(s), composed in order")
    parser.add_argument("--out", type=Path, required=True, help="folder of the compressed videos")
    parser.add_argument("--short-side", type=int, default=224, help="short side in pixels (never upscaled)")
    parser.add_argument("--fps", type=float, default=3.0, help="frames per second (never raised)")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    args, rest = parser.parse_known_args(argv)
    if args.short_side < 2 or args.fps <= 0:
        parser.error("--short-side must be at least 2 and --fps positive")
    from finsta_pl.cli import build_cli, expand_config_args
    from finsta_pl.data_modules.video import index_videos

    cli_args = expand_config_args([*(a for c in args.config for a in ("--config", c)), *rest])
    dm = build_cli([*cli_args, "--data.init_args.build_graphs=false"], run=False).datamodule
    video_dir = Path(dm.video_dir)
    out = args.out.expanduser().resolve()
    if out == video_dir.resolve():
        parser.error("--out must not be the video folder itself (the originals would be replaced)")
    jobs = plan(index_videos(video_dir, dm.video_pattern).values(), video_dir, out)
    encoder = "ffmpeg (H.264)" if shutil.which("ffmpeg") else "OpenCV (MPEG-4 Part 2)"
    print(f"{len(jobs)} videos under {video_dir} -> {out} (short side {args.short_side}, {args.fps:g} fps, {encoder})")
    outcomes = compress_all(jobs, args.short_side, args.fps, args.workers)
    failed = [o for o in outcomes if o.status == "failed"]
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    print(f"{counts['done']} compressed, {counts['skipped']} already done, {counts['failed']} failed")
    report = out / FAILURES
    if failed:
        out.mkdir(parents=True, exist_ok=True)
        report.write_text("video\treason\n" + "".join(f"{o.job.source}\t{o.detail}\n" for o in failed))
        print(f"failures listed in {report}; rerun to retry them (finished files are skipped)")
        return 1
    report.unlink(missing_ok=True)
    print(f"use them with: --data.init_args.video_dir={out}")
    return 0
