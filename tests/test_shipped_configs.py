"""Every file in ``experiments/`` is tested as shipped: a two-rank CPU DDP fit, and one training step after which
every trainable parameter has a gradient (DDP runs with ``find_unused_parameters=False``).

Parametrised over the folder, so a new config is covered the day it is added.  Configs that need something
from outside get it made here: a tiny random CLIP checkpoint for the CLIP4Clip configs, an enhanced host
exported by a post-training model for ``videoqa_enhanced.yaml``, and the embedded world's MSRVTT-QA files
(written in the official layout) as ``$FINSTA_PL_DATA_ROOT/msrvtt`` for ``msrvtt.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import REPO, TINY, run_cli

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
    data_root = home / "data"
    data_root.mkdir()
    (data_root / "msrvtt").symlink_to(tiny_world, target_is_directory=True)
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
    cli = build_cli(expand_config_args(_config_args(config, prerequisites)), run=False)
    model, dm = cli.model, cli.datamodule
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    model.log = lambda *args, **kwargs: None  # no trainer attached; logging is not under test
    torch.manual_seed(0)
    model.training_step(batch, 0).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{config.name}: parameters without a gradient after one step: {missing}"


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_two_rank_ddp_fit(config: Path, prerequisites: dict[str, str], tmp_path: Path) -> None:
    env = {"OMP_NUM_THREADS": "1", "FINSTA_PL_CLIP": prerequisites["FINSTA_PL_CLIP"],
           "FINSTA_PL_DATA_ROOT": prerequisites["FINSTA_PL_DATA_ROOT"]}
    proc = run_cli("fit", *_config_args(config, prerequisites), "--trainer.accelerator=cpu", "--trainer.devices=2",
                   "--trainer.strategy=ddp", "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1",
                   f"--trainer.logger.init_args.save_dir={tmp_path}", f"--trainer.default_root_dir={tmp_path}",
                   cwd=tmp_path, env=env, timeout=300)
    output = proc.stdout[-3000:] + "\n" + proc.stderr[-5000:]
    assert proc.returncode == 0, output
    assert "distributed_backend=gloo" in proc.stdout + proc.stderr
    assert list(tmp_path.glob("*/version_0/checkpoints/last.ckpt")), output
