"""``finsta-pl reproduce``: does Finsta help, does post-training transfer, and what does each part cost.

Every number is a fit (or, for zero-shot, a validation) of a shipped config on the embedded world with the
overrides its :class:`Run` lists, run in a pool of ``--jobs`` processes (one thread each); the tables give mean
and standard deviation over seeds and mark the differences whose mean +- std intervals do not overlap.

    finsta-pl reproduce --size full     (make reproduce SIZE=full)    -> RESULTS.md, results/*.png
    finsta-pl reproduce --size small    (make reproduce SIZE=small)   -> runs/reproduce/small/RESULTS.md
    finsta-pl reproduce --size minimal  (what the test suite runs: one task, one seed, toy sizes)

Post-training runs ``posttrain_synthetic.yaml`` once per seed and split and exports the enhanced host; the
"post-trained" rows fine-tune the host-only config from it (no graphs at any point of fine-tuning or
inference), the zero-shot rows validate it without any fine-tuning.  Each seed is its own world (the world's
seed is the run's), so the spread holds data as well as initialisation.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from finsta_pl.tools.reproduce.plan import CLIP4CLIP, SIZES, Run, Size, plan
from finsta_pl.tools.reproduce.report import with_references, write_results
from finsta_pl.tools.reproduce.runner import execute, execute_logged, run_all, write_clip_checkpoint


def reproduce(size_name: str, out: Path, report: Path, run_one: Callable[[Run, Size, Path], float] | None = None,
              jobs: int | None = None) -> dict[Run, float]:
    """Run every run of ``size_name`` (each result kept in ``out/results.jsonl``, so a rerun skips what is
    done), then write ``report`` and its plots.  ``run_one`` defaults to a real fit, logged to a file when
    runs go in parallel; ``jobs`` to the size's."""
    size = SIZES[size_name]
    jobs = size.jobs if jobs is None else jobs
    run_one = run_one or (execute_logged if jobs > 1 else execute)
    out.mkdir(parents=True, exist_ok=True)
    done_file = out / "results.jsonl"
    done: dict[str, float] = {}
    seconds: dict[str, float] = {}
    if done_file.is_file():
        for line in done_file.read_text().splitlines():
            entry = json.loads(line)
            done[entry["slug"]] = entry["value"]
            seconds[entry["slug"]] = entry.get("seconds", 0.0)
    start, before = time.perf_counter(), len(seconds)
    runs = plan(size, out)
    if size.clip4clip and any(r.slug not in done for r in runs if r.host == CLIP4CLIP):
        write_clip_checkpoint(size, out)

    def record(run: Run, value: float, took: float) -> None:
        seconds[run.slug] = took
        with done_file.open("a") as f:
            f.write(json.dumps({"slug": run.slug, "value": value, "seconds": round(took, 1)}) + "\n")
        print(f"[{len(seconds)}/{len(runs)}] {run.slug}: {run.metric} {value:.3f} ({took:.0f} s)", flush=True)

    run_all(runs, size, out, done, record, run_one, jobs)
    # Wall time over every invocation that ran something, so a resumed reproduction (or a rerun that only
    # rewrites the report) states the whole run's.
    wall_file = out / "wall_seconds.txt"
    wall = float(wall_file.read_text()) if wall_file.is_file() else 0.0
    if len(seconds) > before:
        wall += time.perf_counter() - start
        wall_file.write_text(f"{wall:.1f}\n")
    results = {run: done[run.slug] for run in runs}
    write_results(report, size_name, size, with_references(results), wall,
                  sum(seconds.get(r.slug, 0.0) for r in runs), jobs, out)
    return results


def main(argv: list[str]) -> int:
    """``finsta-pl reproduce``."""
    parser = argparse.ArgumentParser(prog="finsta-pl reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"), help="runs, hosts and results.jsonl")
    parser.add_argument("--report", type=Path, default=None,
                        help="default: RESULTS.md for --size full, else OUT/SIZE/RESULTS.md (the committed report "
                             "is a full run's)")
    parser.add_argument("--jobs", type=int, default=None, help="runs at once (default: the size's)")
    parser.add_argument("--list", action="store_true", help="print the runs and stop")
    args = parser.parse_args(argv)
    if args.list:
        for run in plan(SIZES[args.size], args.out / args.size):
            print(run.slug)
        return 0
    report = args.report or (Path("RESULTS.md") if args.size == "full" else args.out / args.size / "RESULTS.md")
    reproduce(args.size, args.out / args.size, report, jobs=args.jobs)
    print(f"wrote {report}")
    return 0
