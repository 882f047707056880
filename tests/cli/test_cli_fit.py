"""End-to-end runs through the real CLI: fit, resume, DDP, bf16, bad input, config composition."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO, TINY, run_cli, run_cli_here

BASE = ["--config", str(REPO / "experiments" / "videoqa.yaml"), "--config", str(TINY)]


def _fit(tmp_path: Path, *extra: str, env: dict | None = None):  # noqa: ANN202
    args = ["fit", *BASE, f"--trainer.logger.init_args.save_dir={tmp_path}", f"--trainer.default_root_dir={tmp_path}", *extra]
    return run_cli(*args, cwd=tmp_path, env=env)


def _assert_ok(proc) -> None:  # noqa: ANN001
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"


@pytest.fixture(scope="module")
def first_fit(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, "subprocess.CompletedProcess"]:
    """One tiny videoqa fit through the CLI, shared by the tests that read its outputs or resume from it."""
    out = tmp_path_factory.mktemp("first_fit")
    proc = _fit(out)
    _assert_ok(proc)
    return out, proc


def test_fit_writes_checkpoint_log_config_and_summary(first_fit) -> None:  # noqa: ANN001
    tmp_path, proc = first_fit
    run = tmp_path / "videoqa" / "version_0"
    assert (run / "config.yaml").is_file()
    assert (run / "metrics.csv").read_text().count("train/loss") == 1
    assert list((run / "checkpoints").glob("best-*.ckpt")) and (run / "checkpoints" / "last.ckpt").is_file()
    summary = (run / "summary.txt").read_text()
    assert "val/acc" in summary and "majority baseline" in summary and "question-type-prior baseline" in summary
    assert summary.strip() in proc.stdout
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["hyper_parameters"]["data_info"]["labels"], "answer vocabulary must travel with the model"


def test_resume_from_checkpoint_continues_the_run(first_fit, tmp_path: Path) -> None:  # noqa: ANN001
    last = first_fit[0] / "videoqa" / "version_0" / "checkpoints" / "last.ckpt"
    first = torch.load(last, weights_only=False)
    proc = _fit(tmp_path, "--trainer.max_epochs=2", f"--ckpt_path={last}")
    _assert_ok(proc)
    resumed = torch.load(tmp_path / "videoqa" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)
    assert first["epoch"] == 0 and resumed["epoch"] == 1
    assert resumed["global_step"] == first["global_step"] + 2  # two more optimizer steps, not a restart
    assert "Restoring states from the checkpoint" in proc.stdout + proc.stderr


@pytest.mark.slow  # ~12 s; the default run keeps DDP of every shipped config (test_shipped_configs) and test_ddp_equality
def test_ddp_two_cpu_processes_through_lightnings_launcher(tiny_world: Path, tmp_path: Path) -> None:
    """Lightning starts rank 1 itself, re-running this command line: with a config that ``extends`` another,
    that command line holds inline YAML (it crashed with ``OSError: File name too long`` there)."""
    proc = run_cli("fit", "--config", str(REPO / "experiments" / "posttrain_synthetic.yaml"), "--config", str(TINY),
                   "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
                   f"--trainer.logger.init_args.save_dir={tmp_path}", cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    _assert_ok(proc)
    assert "distributed_backend=gloo" in proc.stdout + proc.stderr
    assert (tmp_path / "posttrain_synthetic" / "version_0" / "summary.txt").is_file()


@pytest.mark.slow  # a CLI fit, ~15 s; the default run keeps test_mixed_precision's bf16-mixed / 16-mixed Trainer fits
def test_bf16_mixed_fit(tiny_world: Path, tmp_path: Path) -> None:
    proc = _fit(tmp_path, "--trainer.precision=bf16-mixed")
    _assert_ok(proc)
    metrics = (tmp_path / "videoqa" / "version_0" / "metrics.csv").read_text()
    assert "nan" not in metrics.lower()


@pytest.mark.slow  # a CLI fit, ~12 s; the default run fits videoqa_host_only.yaml in the shipped-config DDP fixture
def test_host_only_config_builds_no_graphs(tiny_world: Path, tmp_path: Path) -> None:
    proc = run_cli("fit", "--config", str(REPO / "experiments" / "videoqa_host_only.yaml"), "--config", str(TINY),
                   f"--trainer.logger.init_args.save_dir={tmp_path}", cwd=tmp_path)
    _assert_ok(proc)
    ckpt = next((tmp_path / "videoqa_host_only" / "version_0" / "checkpoints").glob("last.ckpt"))
    state = torch.load(ckpt, weights_only=False)["state_dict"]
    assert not any(k.startswith("finsta.") for k in state)


def test_print_config_resolves_extends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capfd: pytest.CaptureFixture[str]) -> None:
    proc = run_cli_here("fit", "--config", str(REPO / "experiments" / "msrvtt.yaml"), "--print_config", cwd=tmp_path,
                        env={"FINSTA_PL_DATA_ROOT": "/datasets"}, monkeypatch=monkeypatch, capfd=capfd)
    _assert_ok(proc)
    assert "dataset: msrvtt_qa" in proc.stdout
    assert "/datasets/msrvtt" in proc.stdout
    assert "class_path: finsta_pl.tasks.VideoQATask" in proc.stdout  # inherited from videoqa.yaml


def test_null_on_the_command_line_is_none_not_a_string(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    import yaml

    proc = run_cli_here("fit", "--config", str(REPO / "experiments" / "videoqa_enhanced.yaml"),
                        "--model.init_args.host.init_from=null", "--model.init_args.optim.pretrained_lr=null",
                        "--print_config", cwd=tmp_path, monkeypatch=monkeypatch, capfd=capfd)
    _assert_ok(proc)
    model = yaml.safe_load(proc.stdout)["model"]["init_args"]
    assert model["host"]["init_from"] is None and model["optim"]["pretrained_lr"] is None
    assert model["finsta"]["enabled"] is False  # the rest of the composed config is untouched


def test_missing_real_dataset_says_where_to_put_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    proc = run_cli_here("fit", "--config", str(REPO / "experiments" / "msrvtt.yaml"), cwd=tmp_path,
                        env={"FINSTA_PL_DATA_ROOT": str(tmp_path / "nowhere")}, monkeypatch=monkeypatch, capfd=capfd)
    assert proc.returncode == 2
    folder = tmp_path / "nowhere" / "msrvtt" / "msrvtt_qa"
    assert f"the annotation folder {folder} does not exist" in proc.stderr  # names the folder it looked in
    assert f"{folder}/{{train_qa.json, val_qa.json, test_qa.json}}" in proc.stderr  # and the files it wants there
    assert "Traceback" not in proc.stderr


def test_malformed_annotation_names_file_and_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "msrvtt"
    (root / "msrvtt_qa").mkdir(parents=True)
    (root / "videos").mkdir()
    (root / "msrvtt_qa" / "train_qa.json").write_text(json.dumps([{"question": "what is it?", "answer": "cat", "video_id": 1},
                                                                   {"question": "who?", "video_id": 2}]))
    (root / "msrvtt_qa" / "val_qa.json").write_text(json.dumps([{"question": "what is it?", "answer": "cat", "video_id": 1}]))
    from tests.helpers.video_fixtures import write_ramp

    write_ramp(root / "videos" / "video1.mp4", frames=12)
    # A malformed record is a bad sample (skipped and counted by default); with `raise` it ends the run by name.
    here = {"cwd": tmp_path, "env": {"FINSTA_PL_DATA_ROOT": str(tmp_path)}, "monkeypatch": monkeypatch, "capfd": capfd}
    proc = run_cli_here("fit", "--config", str(REPO / "experiments" / "msrvtt.yaml"),
                        "--data.init_args.on_bad_sample=raise", **here)
    assert proc.returncode == 2
    assert "train_qa.json: record 1 is malformed" in proc.stderr and "'answer'" in proc.stderr
    assert "Traceback" not in proc.stderr
    # Without a validation file the run stops with one message naming the split, no traceback.
    (root / "msrvtt_qa" / "val_qa.json").unlink()
    proc = run_cli_here("fit", "--config", str(REPO / "experiments" / "msrvtt.yaml"), **here)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"needs the val split, but the val split is read from val_qa.json in {root / 'msrvtt_qa'}, which is not " \
           "there" in proc.stderr


def test_lightning_entry_point_is_declared() -> None:
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("lightning") == "finsta_pl.cli:main" and scripts.get("finsta-pl") == "finsta_pl.cli:main"


def test_expanded_arguments_survive_a_second_expansion() -> None:
    """Lightning's DDP launcher starts rank 1 with rank 0's (already expanded) sys.argv: inline YAML longer
    than a file name once raised ``OSError: File name too long`` there."""
    from finsta_pl.cli import expand_config_args

    args = expand_config_args(["fit", "--config", str(REPO / "experiments" / "videoqa_enhanced.yaml"),
                               "--model.init_args.host.init_from=null", "--trainer.max_epochs=1"])
    # three bases (experiments/base/), videoqa, videoqa_host_only, videoqa_enhanced, + null, + run name
    assert any("\n" in a for a in args) and sum(a == "--config" for a in args) == 8
    long_yaml = "model:\n  init_args:\n    host:\n      dim: 32\n" + "# padding\n" * 40  # > NAME_MAX characters
    assert expand_config_args(args) == args
    assert expand_config_args(["--config", long_yaml]) == ["--config", long_yaml]
