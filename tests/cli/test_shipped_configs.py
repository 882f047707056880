"""Every file in ``experiments/`` is tested as shipped: a two-rank CPU DDP fit, and one training step after which
every trainable parameter has a gradient (DDP runs with ``find_unused_parameters=False``).

Parametrised over the folder, so a new config is covered the day it is added.  Configs that need something
from outside get it made here: a tiny random CLIP checkpoint for the CLIP4Clip configs, an enhanced host
exported by a post-training model for ``videoqa_enhanced.yaml``, and for the real-dataset configs the embedded
world laid out as each dataset ships (``$FINSTA_PL_DATA_ROOT=<world>/datasets``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO, TINY

CONFIGS = sorted((REPO / "experiments").glob("*.yaml"))


@pytest.fixture(scope="module")
def prerequisites(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment and overrides that make every shipped config runnable offline on tiny data."""
    from finsta_pl.cli import build_cli, expand_config_args
    from finsta_pl.hosts.io import export_host
    from finsta_pl.tools.tiny_clip import write_tiny_clip

    home = tmp_path_factory.mktemp("prereq")
    texts = [(tiny_world / "msrvtt_qa" / "train_qa.json").read_text(),
             (tiny_world / "msrvtt" / "train_val_videodatainfo.json").read_text()]
    clip = write_tiny_clip(home / "tinyclip", texts, width=32)
    data_root = tiny_world / "datasets"  # the world laid out as each real dataset ships
    # An enhanced host of the tiny shape, as post-training would export it (training it is not the point here).
    cli = build_cli(expand_config_args(["--config", str(REPO / "experiments" / "posttrain_synthetic.yaml"),
                                        "--config", str(TINY)]), run=False)
    enhanced = home / "enhanced_host.pt"
    export_host(cli.model.host, cli.model.data_info, enhanced)
    return {"FINSTA_PL_CLIP": str(clip), "FINSTA_PL_DATA_ROOT": str(data_root), "enhanced": str(enhanced)}


def _config_args(config: Path, prereq: dict[str, str]) -> list[str]:
    args = ["--config", str(config), "--config", str(TINY)]
    if "enhanced" in config.stem:
        args.append(f"--model.init_args.host.init_from={prereq['enhanced']}")
    if "clip4clip" in config.stem:  # the tiny CLIP's width (32) does not split into the configs' 8 heads
        args += ["--model.init_args.host.heads=2", "--model.init_args.host.fusion_layers=1",
                 "--data.init_args.clip.frame_size=32"]
    return args


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_trainable_parameter_gets_a_gradient(config: Path, prerequisites: dict[str, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from finsta_pl.cli import build_cli, expand_config_args

    for key in ("FINSTA_PL_CLIP", "FINSTA_PL_DATA_ROOT"):
        monkeypatch.setenv(key, prerequisites[key])
    torch.use_deterministic_algorithms(False)  # the module's fixtures built a Trainer too; conftest restores
    cli = build_cli(expand_config_args(_config_args(config, prerequisites)), run=False)
    # Every shipped config reruns bit-identically (test_determinism.py measures it on one of them).
    assert torch.are_deterministic_algorithms_enabled(), f"{config.name}: trainer.deterministic is off"
    model, dm = cli.model, cli.datamodule
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    model.log = lambda *args, **kwargs: None  # no trainer attached; logging is not under test
    torch.manual_seed(0)
    model.training_step(batch, 0).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{config.name}: parameters without a gradient after one step: {missing}"


@pytest.fixture(scope="module")
def ddp_results(prerequisites: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every shipped config fitted by two gloo ranks (one training and one validation batch each).

    Two processes are started the way torchrun starts them and fit the configs one after the other
    (``tests/runners/ddp_config_runner.py``): Lightning's DDP takes the processes it finds, and the interpreter start-up
    and imports are paid once, not per config.  (``test_cli_fit.py`` covers Lightning's own launcher.)"""
    import socket
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("ddp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    specs = ["::".join([str(c), *_config_args(c, prerequisites)[4:]]) for c in CONFIGS]
    common = ["--config", str(TINY), "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
              "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1",
              "--trainer.num_sanity_val_steps=0"]  # the one validation batch runs after training anyway
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "WORLD_SIZE": "2", "NODE_RANK": "0", "FINSTA_PL_CLIP": prerequisites["FINSTA_PL_CLIP"],
           "FINSTA_PL_DATA_ROOT": prerequisites["FINSTA_PL_DATA_ROOT"]}
    runner = REPO / "tests" / "runners" / "ddp_config_runner.py"
    procs = [subprocess.Popen([sys.executable, str(runner), str(out), *specs, "--", *common], cwd=out,
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(2)]
    for p in procs:
        try:
            p.communicate(timeout=900)
        except subprocess.TimeoutExpired:  # a config hung both ranks: the others after it report "started"/nothing
            for q in procs:
                q.kill()
    return out


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_two_rank_ddp_fit(config: Path, ddp_results: Path) -> None:
    for rank in range(2):
        result = ddp_results / f"{config.stem}.rank{rank}"
        assert result.is_file(), f"{config.name}: rank {rank} never reached it (an earlier config hung)"
        assert result.read_text().strip() == "ok world_size=2", f"{config.name}, rank {rank}:\n{result.read_text()}"
    assert list(ddp_results.glob(f"runs/{config.stem}/version_*/checkpoints/last.ckpt"))
