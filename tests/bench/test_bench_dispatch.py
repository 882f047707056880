"""The launch/sync benchmark section (issue 23) at toy size: its CPU counts, and its GPU figures' code run on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _threads(tiny_world):  # noqa: ANN001, ANN202  the tiny modes read the tests' tiny world
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_dispatch_section_counts_no_sync_and_no_growth_with_batch(tmp_path: Path) -> None:
    from benchmarks import bench_dispatch

    s = bench_dispatch.run(quick=True, out_dir=tmp_path, tiny=True)
    assert s.headline["host syncs per encoder step at 12x8x2 (dense)"] == 0
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line.strip("|").split("|")[2:4]
            for line in s.markdown.splitlines() if line.startswith("| 12x8x2") or line.startswith("| 24x8x2")}
    small, large = rows[("12x8x2", "dense")], rows[("24x8x2", "dense")]
    assert 500 < int(small[0]) == int(large[0]) and int(large[1]) == 0  # no growth with batch, no sync
    # The split by part adds up to the same step, and names the recurrence, the layers and the backward.
    parts = {line.strip("|").split("|")[0].strip(): int(line.strip("|").split("|")[1])
             for line in s.markdown.split("Where the operators")[1].splitlines() if line.startswith("| ") and "%" in line}
    assert sum(parts.values()) == int(small[0])
    kernels = rows[("12x8x2", "dense")]
    line = next(x for x in s.markdown.splitlines() if x.startswith("| 12x8x2 | dense"))
    assert 0 < int(line.strip("|").split("|")[4]) < int(kernels[0])  # views launch nothing
    scan = rows[("12x8x2", "dense, scan")]  # the parallel-scan recurrence: fewer operators, no sync
    assert int(scan[0]) < int(small[0]) and int(scan[1]) == 0
    assert {"frame recurrence, loop (forward)", "GTrm layers (forward)", "backward, all parts"} <= set(parts)


@pytest.mark.slow  # builds two tasks and times steps; make test-slow (CI runs it) keeps it
def test_gpu_figures_run_on_any_device() -> None:
    from benchmarks import bench_dispatch

    enc, step, headline = bench_dispatch.gpu_rows(torch.device("cpu"), tiny=True)
    assert len(enc) == 1 and len(enc[0]) == len(bench_dispatch.ENCODER_HEADER)
    assert len(step) == 1 and len(step[0]) == len(bench_dispatch.STEP_HEADER)
    assert enc[0][6] == 0  # host syncs of the encoder step
    assert headline["GPU step host+Finsta / host, videoqa"] > 0 and enc[0][5] > 100  # profiler saw the operators
