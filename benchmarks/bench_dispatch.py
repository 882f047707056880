"""Launches and host syncs of the Finsta encoder: the hardware-independent figures on CPU, and a GPU section when
CUDA is present.

On a GPU the encoder is launch-bound: every dispatched operator is at least one kernel launch, and every host
sync stalls the launch queue.  Both are counted here on any machine with ``finsta_pl.tools.dispatch_count``
(one encoder forward + backward, the videoqa config), with the dense kernel (what a GPU runs: PyPI's DGL is
CPU-only) and with ``auto``.  They should grow with layers, frames and loss terms, never with the number of
graphs in a batch.

With CUDA (``gpu_rows``): the encoder against the SDPA encoder over the same node tokens, the training step of a
CLIP4Clip host at ViT-B/32 shape with and without Finsta, kernel launches per step (torch.profiler), peak
memory, and the cost of ``trainer.deterministic``; all in bf16 autocast, batch 32, 8 frames.  Its functions take
a device, so the tests run them on CPU at toy size.

Usage: python -m benchmarks.bench_dispatch [--quick]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench_encoder import SdpaEncoder, encoder_loss, encoder_step, padded_tokens, sdpa_step, set_backend
from benchmarks.bench_step import CLIP_TASKS, _clip_host, clip_configs, host_only, train_step
from benchmarks.report import Section, interleaved_medians, markdown_table, section_main
from benchmarks.workload import TINY_CONFIGS, build_task, object_batch, train_batch
from finsta_pl.tools.dispatch_count import count_by_part, count_dispatch

CONFIG = "experiments/videoqa.yaml"
#: counts before issue 23 (commit 625119b, same counter, videoqa config, 32x8x16): a Python walk over frames with
#: a ``nonzero`` per frame, selections by boolean masks, padding sizes read off the device.
BEFORE = {"dense": (6621, 91), "auto": (6529, 47)}


def count_row(model: Any, batch: Any, backend: str) -> tuple[int, int, int, str]:
    """``(operators, host syncs, operators that run a kernel, the syncing operators)`` of one encoder
    forward + backward."""
    set_backend(model, backend)
    step = encoder_step(model, batch)
    step()  # warm: a first call may set things up
    c = count_dispatch(step)
    return c.ops, c.syncs, c.launches, ", ".join(f"{k} x{v}" for k, v in c.by_sync.most_common()) or "-"


def cpu_rows(model: Any, dm: Any, sizes: list[tuple[int, int, int]]) -> list[tuple]:
    """Count rows ``(b x t x o, backend, operators, syncs, kernels, which)`` for each ``(batch, frames,
    objects)``."""
    rows = []
    for b, t, o in sizes:
        batch = object_batch(dm, b, o, frames=t)
        for backend in ("dense", "auto"):
            rows.append((f"{b}x{t}x{o}", backend, *count_row(model, batch, backend)))
    return rows


def part_rows(model: Any, batch: Any) -> list[tuple]:
    """Where one dense encoder step's operators are: ``(part, operators, share of the step, kernels)`` per part
    (the frame recurrence, the GTrm layers, STGD, the objectives, the rest of the streams), then the backward."""
    from finsta_pl.nn.gtrm import GTrmLayer
    from finsta_pl.nn.objectives import FinstaObjectives
    from finsta_pl.nn.rgtrm import RECURRENCES, STGD

    set_backend(model, "dense")
    loss = encoder_loss(model, batch)
    loss().backward()  # warm, as count_row
    model.zero_grad(set_to_none=True)
    parts = count_by_part(model.finsta, loss, (*RECURRENCES.values(), GTrmLayer, STGD, FinstaObjectives))
    model.zero_grad(set_to_none=True)
    total = sum(parts.forward.values()) + parts.backward
    names = {**{r.__name__: f"frame recurrence, {k} (forward)" for k, r in RECURRENCES.items()},
             "GTrmLayer": "GTrm layers (forward)",
             "STGD": "STGD's update (forward; its saliency, a method the streams call, counts with them)", "FinstaObjectives": "objectives: OSC, PTC, HSG contrast, distillation (forward)",
             "other": "the streams' featurising, linking, pooling, readout, STGD saliency and loss weighting "
                      "(forward)"}
    rows = [(names[k], v, f"{v / total:.0%}", parts.forward_kernels[k]) for k, v in parts.forward.most_common()]
    return rows + [("backward, all parts", parts.backward, f"{parts.backward / total:.0%}", parts.backward_kernels)]


def autocast(device: torch.device) -> Any:
    """bf16 autocast on a GPU (how the shipped GPU configs train); nothing on CPU, where it would time casts."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def timed(device: torch.device, variants: dict[str, Callable[[], None]], warmup: int, runs: int) -> dict[str, float]:
    """Interleaved medians in seconds, each call synchronised on a GPU so its kernels are inside its time."""
    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def call() -> None:
            with autocast(device):
                fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
        return call

    return interleaved_medians({k: wrap(v) for k, v in variants.items()}, warmup, runs)


def kernel_launches(device: torch.device, fn: Callable[[], None]) -> int:
    """Device kernels of one call of ``fn`` (torch.profiler; on CPU the count of operator events instead)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        with autocast(device):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
    events = prof.events()
    if device.type == "cuda":
        return sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    return len(events)


def encoder_figures(model: Any, batch: Any, device: torch.device, warmup: int, runs: int) -> dict[str, float]:
    """Encoder (auto) vs SDPA ms and ratio, deterministic on/off ratio, launches, syncs and peak MiB per step."""
    model.to(device)
    batch = batch.to(device)
    set_backend(model, "auto")
    step = encoder_step(model, batch)
    cfg = model.finsta_config
    sdpa = SdpaEncoder(model.host.dim, cfg.heads, {"tsg": cfg.tsg_layers, "dsg": cfg.dsg_blocks,
                                                  "hsg": cfg.hsg_blocks}).to(device)
    tokens = {k: (x.to(device), keep.to(device)) for k, (x, keep) in padded_tokens(batch.to("cpu"), model.host.dim).items()}

    def deterministic() -> None:
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            step()
        finally:
            torch.use_deterministic_algorithms(False)

    ms = timed(device, {"sdpa": sdpa_step(sdpa, tokens), "encoder": step, "deterministic": deterministic},
               warmup, runs)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with autocast(device):
        step()
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    counted = count_dispatch(step)
    return {"sdpa ms": 1e3 * ms["sdpa"], "encoder ms": 1e3 * ms["encoder"], "encoder/SDPA": ms["encoder"] / ms["sdpa"],
            "deterministic / not": ms["deterministic"] / ms["encoder"], "launches": kernel_launches(device, step),
            "syncs": counted.syncs, "peak MiB": peak}


def step_figures(configs: list[str], overrides: list[str], batch_size: int, device: torch.device, warmup: int,
                 runs: int) -> dict[str, float]:
    """One training step of host + Finsta and of the host alone on ``device``: ms, ratio, launches, peak MiB."""
    torch.manual_seed(0)
    model, dm = build_task(configs, overrides, batch_size)
    model.train().to(device)
    batch = train_batch(dm).to(device)
    full, host = train_step(model, batch), train_step(model, host_only(batch))
    ms = timed(device, {"host": host, "full": full}, warmup, runs)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timed(device, {"full": full}, 0, 1)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return {"host ms": 1e3 * ms["host"], "host+Finsta ms": 1e3 * ms["full"], "ratio": ms["full"] / ms["host"],
            "launches host": kernel_launches(device, host), "launches host+Finsta": kernel_launches(device, full),
            "peak MiB": peak}


def gpu_rows(device: torch.device, tiny: bool = False) -> tuple[list[tuple], list[tuple], dict[str, float]]:
    """Encoder rows, step rows and headline ratios on ``device`` (``tiny``: the tests' world and model)."""
    extra = TINY_CONFIGS if tiny else []
    batch_size, runs = (4, 1) if tiny else (32, 5)
    model, dm = build_task([CONFIG, *extra], batch_size=batch_size)
    model.train()
    enc_rows, headline = [], {}
    for objects in ([2] if tiny else [4, 16]):
        f = encoder_figures(model, object_batch(dm, batch_size, objects), device, 1, runs)
        enc_rows.append((f"{batch_size}x8x{objects}", *f.values()))
        headline[f"GPU encoder/SDPA at {batch_size}x8x{objects}"] = f["encoder/SDPA"]
        headline[f"GPU deterministic/not at {batch_size}x8x{objects}"] = f["deterministic / not"]
    step_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [] if tiny else clip_configs(Path(tmp) / "clip")
        for task in CLIP_TASKS[:1] if tiny else CLIP_TASKS:
            config = f"experiments/{task}.yaml" if tiny or task != "videoqa" else "experiments/videoqa_clip4clip.yaml"
            host = [] if tiny else _clip_host(task)
            f = step_figures([config, *extra], host + overrides, batch_size, device, 1, runs)
            step_rows.append((task, *f.values()))
            headline[f"GPU step host+Finsta / host, {task}"] = f["ratio"]
    return enc_rows, step_rows, headline


ENCODER_HEADER = ("batch x frames x objects", "SDPA ms", "encoder ms", "encoder/SDPA", "deterministic / not",
                  "kernel launches", "host syncs", "peak MiB")
STEP_HEADER = ("task", "host ms", "host+Finsta ms", "ratio", "launches host", "launches host+Finsta", "peak MiB")


def run(quick: bool, out_dir: Path, tiny: bool = False) -> Section:
    """The CPU counts (32x8x16 headline, sweeps over frames and batch), then the GPU section if CUDA is here."""
    t0 = time.perf_counter()
    torch.set_num_threads(2)
    model, dm = build_task([CONFIG, *(TINY_CONFIGS if tiny else [])], batch_size=8)
    model.train()
    if tiny:
        sizes = [(12, 8, 2), (24, 8, 2)]  # enough texts for two pairs of every loss in both
    elif quick:
        sizes = [(8, 8, 4), (16, 8, 4), (8, 4, 4)]
    else:
        sizes = [(32, 8, 16), (8, 8, 4), (16, 8, 4), (32, 8, 4), (8, 4, 4), (8, 16, 4)]
    rows = cpu_rows(model, dm, sizes)
    # The same counts with the parallel-scan recurrence (finsta.recurrence: scan), dense kernel only.
    scan, _ = build_task([CONFIG, *(TINY_CONFIGS if tiny else [])], ["--model.init_args.finsta.recurrence=scan"],
                         batch_size=8)
    scan.train()
    for b, t, o in sizes:
        rows.append((f"{b}x{t}x{o}", "dense, scan", *count_row(scan, object_batch(dm, b, o, frames=t), "dense")))
    headline = {}
    first = rows[0][0]  # the headline size; the other rows show what the counts grow with
    for size, backend, ops, syncs, kernels, _ in rows:
        if size == first:
            headline[f"operators per encoder step at {size} ({backend})"] = float(ops)
            headline[f"host syncs per encoder step at {size} ({backend})"] = float(syncs)
            headline[f"operators that run a kernel per encoder step at {size} ({backend})"] = float(kernels)
    before = ", ".join(f"{k}: {o} operators, {s} syncs" for k, (o, s) in BEFORE.items())
    md = ["Operators dispatched and host syncs in one encoder forward + backward (videoqa streams: TSG "
          f"{model.finsta_config.tsg_layers}, DSG {model.finsta_config.dsg_blocks}, HSG "
          f"{model.finsta_config.hsg_blocks} layers), counted with `finsta_pl.tools.dispatch_count` on CPU; each "
          "operator is at least one kernel launch on a GPU, each sync stalls its queue.  `dense` is the kernel a "
          "GPU runs; `auto` on CPU hands large graphs to DGL, whose own kernels the counter does not see.  "
          f"Before issue 23 (commit 625119b, 32x8x16): {before}.  `kernels`: the operators less views "
          "(`detach`, `t`, `view`, `split`, ...) and metadata queries, which make a tensor header and launch "
          "nothing: on a GPU about one launch each.  `dense, scan`: the dense kernel with "
          "`finsta.recurrence: scan`, the frame recurrence as a parallel scan (log2 of the frames in steps; "
          "another update rule, opt-in: docs/DESIGN-NOTES.md).", "",
          markdown_table(("batch x frames x objects", "backend", "operators", "host syncs", "kernels",
                          "syncing operators"), rows)]
    b, t, o = sizes[0]
    parts = part_rows(model, object_batch(dm, b, o, frames=t))
    md += ["", f"Where the operators of one dense step at {first} are (forward by the module running, innermost "
           "first; the backward as one total, autograd runs its nodes in its own order).  The frame recurrence is "
           "the part that grows with frames (one step per frame for the whole batch, three recurrent blocks); "
           "the rest is fixed per layer and loss term:", "",
           markdown_table(("part", "operators", "share of the step", "kernels"), parts)]
    if torch.cuda.is_available():
        device = torch.device("cuda")
        enc_rows, step_rows, gpu_headline = gpu_rows(device, tiny)
        headline.update(gpu_headline)
        md += ["", f"GPU ({torch.cuda.get_device_name(device)}), bf16 autocast, median of interleaved runs:", "",
               markdown_table(ENCODER_HEADER, enc_rows), "",
               "Training step, CLIP4Clip host at ViT-B/32 shape (random weights), 8 frames, 224 px:", "",
               markdown_table(STEP_HEADER, step_rows)]
    else:
        md += ["", "No CUDA device here: the GPU section (encoder vs SDPA, the ViT-B/32-host step ratio, kernel "
               "launches, peak memory, the cost of `trainer.deterministic`) runs where one is present."]
    return Section("Graph encoder: launches and host syncs", "\n".join(md),
                   "python -m benchmarks.bench_dispatch" + (" --quick" if quick else ""),
                   headline=headline, seconds=time.perf_counter() - t0)


def main() -> None:
    """Print the section's markdown."""
    section_main(run, __doc__, Path("benchmarks/plots"))


if __name__ == "__main__":
    main()
