"""Post-training: full-matrix retrieval metric, enhanced-host export and loading into a downstream task."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import REPO, TINY, run_cli
from finsta_pl.errors import FinstaError
from finsta_pl.metrics import RetrievalRecall


def test_retrieval_recall_matches_a_full_matrix_reference() -> None:
    torch.manual_seed(0)
    text, video = torch.randn(9, 8), torch.randn(5, 8)
    vid = torch.tensor([0, 0, 1, 2, 2, 2, 3, 4, 4])
    m = RetrievalRecall()
    m.update(text[:5], video[vid[:5]], torch.arange(5), vid[:5])
    m.update(text[3:], video[vid[3:]], torch.arange(3, 9), vid[3:])  # overlapping repeats, as DDP padding makes
    out = m.compute()
    s = torch.nn.functional.normalize(text, dim=-1) @ torch.nn.functional.normalize(video, dim=-1).t()
    t2v = [int((s[i] >= s[i, vid[i]]).sum()) for i in range(9)]  # pessimistic ties
    v2t = [min(int((s[:, j] >= s[i, j]).sum()) for i in range(9) if vid[i] == j) for j in range(5)]
    for k in (1, 5):
        assert float(out[f"t2v_r{k}"]) == pytest.approx(sum(r <= k for r in t2v) / 9)
        assert float(out[f"v2t_r{k}"]) == pytest.approx(sum(r <= k for r in v2t) / 5)
    import numpy as np

    assert float(out["t2v_medr"]) == pytest.approx(float(np.median(t2v)))
    assert float(out["v2t_mnr"]) == pytest.approx(float(np.mean(v2t)))


@pytest.mark.slow  # a whole fit or tool run; make test-slow (CI runs it) keeps it
def test_posttrain_exports_a_host_that_videoqa_loads(tiny_world: Path, tmp_path: Path) -> None:
    host_file = tmp_path / "enhanced_host.pt"
    proc = run_cli("fit", "--config", str(REPO / "experiments" / "posttrain_synthetic.yaml"), "--config", str(TINY),
                   f"--trainer.logger.init_args.save_dir={tmp_path}", f"--model.init_args.export_path={host_file}",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "val/t2v_r1" in proc.stdout and host_file.is_file()
    saved = torch.load(host_file, weights_only=True)

    from finsta_pl.hosts.base import HostConfig
    from finsta_pl.nn.finsta import FinstaConfig
    from finsta_pl.tasks import VideoQATask

    vocab = ["[PAD]", "[UNK]", "[CLS]", "what", "circle", "red"]
    info = {"task": "videoqa", "vocab": vocab, "targets": ["label", "index"], "labels": ["red", "blue"]}
    host = HostConfig(dim=32, heads=2, video_layers=1, text_layers=1, init_from=str(host_file))
    model = VideoQATask(data_info=info, host=host, finsta=FinstaConfig(enabled=False))
    torch.testing.assert_close(model.host.stem[0][0].weight, saved["state_dict"]["stem.0.0.weight"])
    row = saved["vocab"].index("circle")
    torch.testing.assert_close(model.host.words.weight[4], saved["state_dict"]["words.weight"][row])
    with pytest.raises(FinstaError, match="host dim=32 but this model has 64"):
        VideoQATask(data_info=info, host=HostConfig(dim=64, heads=2, video_layers=1, text_layers=1,
                                                    init_from=str(host_file)), finsta=FinstaConfig(enabled=False))

    proc = run_cli("fit", "--config", str(REPO / "experiments" / "videoqa_enhanced.yaml"), "--config", str(TINY),
                   f"--trainer.logger.init_args.save_dir={tmp_path}", f"--model.init_args.host.init_from={host_file}",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "host initialised from" in proc.stdout + proc.stderr


def test_posttraining_trains_the_hsg_it_distils_from(tiny_world: Path) -> None:
    """The joint distillation target is the HSG readout; it must learn, not stay a random network."""
    from finsta_pl.cli import build_cli, expand_config_args

    cli = build_cli(expand_config_args(["--config", str(REPO / "experiments" / "posttrain_synthetic.yaml"),
                                        "--config", str(TINY)]), run=False)
    model, dm = cli.model, cli.datamodule
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    model.log = lambda *args, **kwargs: None
    feats = model.features(batch)
    assert "hsg" in feats.finsta.losses and float(feats.finsta.losses["hsg"].detach()) > 0
    model.training_step(batch, 0).backward()
    finsta = model.finsta
    for name, module in {"hsg_blocks": finsta.hsg_blocks, "readout_query": finsta.readout_query,
                         "readout_key": finsta.readout_key}.items():
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads), name
    assert not hasattr(finsta, "fuse_gate")  # nothing fused in post-training: no gate to leave untrained


def test_token_distillation_reaches_the_fusion_tokens_under_object_boxes(tiny_world: Path) -> None:
    """``token_distill``: each DSG object node is distilled into the host's fusion tokens RoI-pooled at its box
    and frame (and TSG nodes into their text spans); the pooled distillation never reaches the tokens QA's
    fusion reads.  Its gradient on the video tokens must land exactly on the patches that object boxes cover."""
    from finsta_pl.cli import build_cli, expand_config_args
    from finsta_pl.graphs.container import NODE

    cli = build_cli(expand_config_args(["--config", str(REPO / "experiments" / "posttrain_synthetic.yaml"),
                                        "--config", str(TINY), "--model.init_args.finsta.token_distill=true"]),
                    run=False)
    model, dm = cli.model, cli.datamodule
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    host = model.host
    video = host.encode_video(batch.frames)
    video.tokens.retain_grad()
    text = host.encode_text(batch.text_ids)
    text.tokens.retain_grad()
    out = model.finsta(batch, host, video, text, host.fuse(video.select(batch.text_sample), text))
    assert float(out.losses["token_distill"].detach()) > 0
    out.losses["token_distill"].backward()
    b, t = video.frames.shape[:2]
    g = host.config.patch_grid
    touched = video.tokens.grad.reshape(b, t, g, g, -1).abs().sum(-1) > 0
    dsg = batch.dsg
    expected = torch.zeros(b, t, g, g, dtype=torch.bool)
    for n in torch.nonzero(dsg.node_type == NODE["object"]).flatten().tolist():
        x1, y1, x2, y2 = dsg.node_box[n].tolist()
        cells = torch.arange(g) / g
        xs = (torch.minimum(torch.tensor(x2), cells + 1 / g) - torch.maximum(torch.tensor(x1), cells)) > 0
        ys = (torch.minimum(torch.tensor(y2), cells + 1 / g) - torch.maximum(torch.tensor(y1), cells)) > 0
        expected[int(dsg.node_graph[n]), int(dsg.node_frame[n])] |= ys[:, None] & xs[None, :]
    assert expected.any() and torch.equal(touched, expected)
    # Text side: exactly the tokens inside some TSG node's span get a gradient.
    spans = torch.zeros(text.tokens.shape[:2], dtype=torch.bool).flatten()
    spans[batch.span_token] = True
    assert torch.equal(text.tokens.grad.abs().sum(-1).flatten() > 0, spans)


def test_an_exported_small_vlm_trains_at_the_pretrained_rate(tiny_world: Path, tmp_path: Path) -> None:
    """After ``host.init_from``, the built-in host reports its weights as pretrained (``optim.pretrained_lr``)."""
    from finsta_pl.hosts.base import HostConfig
    from finsta_pl.hosts.io import export_host
    from finsta_pl.hosts.registry import build_host
    from finsta_pl.nn.finsta import FinstaConfig
    from finsta_pl.tasks import VideoQATask
    from finsta_pl.tasks.base import OptimConfig

    vocab = ["[PAD]", "[UNK]", "[CLS]", "what", "circle", "red"]
    info = {"task": "videoqa", "vocab": vocab, "targets": ["label", "index"], "labels": ["red", "blue"]}
    config = HostConfig(dim=32, heads=2, video_layers=1, text_layers=1)
    path = export_host(build_host(config, info), info, tmp_path / "host.pt")
    plain = VideoQATask(data_info=info, host=config, finsta=FinstaConfig(enabled=False))
    assert plain.host.pretrained_parameter_names() == set()
    model = VideoQATask(data_info=info, host=HostConfig(dim=32, heads=2, video_layers=1, text_layers=1, init_from=str(path)),
                        finsta=FinstaConfig(enabled=False), optim=OptimConfig(lr=1e-3, pretrained_lr=1e-4))
    assert model.host.pretrained_parameter_names() == {n for n, _ in model.host.named_parameters()}
    model.trainer = type("T", (), {"estimated_stepping_batches": 10})()  # configure_optimizers reads only this
    opt = model.configure_optimizers()["optimizer"]
    host_ids = {id(p) for p in model.host.parameters()}
    for group in opt.param_groups:
        in_host = {id(p) in host_ids for p in group["params"]}
        assert len(in_host) == 1 and group["lr"] == (1e-4 if in_host.pop() else 1e-3)
