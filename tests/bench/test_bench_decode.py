"""The decode benchmark (real footage before and after ``data compress``) at toy size, and its splice into a
report that keeps every other section as it was."""

from __future__ import annotations

from pathlib import Path

from benchmarks import bench_decode


def test_decode_bench_measures_both_copies_and_splices_into_the_data_section(tmp_path: Path) -> None:
    part, headline = bench_decode.run(quick=True, tiny=True)
    assert part.startswith(bench_decode.TITLE) and "| before compress |" in part and "| after compress |" in part
    (name, ratio), = headline.items()
    assert ratio > 1.5  # 224 px at 3 fps decodes faster than the 720p originals
    report = tmp_path / "BENCHMARKS.md"
    report.write_text("# b\n\n| benchmark | ratio | value |\n| --- | --- | --- |\n| Data pipeline | x | 1.000 |\n"
                      "| Other | y | 2.000 |\n\n## Data pipeline\n\ntables\n\n## Other\n\nkept\n")
    for _ in range(2):  # a second splice replaces the first
        bench_decode.splice(report, part, headline)
    text = report.read_text()
    assert text.count(bench_decode.TITLE) == 1 and text.count(f"| {name} |") == 1
    assert text.index("tables") < text.index(bench_decode.TITLE) < text.index("## Other\n\nkept")
    assert text.index("| Data pipeline | x |") < text.index(f"| {name} |") < text.index("| Other | y |")
