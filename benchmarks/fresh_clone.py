"""Fresh clone to first training step, timed: ``git clone``, ``make install``, then ``finsta-pl fit`` of
``experiments/videoqa.yaml`` for one step with an empty data folder (the embedded world is generated).

    python -m benchmarks.fresh_clone [--repo .] [--keep]      (make bench-fresh-clone)

Writes ``benchmarks/results/fresh_clone.json``, which ``make bench`` puts into BENCHMARKS.md.  pip's wheel
cache is whatever this machine has: a machine that never built torch-scatter compiles it (about 6 minutes on
2 cores, see the Makefile); the result records whether the cache already held it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULT = Path(__file__).resolve().parent / "results" / "fresh_clone.json"


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds ``cmd`` took; its output goes to this process's (a failure raises with the command)."""
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True)
    return time.perf_counter() - start


def scatter_wheel_cached() -> bool:
    """Whether pip's wheel cache already holds a built torch-scatter (then ``make install`` does not compile)."""
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "cache", "list", "torch_scatter"], capture_output=True,
                             text=True, check=False).stdout
    except OSError:
        return False
    return "torch_scatter" in out


def main() -> None:
    """Clone, install, fit one step; print and store the three times."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]))
    ap.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="finsta_fresh_"))
    clone, data = work / "finsta-pl", work / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["FINSTA_PL_DATA"] = str(data)  # nothing generated yet: the first fit makes the world
    cached = scatter_wheel_cached()
    try:
        seconds = {"clone": timed(["git", "clone", "--quiet", args.repo, str(clone)], work, env)}
        seconds["install"] = timed(["make", "install"], clone, env)
        seconds["first_step"] = timed([str(clone / ".venv" / "bin" / "finsta-pl"), "fit", "--config",
                                       "experiments/videoqa.yaml", "--trainer.max_steps=1",
                                       "--trainer.limit_val_batches=0"], clone, env)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.repo, capture_output=True,
                            text=True).stdout.strip()
    result = {"seconds": seconds, "total": sum(seconds.values()), "torch_scatter_wheel_cached": cached,
              "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count()}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    update_report(RESULT.parents[2] / "BENCHMARKS.md")


def update_report(report: Path) -> None:
    """Put the new result into an existing BENCHMARKS.md (its fresh-clone section, the report's last)."""
    from benchmarks.__main__ import fresh_clone_markdown

    if report.is_file():
        text = report.read_text()
        head = text.split("## Fresh clone to first step")[0].rstrip()
        report.write_text(head + "\n\n" + fresh_clone_markdown() + "\n")


if __name__ == "__main__":
    main()
