"""The model benchmarks of ``make bench`` (encoder vs SDPA, step overhead, scaling) in their ``tiny`` mode (the
tests' tiny world and model, toy sizes): each returns a Section with a filled table and finite positive headline ratios, and scaling writes its PNG plots."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]



def _table_rows(markdown: str) -> list[str]:
    """Data rows of the markdown tables (header and separator lines left out)."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    return [ln for i, ln in enumerate(lines) if "---" not in ln and not (i + 1 < len(lines) and "---" in lines[i + 1])]


def _check(section, expected_headline: str, positive: bool = True) -> None:  # noqa: ANN001
    """A filled table and the expected headline; ratios finite and positive (exponents: finite, since at toy
    sizes fixed overheads dominate and a slope may be ~0 or below)."""
    assert _table_rows(section.markdown), section.markdown
    assert expected_headline in section.headline, section.headline
    for name, value in section.headline.items():
        assert math.isfinite(value) and (value > 0 or not positive), (name, value)


@pytest.fixture(autouse=True)
def _threads(tiny_world):  # noqa: ANN001, ANN202  the tiny modes read the tests' tiny world
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # run() takes 2 threads; leave the rest of the session as it was


def test_encoder_benchmark_tiny(tmp_path: Path) -> None:
    from benchmarks import bench_encoder

    s = bench_encoder.run(quick=True, out_dir=tmp_path, tiny=True)
    _check(s, "encoder/SDPA at 8x8x4 (auto)")
    assert "auto/SDPA" in s.markdown


def test_step_benchmark_tiny(tmp_path: Path) -> None:
    from benchmarks import bench_step

    s = bench_step.run(quick=True, out_dir=tmp_path, tiny=True)
    _check(s, "step host+Finsta / host, videoqa built-in")
    # Finsta adds work to the host's step: both the FLOP and the time ratio exceed 1.
    row = [r for r in _table_rows(s.markdown) if r.startswith("| videoqa")][0]
    time_ratio, flop_ratio = (float(c) for c in row.strip("|").split("|")[-3:-1])
    assert flop_ratio > 1 and time_ratio > 1, row


def test_scaling_benchmark_tiny(tmp_path: Path) -> None:
    from benchmarks import bench_scaling

    s = bench_scaling.run(quick=True, out_dir=tmp_path, tiny=True)
    _check(s, "scaling exponent: total time vs batch", positive=False)
    assert set(s.headline) == {"scaling exponent: time vs frames", "scaling exponent: time vs objects",
                               "scaling exponent: total time vs batch"}
    assert len(s.plots) == 3
    for name, plot in zip(("frames", "objects", "batch"), s.plots):
        path = Path(plot) if Path(plot).is_absolute() else REPO / plot
        assert path == tmp_path / f"scaling_{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_benchmark_tiny(tmp_path: Path) -> None:
    """The data-pipeline section on the tiny world: every loader's ratio, the stage table and the plot."""
    from benchmarks import bench_data

    s = bench_data.run(quick=True, out_dir=tmp_path, tiny=True)
    _check(s, "motion + rule, warm / decode-only (0 workers)")
    assert "| decode only | " in s.markdown and "| motion + rule, cold | " in s.markdown
    for plot in s.plots:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stage_table = s.markdown.split("Where a worker's time goes")[1]
    cold = next(ln for ln in stage_table.splitlines() if ln.startswith("| motion + rule, cold"))
    assert float(cold.split("|")[4]) > 0  # the detect column of the cold loader: it did detect


def test_runner_writes_the_report(tmp_path: Path) -> None:
    """`python -m benchmarks --tiny` end to end: every section in BENCHMARKS.md with its headline ratios, the
    machine, and plots that exist where the report links them."""
    from benchmarks.__main__ import SECTIONS, run_all

    sections = run_all(quick=False, out=tmp_path, tiny=True, only=["bench_gtrm"])
    report = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## Machine" in report and "torch 2." in report and "## GTrm kernels" in report
    assert all(f"| GTrm kernels | {name} |" in report for name in sections[0].headline)
    assert "bench_data" in SECTIONS and len(SECTIONS) == 7


@pytest.mark.slow
def test_quick_bench_runs_under_three_minutes(tmp_path: Path) -> None:
    """`make bench QUICK=1`'s own command, timed: the reduced run stays under its 3-minute promise."""
    import subprocess
    import sys
    import time

    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)], cwd=REPO, check=True,
                   timeout=600)
    assert time.perf_counter() - start < 180
    report = (tmp_path / "BENCHMARKS.md").read_text()
    for title in ("Data pipeline", "Graph kernels: Finsta encoder vs SDPA", "Graph encoder: launches and host syncs",
                  "GTrm kernels", "Step overhead",
                  "Scaling"):
        assert f"## {title}" in report
    assert len(list((tmp_path / "benchmarks" / "plots").glob("*.png"))) >= 4


def test_targets_table_says_which_hold() -> None:
    from benchmarks.__main__ import targets_markdown
    from benchmarks.report import Section

    s = Section("x", "", "", headline={"encoder/SDPA at 32x8x16 (auto)": 1.4,
                                       "motion + rule, warm / decode-only (2 workers)": 0.96})
    md = targets_markdown([s])
    assert "| encoder/SDPA at 32x8x16 (auto) | 1.400 | <= 1.0 | **missed** |" in md
    assert "| motion + rule, warm / decode-only (2 workers) | 0.960 | >= 0.95 | holds |" in md
    assert "cold" not in md.split("## Targets")[1].split("\n\n")[1]  # absent figures are not listed
