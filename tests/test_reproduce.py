"""`finsta-pl reproduce`: the plan, the tables' spread marks, resumption, and a minimal real reproduction."""

from __future__ import annotations

from pathlib import Path

import pytest

from finsta_pl.tools.reproduce import JOINT, SIZES, Run, beyond_spread, plan, reproduce, tables, with_references

REPO = Path(__file__).resolve().parents[1]


def test_plan_covers_every_table_and_posttrains_first(tmp_path: Path) -> None:
    runs = plan(SIZES["full"], tmp_path)
    assert [r.table for r in runs[:6]] == ["posttrain"] * 6  # every seed's enhanced hosts before their users
    # The compositional rows fine-tune a host post-trained without the held-out combinations.
    comp = [r for r in runs if r.needs_posttrain and r.column == "compositional"]
    assert comp and all("enhanced_host_compositional" in " ".join(r.args(SIZES["full"], tmp_path)) for r in comp)
    assert all("compositional_train.txt" in " ".join(r.overrides) for r in runs[:6] if r.column == "compositional")
    tables_ = {r.table for r in runs}
    assert {"videoqa", "retrieval", "captioning", "mcqa", "inference", "action"} <= tables_
    assert {"ablation: videoqa", "ablation: retrieval", "robustness: videoqa", "zero-shot retrieval"} <= tables_
    assert len({r.slug for r in runs}) == len(runs)  # one folder and one result line per run
    post = [r for r in runs if r.needs_posttrain]
    assert post and all(f"_seed{r.seed}.pt" in " ".join(r.args(SIZES["full"], tmp_path)) for r in post)
    qa = [r for r in runs if r.table == "videoqa" and r.column == "compositional"]
    assert len(qa) == 9 and all("compositional_val.txt" in " ".join(r.overrides) for r in qa)
    assert {r.seed for r in runs} == {0, 1, 2}


def _run(table: str, row: str, seed: int) -> Run:
    return Run(table, row, "standard", seed, (), (), "val/acc")


def test_tables_mark_only_differences_beyond_the_seed_spread() -> None:
    assert beyond_spread([0.8, 0.82, 0.81], [0.5, 0.52, 0.51]) and not beyond_spread([0.8, 0.6], [0.7, 0.65])
    assert not beyond_spread([0.9], [0.1])  # one seed: no claim
    results = {_run("videoqa", "host only", s): v for s, v in enumerate([0.50, 0.52, 0.51])}
    results |= {_run("videoqa", JOINT, s): v for s, v in enumerate([0.80, 0.82, 0.81])}
    results |= {_run("ablation: videoqa", "w/o PTC", s): v for s, v in enumerate([0.79, 0.83, 0.80])}
    md = tables(with_references(results))
    assert "| host only | 0.510 +- 0.010 (n=3) |" in md
    assert f"| {JOINT} | 0.810 +- 0.010 (n=3)* |" in md
    ablation = md.split("### ablation: videoqa")[1]
    assert "| full model | 0.810 +- 0.010 (n=3) |" in ablation  # the joint runs lead the ablation table
    assert "| w/o PTC | 0.807" in ablation and "(n=3)*" not in ablation  # within the spread: not marked
    robust = {_run("robustness: videoqa", "node drop 50%", s): v for s, v in enumerate([0.60, 0.62, 0.61])}
    md = tables(with_references({**results, **robust}))
    assert "| node drop 0% | 0.810 +- 0.010 (n=3) |\n| node drop 50% | 0.610 +- 0.010 (n=3)* |" in md


def test_a_rerun_skips_what_is_done(tmp_path: Path) -> None:
    calls: list[str] = []

    def fake(run: Run, size, out) -> float:  # noqa: ANN001
        calls.append(run.slug)
        return 0.5 + 0.1 * (run.row == JOINT)

    reproduce("minimal", tmp_path, tmp_path / "RESULTS.md", run_one=fake)
    first = len(calls)
    assert first == len(plan(SIZES["minimal"], tmp_path))
    reproduce("minimal", tmp_path, tmp_path / "RESULTS.md", run_one=lambda *a: pytest.fail("reran a done run"))
    assert "| host + Finsta (joint) | 0.600" in (tmp_path / "RESULTS.md").read_text()


def test_minimal_reproduction_runs_for_real(tiny_world: Path, tmp_path: Path, monkeypatch) -> None:
    """Post-training, host only, joint, post-trained fine-tuning and one ablation, really fitted at toy size;
    the report holds every table and the post-trained host was loaded from the exported file."""
    monkeypatch.chdir(REPO)
    results = reproduce("minimal", tmp_path / "out", tmp_path / "RESULTS.md")
    assert len(results) == 5 and all(0.0 <= v <= 1.0 for v in results.values())
    assert (tmp_path / "out" / "hosts" / "enhanced_host_standard_seed0.pt").is_file()
    report = (tmp_path / "RESULTS.md").read_text()
    for heading in ("### videoqa", "### ablation: videoqa"):
        assert heading in report
    assert "post-trained host, no graphs" in report and "| w/o PTC |" in report
    assert any((tmp_path / "out" / "runs").glob("*/*/version_*/metrics.csv"))
