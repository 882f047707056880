"""`finsta-pl reproduce`: the plan, the tables' spread marks, resumption, and a minimal real reproduction."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from finsta_pl.tools.reproduce import (CLIP4CLIP, HOST_LOSS_ONLY, JOINT, POSTTRAINED, SIZES, Run, Size, beyond_spread,
                                       plan, reproduce, run_all, tables, with_references)

REPO = Path(__file__).resolve().parents[2]


def test_plan_covers_every_table_and_posttrains_first(tmp_path: Path) -> None:
    full = SIZES["full"]
    runs = plan(full, tmp_path)
    exports = [r for r in runs if r.export]
    # 3 seeds x (2 splits, CLIP4Clip, the control on 2 splits, the label-free post-training), first
    assert runs[: len(exports)] == exports and len(exports) == 18
    # The compositional rows fine-tune a host post-trained without the held-out combinations.
    comp = [r for r in runs if r.needs_posttrain and r.column == "compositional"]
    assert comp and all(f"enhanced_{r.host}_compositional" in " ".join(r.args(full, tmp_path)) for r in comp)
    assert all("compositional_train.txt" in " ".join(r.overrides) for r in exports if r.column == "compositional")
    assert all(r.dependency in {e.slug for e in exports} for r in runs if r.needs_posttrain)
    tables_ = {r.table for r in runs}
    for task in ("videoqa", "retrieval", "captioning", "mcqa", "inference", "action"):
        assert task in tables_ and len([r for r in runs if r.table == task]) == 3 * 2 * 3  # rows x splits x seeds
    assert {"ablation: videoqa", "ablation: retrieval", "robustness: videoqa", "zero-shot retrieval"} <= tables_
    # The control: the same clips, the host's own loss, no graphs; its rows fine-tune (or validate) that host.
    control = [r for r in runs if r.host == HOST_LOSS_ONLY]
    assert all(r.overrides[0] == "--model.init_args.finsta.enabled=false" for r in control if r.export)
    assert len([r for r in control if r.export]) == 6
    tasks = ("videoqa", "retrieval", "captioning", "mcqa", "inference", "action")
    assert {r.table for r in control if not r.export} == {
        *(f"post-training control: {t}" for t in tasks), *(f"post-training without labels: {t}" for t in tasks),
        "zero-shot retrieval"}
    assert all(f"enhanced_small_vlm_host_loss_only_{r.column}" in " ".join(r.args(full, tmp_path))
               for r in control if not r.export)
    # The CLIP4Clip rows: the same task configs with the tiny CLIP as host, post-trained as a CLIP4Clip host.
    clip = [r for r in runs if r.host == CLIP4CLIP and not r.export]
    assert {r.table for r in clip} == {"videoqa, CLIP4Clip host (tiny, random init)",
                                       "retrieval, CLIP4Clip host (tiny, random init)"} and len(clip) == 18
    assert all("--model.init_args.host.name=clip4clip" in r.overrides for r in clip)
    clip_post = [r for r in clip if r.row == POSTTRAINED]
    assert clip_post and all("enhanced_clip4clip_standard" in " ".join(r.args(full, tmp_path)) for r in clip_post)
    assert len({r.slug for r in runs}) == len(runs)  # one folder and one result line per run
    assert "vocabulary-free detector: videoqa" not in tables_  # it had no alignment; the label-free tables replace it
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
    post = {_run("videoqa", POSTTRAINED, s): v for s, v in enumerate([0.70, 0.72, 0.71])}
    control = {_run("post-training control: videoqa", "host loss only", s): v for s, v in enumerate([0.6, 0.6, 0.6])}
    md = tables(with_references({**results, **post, **control}))  # led by the Finsta post-trained runs
    assert ("### post-training control: videoqa\n\n| | standard |\n|---|---|\n"
            "| post-trained with Finsta, no graphs | 0.710 +- 0.010 (n=3) |\n| host loss only | 0.600 +- 0.000 (n=3)* |"
            in md)


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


def _fake_fit(run: Run, size: Size, out: Path) -> float:
    """A run of the pool test: a post-training writes its host, a run that needs one checks it is there."""
    marker = out / run.dependency if run.dependency else None
    if marker is not None and not marker.is_file():
        raise AssertionError(f"{run.slug} started before {run.dependency}")
    if run.export:
        (out / run.slug).write_text("host")
    (out / f"{run.slug}.fit").write_text("")
    return float(run.seed)


def test_the_pool_runs_each_run_once_after_its_post_training(tmp_path: Path) -> None:
    size = replace(SIZES["full"], seeds=(0, 1), tasks=("videoqa",), compositional=(), clip4clip=(),
                   ablation_tasks=())
    runs = plan(size, tmp_path)
    recorded: list[str] = []
    done: dict[str, float] = {runs[-1].slug: 9.0}  # done before: not run again
    run_all(runs, size, tmp_path, done, lambda run, value, seconds: recorded.append(run.slug), _fake_fit, jobs=2)
    assert sorted(recorded) == sorted(r.slug for r in runs[:-1]) and done[runs[-1].slug] == 9.0
    assert all(done[r.slug] == r.seed for r in runs[:-1])
    # A fit that two tables share (the label-free table's host-only and labelled rows are the task table's) ran
    # once (each fit leaves its marker file), and every run of the plan got its value.
    fits = [r.slug for r in runs if (tmp_path / f"{r.slug}.fit").is_file()]
    assert len(fits) == len({r.fit for r in runs}) - 1 < len(runs) - 1
    shared = next(r for r in runs if r.table == "label-free alignment: videoqa" and r.row == "host only")
    assert shared.slug not in fits and any(r.fit == shared.fit and r.table == "videoqa" and r.slug in fits for r in runs)


def test_a_resumed_reproduction_does_not_refit_a_shared_run(tmp_path: Path) -> None:
    """A fit recorded under one table's name (e.g. by an earlier plan) is not fitted again for the other."""
    size = replace(SIZES["full"], seeds=(0,), tasks=("videoqa",), compositional=("videoqa",), clip4clip=(),
                   ablation_tasks=(), controls=(), label_free=("videoqa",), label_free_ablations=(),
                   label_free_tokens=(), label_free_posttrain=(), studies=False)
    runs = plan(size, tmp_path)
    shared = next(r for r in runs if r.table == "label-free alignment: videoqa" and r.row == "host only")
    twin = next(r for r in runs if r.fit == shared.fit and r is not shared)
    done = {shared.slug: 0.25}
    recorded: dict[str, float] = {}
    run_all(runs, size, tmp_path, done, lambda run, value, seconds: recorded.update({run.slug: value}), _fake_fit,
            jobs=1)
    assert not (tmp_path / f"{twin.slug}.fit").is_file() and recorded[twin.slug] == done[twin.slug] == 0.25
    assert all(r.slug in done for r in runs)


@pytest.mark.slow  # ~15 s of real runs; the default run keeps the plan, the pool and the tables
def test_minimal_reproduction_runs_for_real(tiny_world: Path, tmp_path: Path, monkeypatch) -> None:
    """Post-training, host only, joint, post-trained fine-tuning and one ablation, really fitted at toy size;
    the report holds every table and the post-trained host was loaded from the exported file."""
    monkeypatch.chdir(REPO)
    results = reproduce("minimal", tmp_path / "out", tmp_path / "RESULTS.md", jobs=2)  # as make reproduce: a pool
    assert len(results) == 5 and all(0.0 <= v <= 1.0 for v in results.values())
    assert (tmp_path / "out" / "hosts" / "enhanced_small_vlm_standard_seed0.pt").is_file()
    report = (tmp_path / "RESULTS.md").read_text()
    for heading in ("### videoqa", "### ablation: videoqa"):
        assert heading in report
    assert "post-trained host, no graphs" in report and "| w/o PTC |" in report
    assert any((tmp_path / "out" / "runs").glob("*/*/version_*/metrics.csv"))
    saved = next((tmp_path / "out" / "runs").glob("videoqa_post_trained*/*/version_0/config.yaml")).read_text()
    assert "init_from: " + str(tmp_path / "out" / "hosts" / "enhanced_small_vlm_standard_seed0.pt") in saved
    assert (tmp_path / "results" / "tasks.png").is_file() and "![tasks](results/tasks.png)" in report
    # Two processes ran five fits: a process's later runs still log, and into their own file.
    logs = {p.stem: p.read_text() for p in (tmp_path / "out" / "logs").glob("*.log")}
    assert len(logs) == 5 and all("Seed set to 0" in text and "Logging error" not in text for text in logs.values())


def test_label_free_study_has_its_controls_and_marks_them(tmp_path: Path) -> None:
    from finsta_pl.tools.reproduce.plan import (CAPACITY, CLASS_AGNOSTIC, LABEL_FREE, LABEL_FREE_HOST, LABELLED,
                                                NO_ALIGNMENT, POSTTRAINED_HOST_LOSS, POSTTRAINED_LABEL_FREE,
                                                POSTTRAINED_LABELLED)

    quick = plan(SIZES["label_free"], tmp_path)
    assert not any(r.export or r.needs_posttrain for r in quick)  # no post-training: the table compares arms
    # three tasks' four rows, video QA's six ablations and its two 8x8-token rows, per seed
    assert len(quick) == (3 * 4 + 6 + 2) * 3 and {r.column for r in quick} == {"compositional"}
    runs = plan(SIZES["full"], tmp_path)  # make reproduce: the label-free tables of every task, both splits
    table = [r for r in runs if r.table == "label-free alignment: retrieval"]
    assert {r.row for r in table} == {"host only", LABELLED, CLASS_AGNOSTIC, CAPACITY}
    assert len(table) == 4 * 2 * 3 and {r.column for r in table} == {"standard", "compositional"}  # rows x splits x seeds
    assert all(any(r.table == "label-free alignment: " + t for r in runs)
               for t in ("videoqa", "retrieval", "captioning", "mcqa", "inference", "action"))
    arm = next(r for r in table if r.row == CLASS_AGNOSTIC)
    control = next(r for r in table if r.row == CAPACITY)
    assert set(LABEL_FREE) <= set(arm.overrides) and not set(NO_ALIGNMENT) & set(arm.overrides)
    assert set(control.overrides) == set(arm.overrides) | set(NO_ALIGNMENT)  # the same run without the objectives
    ablations = [r for r in runs if r.table == "label-free ablation: videoqa"]
    assert len(ablations) == 6 * 3 and all(set(LABEL_FREE) <= set(r.overrides) for r in ablations)
    assert {r.column for r in ablations} == {"compositional"}
    # Label-free post-training: the host post-trained on the label-free arm's graphs, the labelled post-training
    # and the host-loss-only control, each fine-tuned without graphs on the compositional split.
    post = [r for r in runs if r.table == "post-training without labels: mcqa"]
    assert {(r.row, r.host) for r in post} == {("host only", "small_vlm"), (POSTTRAINED_LABELLED, "small_vlm"),
                                               (POSTTRAINED_LABEL_FREE, LABEL_FREE_HOST),
                                               (POSTTRAINED_HOST_LOSS, HOST_LOSS_ONLY)}
    assert {r.column for r in post} == {"compositional"} and len(post) == 4 * 3
    label_free_host = next(r for r in runs if r.export and r.host == LABEL_FREE_HOST)
    assert set(LABEL_FREE) <= set(label_free_host.overrides) and label_free_host.column == "compositional"
    assert len({r.slug for r in runs}) == len(runs)
    # The table marks an arm against the host (*) and against the capacity control (dagger).
    results = {}
    for row, values in (("host only", [0.50, 0.51, 0.52]), (LABELLED, [0.80, 0.81, 0.82]),
                        (CLASS_AGNOSTIC, [0.70, 0.71, 0.72]), (CAPACITY, [0.69, 0.71, 0.73])):
        results |= {_run("label-free alignment: videoqa", row, s): v for s, v in enumerate(values)}
    results |= {_run("label-free ablation: videoqa", "w/o PTC", s): v for s, v in enumerate([0.6, 0.61, 0.62])}
    md = tables(with_references(results))
    assert f"| {LABELLED} | 0.810 +- 0.010 (n=3)*\u2020 |" in md
    assert f"| {CLASS_AGNOSTIC} | 0.710 +- 0.010 (n=3)* |" in md  # beyond the host, not beyond the control
    ablation = md.split("### label-free ablation: videoqa")[1]
    assert "| class-agnostic boxes, full model | 0.710 +- 0.010 (n=3) |" in ablation
    assert "| w/o PTC | 0.610 +- 0.010 (n=3)* |" in ablation
    # With the arm on both splits and the ablations on one, the ablation table has that one column only.
    both = results | {replace(r, column="compositional"): v for r, v in results.items()
                      if r.table == "label-free alignment: videoqa"}
    both = {r: v for r, v in both.items() if not (r.table.startswith("label-free ablation") and r.column == "standard")}
    both |= {replace(_run("label-free ablation: videoqa", "w/o PTC", s), column="compositional"): v
             for s, v in enumerate([0.6, 0.61, 0.62])}
    ablation = tables(with_references(both)).split("### label-free ablation: videoqa")[1].split("###")[0]
    assert "| | compositional |\n" in ablation and "standard" not in ablation
    # The post-training table marks a post-trained host against the host-loss-only control (dagger) too.
    results = {}
    for row, values in (("host only", [0.50, 0.51, 0.52]), (POSTTRAINED_LABELLED, [0.60, 0.61, 0.62]),
                        (POSTTRAINED_LABEL_FREE, [0.54, 0.56, 0.58]), (POSTTRAINED_HOST_LOSS, [0.55, 0.56, 0.57])):
        results |= {_run("post-training without labels: videoqa", row, s): v for s, v in enumerate(values)}
    md = tables(with_references(results))
    assert f"| {POSTTRAINED_LABELLED} | 0.610 +- 0.010 (n=3)*\u2020 |" in md
    assert f"| {POSTTRAINED_LABEL_FREE} | 0.560 +- 0.020 (n=3)* |" in md  # beyond the host, not the control
