"""Scaling: time per sample of the Finsta encoder (forward + backward, ``backend: auto``) as frames, objects per
frame and batch size grow, with the least-squares exponent on log-log axes (~1: linear) and one PNG per sweep.

Batches are real videoqa samples given that many frames and moving objects (``workload.py``).  The DSG
builder relates every pair of objects in a frame (one spatial predicate per pair), so a DSG has O(objects^2)
nodes per frame: the objects table also gives the exponent against the DSG's node count.

Usage: python -m benchmarks.bench_scaling [--quick]
"""

from __future__ import annotations

import time
from pathlib import Path


import numpy as np
import torch

from benchmarks.bench_encoder import CONFIG, encoder_step
from benchmarks.report import Section, interleaved_medians, markdown_table, section_main
from benchmarks.workload import REPO, TINY_CONFIGS, build_task, graph_sizes, object_batch


def exponent(x: list[float], y: list[float]) -> tuple[float, float]:
    """``(slope, intercept)`` of the least-squares line through ``(log x, log y)``."""
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(slope), float(intercept)


def plot(path: Path, name: str, x: list[int], per_sample_ms: list[float], slope: float, intercept: float,
         note: str = "") -> None:
    """Log-log plot of the measurements with the fitted line and its slope in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=110)
    ax.loglog(x, per_sample_ms, "o", label="measured")
    xs = np.geomspace(min(x), max(x), 50)
    ax.loglog(xs, np.exp(intercept) * xs**slope, "-", label=f"fit: slope {slope:.2f}{note}")
    ax.set_xlabel(name)
    ax.set_ylabel("ms per sample (fwd + bwd)")
    ax.set_xticks(x, [str(v) for v in x])
    ax.minorticks_off()
    ax.legend()
    ax.set_title(f"Finsta encoder vs {name}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(quick: bool, out_dir: Path, tiny: bool = False) -> Section:
    """Three sweeps (frames, objects, batch), their exponents, tables and plots.  ``tiny``: two points per
    sweep at toy sizes, one run, the tests' tiny world and model (for the test suite)."""
    t0 = time.perf_counter()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    out_dir.mkdir(parents=True, exist_ok=True)
    if tiny:
        sweeps = {"frames": [2, 4], "objects": [2, 4], "batch": [2, 4]}
        fixed, sweep_batch, runs = {"frames": 4, "objects": 2}, 2, 1
    elif quick:
        sweeps = {"frames": [4, 8, 16], "objects": [4, 8, 16], "batch": [8, 16, 32]}
        fixed, sweep_batch, runs = {"frames": 4, "objects": 4}, 2, 1  # half the full run's fixed sizes: ~35 s
    else:
        sweeps = {"frames": [4, 8, 16, 32], "objects": [4, 8, 16, 32], "batch": [8, 16, 32, 64]}
        fixed, sweep_batch, runs = {"frames": 8, "objects": 8}, 4, 3
    batch_objects = 4  # the batch sweep's clips: small graphs keep its 64-clip point affordable
    model, dm = build_task([CONFIG, *(TINY_CONFIGS if tiny else [])], batch_size=max(sweeps["batch"]))
    model.train()
    md, plots, headline = [], [], {}
    for sweep, values in sweeps.items():
        rows, per_sample, nodes = [], [], []
        for v in values:
            if sweep == "batch":
                b, frames, objects = v, fixed["frames"], batch_objects
            else:
                b, frames, objects = sweep_batch, fixed["frames"], fixed["objects"]
                frames, objects = (v, objects) if sweep == "frames" else (frames, v)
            batch = object_batch(dm, b, objects, frames)
            ms = 1e3 * interleaved_medians({"auto": encoder_step(model, batch)}, 1, runs)["auto"]
            per_sample.append(ms / b)
            nodes.append(graph_sizes(batch)["dsg"][0] / b)
            rows.append((v, b, frames, objects, round(nodes[-1]), ms, ms / b))
        slope, intercept = exponent(values, per_sample)
        note, name = "", f"exponent vs {sweep}"
        if sweep == "batch":
            # Per-sample time flat = total time linear in the batch: report the total's exponent.
            headline["scaling exponent: total time vs batch"] = 1 + slope
            note = f" (total time: {1 + slope:.2f})"
        else:
            headline[f"scaling exponent: time vs {sweep}"] = slope
        path = out_dir / f"scaling_{sweep}.png"
        plot(path, sweep, values, per_sample, slope, intercept, note)
        plots.append(_relative(path))
        md += [f"### {sweep}", "", markdown_table((sweep, "batch", "frames", "objects/frame", "DSG nodes/sample",
                                                    "ms", "ms/sample"), rows), "",
               f"Least-squares slope of log(ms/sample) on log({sweep}): **{slope:.2f}**{note}."]
        if sweep == "objects":
            md[-1] += f"  Against DSG nodes per sample: **{exponent(nodes, per_sample)[0]:.2f}**."
        md.append("")
    intro = (f"Finsta encoder (videoqa config, `backend: auto`), forward + backward, median of {runs} run(s), "
             f"{torch.get_num_threads()} threads.  Frames and objects sweeps at batch {sweep_batch}, "
             f"{fixed['objects']} objects/frame resp. {fixed['frames']} frames; batch sweep at {fixed['frames']} "
             f"frames, {batch_objects} objects/frame.")
    return Section("Scaling: frames, objects, batch", "\n".join([intro, "", *md]),
                   "python -m benchmarks.bench_scaling" + (" --quick" if quick else ""),
                   plots=plots, headline=headline, seconds=time.perf_counter() - t0)


def _relative(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (BENCHMARKS.md links), else as given."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def main() -> None:
    """Print the section's markdown."""
    section_main(run, __doc__, REPO / "benchmarks" / "plots")


if __name__ == "__main__":
    main()
