"""``make bench``: every benchmark, then BENCHMARKS.md with its tables and plots.

    python -m benchmarks            full run: BENCHMARKS.md and benchmarks/plots/*.png (16 minutes on 2 cores)
    python -m benchmarks --quick    reduced run (under 3 minutes) into runs/bench-quick/, BENCHMARKS.md untouched

The fresh-clone timing (``python -m benchmarks.fresh_clone``, ``make bench-fresh-clone``) installs from
scratch, so it runs on its own; its last result (benchmarks/results/fresh_clone.json) is put in the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import time
from pathlib import Path

from benchmarks.report import Section, write_report

REPO = Path(__file__).resolve().parents[1]
#: the sections of BENCHMARKS.md, in order (modules of this package, each with ``run(quick, out_dir)``).
SECTIONS = ("bench_data", "bench_encoder", "bench_dispatch", "bench_compile", "bench_gtrm", "bench_step", "bench_scaling")


#: the issue's targets: (headline ratio, "<=" or ">=", bound); the rows of the report's target table.
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("motion + rule, cold / decode-only (2 workers)", ">=", 0.75),
    ("motion + rule, warm / decode-only (2 workers)", ">=", 0.95),
    ("precomputed + rule / decode-only (2 workers)", ">=", 0.75),
    ("real footage: precomputed + rule / decode-only (2 workers)", ">=", 0.95),
    ("encoder/SDPA at 32x8x16 (auto)", "<=", 1.0),
    ("auto / fastest kernel, worst measured size", "<=", 1.05),
    ("step host+Finsta / host, videoqa CLIP4Clip ViT-B/32", "<=", 1.2),
    ("step host+Finsta / host, retrieval CLIP4Clip ViT-B/32", "<=", 1.2),
    ("operators per encoder step at 32x8x16 (dense)", "<=", 1600),
    ("operators per encoder step at 32x8x16 (dense, scan)", "<=", 1600),
    ("host syncs per encoder step at 32x8x16 (dense)", "<=", 0),
    ("kernels per encoder step at 32x8x16, compiled (loop)", "<=", 1600),
    ("kernels per encoder step at 32x8x16, compiled (scan)", "<=", 1600),
    ("GPU step host+Finsta / host, videoqa", "<=", 1.3),
    ("GPU step host+Finsta / host, retrieval", "<=", 1.3),
    ("GPU encoder/SDPA at 32x8x16", "<=", 3.0),
    ("GPU deterministic/not at 32x8x16", "<=", 1.1),
    ("scaling exponent: time vs frames", "<=", 1.15),
    ("scaling exponent: time vs objects", "<=", 1.15),
    ("scaling exponent: total time vs batch", "<=", 1.15),
)


def targets_markdown(sections: list[Section]) -> str:
    """The target table: each target's measured value in this run and whether it holds."""
    values = {name: value for s in sections for name, value in s.headline.items()}
    rows = []
    for name, op, bound in TARGETS:
        if name not in values:
            continue
        value = values[name]
        holds = value >= bound if op == ">=" else value <= bound
        rows.append((name, value, f"{op} {bound}", "holds" if holds else "**missed**"))
    if not rows:
        return ""
    analysis = REPO / "benchmarks" / "analysis.md"
    note = analysis.read_text().strip() if analysis.is_file() else ""
    return "\n".join(["## Targets", "", "| ratio | this run | target | |", "| --- | --- | --- | --- |",
                      *(f"| {n} | {v:.3f} | {t} | {h} |" for n, v, t, h in rows), "", note])


def fresh_clone_markdown() -> str:
    """The fresh-clone section from the last stored result, or how to make one."""
    path = REPO / "benchmarks" / "results" / "fresh_clone.json"
    if not path.is_file():
        return "## Fresh clone to first step\n\nNot measured yet: `make bench-fresh-clone`."
    r = json.loads(path.read_text())
    s = r["seconds"]
    cache = ("pip's wheel cache already held a built torch-scatter" if r["torch_scatter_wheel_cached"]
             else "torch-scatter was compiled (no cached wheel)")
    return "\n".join([
        "## Fresh clone to first step", "",
        f"`make bench-fresh-clone` at commit {r['commit']}, {r['date']}, {r['cores']} cores; {cache}.", "",
        "| git clone | make install | first training step (world generation included) | total |",
        "| --- | --- | --- | --- |",
        f"| {s['clone']:.1f} s | {s['install']:.0f} s | {s['first_step']:.0f} s | {r['total']:.0f} s |"])


def run_all(quick: bool, out: Path, tiny: bool = False, only: list[str] | None = None) -> list[Section]:
    """Run the sections (``tiny``: the test suite's toy sizes on its tiny world) and write ``out``/BENCHMARKS.md
    with plots under ``out``/benchmarks/plots; returns the sections."""
    plots = out / "benchmarks" / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    stored = out / "benchmarks" / "results" / ("sections-quick" if quick or tiny else "sections")
    stored.mkdir(parents=True, exist_ok=True)
    sections: list[Section] = []
    for name in SECTIONS:
        if only is not None and name not in only:  # kept from its last run (each section's ratios are within it)
            if (stored / f"{name}.json").is_file():
                sections.append(Section(**json.loads((stored / f"{name}.json").read_text())))
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        if (quick or tiny) and not getattr(module, "IN_QUICK_RUN", True):
            print(f"== {name}: not in a quick run (it takes minutes at any size)", flush=True)
            continue
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        section = module.run(quick or tiny, plots, tiny=tiny)
        section.seconds = section.seconds or time.perf_counter() - start
        section.plots = [str(Path(p).resolve().relative_to(out.resolve())) for p in section.plots]
        section.ran_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        (stored / f"{name}.json").write_text(json.dumps(dataclasses.asdict(section), indent=1))
        sections.append(section)
        print(section.markdown, flush=True)
    command = "make bench QUICK=1" if quick else "make bench"
    write_report(out / "BENCHMARKS.md", sections, quick or tiny, command, fresh_clone_markdown(),
                 after_headline=targets_markdown(sections))
    print(f"wrote {out / 'BENCHMARKS.md'}")
    return sections


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and run."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="toy sizes on the tests' tiny world (what the test suite runs; not a benchmark)")
    ap.add_argument("--only", nargs="*", choices=SECTIONS,
                    help="rerun these sections; the report keeps the others from their last run")
    ap.add_argument("--rewrite", action="store_true", help="run nothing: rewrite the report from the stored sections")
    ap.add_argument("--out", type=Path, help="report folder (default: the repository; runs/bench-quick with --quick)")
    args = ap.parse_args(argv)
    out = args.out or (REPO / "runs" / "bench-quick" if args.quick or args.tiny else REPO)
    run_all(args.quick, out, args.tiny, [] if args.rewrite else args.only)


if __name__ == "__main__":
    main()
