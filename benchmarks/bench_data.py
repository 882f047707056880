"""Data pipeline: clips/s of the video-QA DataModule with scene graphs against a decode-only loader.

Every loader reads the same training records of the embedded world with the same frame sampling (8 frames,
random offsets of epoch 0), batch size and worker count; the decode-only one is the same DataModule with
``build_graphs: false`` (decode, text encoding, collate: what a host-only run pays).  Variants are timed
round-robin, one full pass each in turn, and the figure is clips/s relative to decode-only of the same round
and worker count.  ``cold``: an empty DSG cache; ``warm``: every keyframe of the epoch already cached (what
each epoch sees once the videos' frames have been sampled, see the hit-rate table).  The stage table comes
from the workers' own per-sample timings (``Sample.timings``, summed in ``FinstaBatch.worker_seconds``).

    python benchmarks/bench_data.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import finsta_pl  # noqa: F401  (before lightning: the torchvision shim)
import torch

from benchmarks.report import Section, markdown_table
from finsta_pl.data_modules import VideoQADataModule
from finsta_pl.data_modules.base import ClipConfig, LoaderConfig
from finsta_pl.data_modules.graph_builder import GraphConfig
from finsta_pl.data_modules.video import decode_frames, probe_video
from finsta_pl.graphs.detect import MotionDetector
from finsta_pl.graphs.precomputed import write_sidecar

STAGES = ("decode", "text", "detect", "track", "parse", "link", "collate")


@dataclass(frozen=True)
class Variant:
    """One loader: ``graphs`` None is decode-only; ``warm`` fills the cache with one untimed pass first."""

    name: str
    graphs: dict[str, Any] | None = None
    warm: bool = False

    @property
    def cached(self) -> bool:
        """Whether the variant uses the DSG cache (then cold means an empty one)."""
        return bool(self.graphs and self.graphs.get("cache"))


@dataclass
class Bench:
    """The records, the sidecar folder and a cache folder per variant of one benchmark run."""

    samples: int
    batch_size: int
    work: Path
    modules: dict[tuple[str, int], VideoQADataModule] = field(default_factory=dict)

    def module(self, variant: Variant, workers: int) -> VideoQADataModule:
        """The DataModule of ``variant`` with ``workers`` (built once; the first ``samples`` training records)."""
        key = (variant.name, workers)
        if key not in self.modules:
            graphs = dict(variant.graphs or {})
            if graphs.get("cache"):
                graphs["cache_dir"] = str(self.work / "cache" / variant.name.replace(" ", "_"))
            dm = VideoQADataModule(
                dataset="synthetic", clip=ClipConfig(num_frames=8, frame_size=64),
                loader=LoaderConfig(batch_size=self.batch_size, num_workers=workers),
                graphs=GraphConfig(**graphs), build_graphs=variant.graphs is not None)
            dm.setup("fit")
            train = dm.datasets["train"]
            train.specs = train.specs[: self.samples]
            self.modules[key] = dm
        return self.modules[key]


def one_pass(dm: VideoQADataModule, epoch: int = 0) -> tuple[float, int, dict[str, float]]:
    """Seconds for one pass over the training loader, clips seen, and the workers' seconds per stage."""
    dm.set_epoch(epoch)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    clips, stages = 0, dict.fromkeys(STAGES, 0.0)
    start = time.perf_counter()
    for batch in loader:
        clips += batch.batch_size
        for stage, seconds in batch.worker_seconds.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    return time.perf_counter() - start, clips, stages


def write_motion_sidecars(dm: VideoQADataModule, out: Path) -> int:
    """Sidecars of every source frame of the records' videos from the motion detector at the clip size: the
    ``precomputed`` detector then reads what an offline ``finsta-pl detect`` run would have written."""
    detector = MotionDetector()
    paths = {s.video: dm.datasets["train"].videos[s.video] for s in dm.datasets["train"].specs}
    side = dm.clip.frame_size
    for key, path in paths.items():
        frames = decode_frames(path, list(range(probe_video(path).frames)), (side, side))
        per_frame = detector(frames)
        write_sidecar({"video": key, "frame_size": [side, side], "frames": [
            {"frame": i, "objects": [{"box": list(d.box), "label": d.label, "score": d.score,
                                      "attributes": list(d.attributes)} for d in dets]}
            for i, dets in enumerate(per_frame)]}, out, "bench")
    return len(paths)


def variants(work: Path, quick: bool) -> list[Variant]:
    """Decode-only, then motion and precomputed (cold, warm) with the rule parser, spaCy and torchvision."""
    sidecars = {"detector": "precomputed", "detector_args": {"root": str(work / "sidecars")}}
    out = [Variant("decode only"),
           Variant("motion + rule, cold", {"cache": True}),
           Variant("motion + rule, warm", {"cache": True}, warm=True),
           Variant("precomputed + rule, cold", {**sidecars, "cache": True}),
           Variant("precomputed + rule, warm", {**sidecars, "cache": True}, warm=True)]
    if not quick:
        out += [Variant("motion + spacy, cold", {"parser": "spacy", "cache": True}),
                Variant("torchvision + rule, cold", {"detector": "torchvision", "cache": True, "detector_args": {
                    "model": "fasterrcnn_mobilenet_v3_large_fpn", "weights": None, "min_size": 64,
                    "max_size": 64, "score_threshold": 0.05}})]
    return out


def measure(quick: bool, work: Path) -> dict[str, Any]:
    """Clips/s of every variant and worker count (medians over rounds), stages per clip and cache hit rates."""
    bench = Bench(samples=48 if quick else 192, batch_size=16, work=work)
    rounds, worker_counts = (1, (0, 2)) if quick else (3, (0, 1, 2))
    todo = variants(work, quick)
    write_motion_sidecars(bench.module(todo[0], 0), work / "sidecars")
    rates: dict[tuple[str, int], list[float]] = {}
    stages: dict[str, dict[str, float]] = {}
    for workers in worker_counts:
        for v in todo:
            if v.warm:  # fill the cache (every keyframe of epoch 0) before the timed passes
                one_pass(bench.module(v, workers))
        for _ in range(rounds):
            for v in todo:
                if v.cached and not v.warm:
                    shutil.rmtree(work / "cache" / v.name.replace(" ", "_"), ignore_errors=True)
                seconds, clips, per_stage = one_pass(bench.module(v, workers))
                rates.setdefault((v.name, workers), []).append(clips / seconds)
                if workers == 0:
                    stages[v.name] = {k: 1e3 * s / clips for k, s in per_stage.items()}
    return {"rates": {k: statistics.median(r) for k, r in rates.items()}, "stages": stages,
            "hits": hit_rates(bench, epochs=3 if quick else 5), "variants": todo, "workers": worker_counts,
            "samples": bench.samples, "rounds": rounds}


def hit_rates(bench: Bench, epochs: int) -> list[tuple[int, float, float]]:
    """Per training epoch (new random offsets each): the share of keyframes found in the detection cache
    and of DSGs found in the graph cache, from a cold start, in one process (``num_workers: 0``)."""
    v = Variant("hit rate", {"cache": True})
    shutil.rmtree(bench.work / "cache" / "hit_rate", ignore_errors=True)
    dm = bench.module(v, 0)
    builder = dm._graph_builder
    out = []
    for epoch in range(epochs):
        frames = (builder.frame_cache.hits, builder.frame_cache.misses) if builder.frame_cache else (0, 0)
        one_pass(dm, epoch)
        fh = builder.frame_cache.hits - frames[0] if builder.frame_cache else 0
        fm = builder.frame_cache.misses - frames[1] if builder.frame_cache else 0
        out.append((epoch, fh / max(fh + fm, 1), 0.0))
    return out


def run(quick: bool, out_dir: Path) -> Section:
    """The data-pipeline section of BENCHMARKS.md."""
    torch.set_num_threads(1)  # workers and the main process share the cores; torch is not the work here
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="finsta_bench_data_") as tmp:
        m = measure(quick, Path(tmp))
    rates, workers = m["rates"], m["workers"]
    rows = []
    for v in m["variants"]:
        row: list[object] = [v.name]
        for w in workers:
            row += [f"{rates[(v.name, w)]:.0f}", rates[(v.name, w)] / rates[("decode only", w)]]
        rows.append(row)
    header = ["loader"] + [c for w in workers for c in (f"clips/s, {w} workers", f"vs decode-only, {w}")]
    stage_rows = [[name] + [s.get(k, 0.0) for k in STAGES] + [sum(s.values())] for name, s in m["stages"].items()]
    hit_rows = [(epoch, frames) for epoch, frames, _ in m["hits"]]
    best = max(workers)
    headline = {f"{v.name} / decode-only ({best} workers)": rates[(v.name, best)] / rates[("decode only", best)]
                for v in m["variants"][1:5]}
    md = "\n\n".join([
        f"{m['samples']} training clips of the embedded world (video QA, 8 frames of 64x64, batch 16), "
        f"median of {m['rounds']} interleaved rounds.",
        markdown_table(header, rows),
        "Where a worker's time goes, ms per clip (`num_workers: 0`, the workers' own timings):",
        markdown_table(["loader", *STAGES, "total"], stage_rows),
        "Detection cache across training epochs (new random offsets each epoch, cold start): share of "
        "keyframes whose detections were cached.",
        markdown_table(["epoch", "keyframes from the cache"], hit_rows),
    ])
    return Section("Data pipeline", md, "python benchmarks/bench_data.py" + (" --quick" if quick else ""),
                   headline=headline, seconds=time.perf_counter() - start)


def main() -> None:
    """Print the section."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(run(args.quick, Path("benchmarks/plots")).markdown)


if __name__ == "__main__":
    main()
