"""What every benchmark of ``make bench`` returns, the machine it ran on, and the BENCHMARKS.md writer.

Each ``benchmarks/bench_*.py`` exposes ``run(quick: bool, out_dir: Path) -> Section``.  Figures are ratios
within one run (absolute times move between runs on shared machines); absolute milliseconds are printed next
to them for orientation only.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

#: the libraries whose versions decide the numbers.
LIBRARIES = ("torch", "lightning", "dgl", "torch-scatter", "decord", "opencv-python-headless", "numpy", "spacy",
             "torchvision", "transformers")


@dataclass
class Section:
    """One benchmark's part of BENCHMARKS.md: a title, markdown (tables, notes), plots (PNG paths relative to
    the repository), the command that reproduces it, and its headline ratios (name -> value) for the summary."""

    title: str
    markdown: str
    command: str
    plots: list[str] = field(default_factory=list)
    headline: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    ran_at: str = ""


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; floats are written with 3 significant decimals."""
    def cell(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def interleaved_medians(variants: dict[str, Callable[[], object]], warmup: int, runs: int) -> dict[str, float]:
    """Median seconds of each callable, timed round-robin (one call of each in turn), so load from other
    processes on a shared machine hits every variant alike and their ratios stay meaningful."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for it in range(warmup + runs):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            if it >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def machine() -> dict[str, object]:
    """CPU model, cores, torch threads, Python and library versions."""
    import torch

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    return {"cpu": model, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": sys.version.split()[0], "platform": platform.platform(), "libraries": versions,
            "commit": _git("rev-parse", "--short", "HEAD"), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_report(path: Path, sections: Sequence[Section], quick: bool, command: str,
                 extra: str = "", after_headline: str = "") -> None:
    """BENCHMARKS.md: the machine, the headline ratios (then ``after_headline``), each section with its command
    and plots, then ``extra``; the headline figures also go to ``benchmarks/results/bench.json`` below it, for scripts."""
    info = machine()
    lines = ["# finsta-pl benchmarks", "",
             f"Written by `{command}` ({'QUICK reduced run' if quick else 'full run'}) at commit {info['commit']}, "
             f"{info['date']}.  Every figure that matters is a ratio of two timings taken in the same run, "
             "interleaved; absolute times are for orientation only (the machine is shared).", "",
             "## Machine", "",
             f"- CPU: {info['cpu']}, {info['cores']} cores; torch threads {info['torch_threads']}",
             f"- Python {info['python']} on {info['platform']}",
             "- " + ", ".join(f"{k} {v}" for k, v in info["libraries"].items()), "",
             "## Headline ratios", ""]
    rows = [(s.title, name, value) for s in sections for name, value in s.headline.items()]
    lines += [markdown_table(("benchmark", "ratio", "value"), rows), ""]
    if after_headline:
        lines += [after_headline, ""]
    for s in sections:
        when = f", {s.ran_at}" if s.ran_at else ""
        lines += [f"## {s.title}", "", f"Command: `{s.command}` ({s.seconds:.0f} s{when})", "", s.markdown, ""]
        lines += [f"![{Path(p).stem}]({p})" for p in s.plots]
        lines.append("")
    if extra:
        lines += [extra, ""]
    path.write_text("\n".join(lines))
    results = path.parent / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "bench.json").write_text(json.dumps(
        {"machine": info, "quick": quick, "sections": [
            {"title": s.title, "headline": s.headline, "seconds": s.seconds, "plots": s.plots} for s in sections]},
        indent=2))


def section_main(run: Callable[..., Section], doc: str | None, plots: Path) -> None:
    """The command line of one benchmark module: ``[--quick] [--tiny]``, then print its section."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    s = run(args.quick, plots, args.tiny)
    print(s.markdown, "", "headline:", s.headline, f"({s.seconds:.0f} s)", sep="\n")
