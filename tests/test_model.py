"""The model on a real tiny batch: every Finsta switch, gradients, dual-stream identity, losses."""

from __future__ import annotations


import pytest
import torch

from finsta_pl.hosts.base import HostConfig
from finsta_pl.metrics import DedupMean
from finsta_pl.nn.finsta import FinstaConfig
from finsta_pl.tasks import VideoQATask

HOST = HostConfig(dim=32, heads=2, video_layers=1, text_layers=1)
SWITCHES = ["osc", "ptc", "stgd", "temporal_edges", "adverb_nodes", "crossmodal_edges", "distill", "dual_stream", "memory"]


def _model(tiny_datamodule, **finsta) -> VideoQATask:  # noqa: ANN001
    torch.manual_seed(0)
    return VideoQATask(data_info=tiny_datamodule.info(), host=HOST, finsta=FinstaConfig(heads=2, dropout=0.0, **finsta))


def _loss(model: VideoQATask, batch) -> torch.Tensor:  # noqa: ANN001
    feats = model.features(batch)
    loss = model.task_step(batch, feats, "train")
    if feats.finsta is not None:
        loss = loss + model.finsta.total_loss(feats.finsta.losses)
    return loss


def test_batch_has_graphs_and_pairs(tiny_batch) -> None:  # noqa: ANN001
    assert tiny_batch.has_graphs and tiny_batch.osc.num_pairs > 0 and tiny_batch.ptc.num_pairs > 0
    assert tiny_batch.hsg.num_nodes == tiny_batch.tsg.num_nodes + tiny_batch.dsg.num_nodes
    assert tiny_batch.frames.dtype == torch.uint8


@pytest.mark.parametrize("switch", [None, *SWITCHES])
def test_forward_backward_finite_with_each_part_off(tiny_datamodule, tiny_batch, switch) -> None:  # noqa: ANN001
    model = _model(tiny_datamodule, **({switch: False} if switch else {}))
    loss = _loss(model, tiny_batch)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    feats = model.features(tiny_batch)
    names = set(feats.finsta.losses)
    for name in ("osc", "ptc", "distill"):
        assert (name in names) == (switch != name)


def test_switches_change_the_output(tiny_datamodule, tiny_batch) -> None:  # noqa: ANN001
    model = _model(tiny_datamodule).eval()
    base = model.finsta(tiny_batch, model.host, *_host(model, tiny_batch))
    for switch in ["stgd", "temporal_edges", "adverb_nodes", "crossmodal_edges"]:
        other = _model(tiny_datamodule, **{switch: False}).eval()
        other.load_state_dict(model.state_dict(), strict=False)
        out = other.finsta(tiny_batch, other.host, *_host(other, tiny_batch))
        changed = {k: not torch.allclose(getattr(base, k), getattr(out, k), atol=1e-6) for k in ("text", "video", "joint")}
        assert changed["video"] or changed["joint"], switch
        if switch in {"stgd", "temporal_edges", "crossmodal_edges"}:
            assert not changed["text"], f"{switch} must not touch the text stream"


def _host(model: VideoQATask, batch):  # noqa: ANN001, ANN202
    video = model.host.encode_video(batch.frames)
    text = model.host.encode_text(batch.text_ids)
    return video, text, model.host.fuse(video, text)


def test_dual_stream_is_identity_at_init(tiny_datamodule, tiny_batch) -> None:  # noqa: ANN001
    with_graphs = _model(tiny_datamodule).eval()
    host_only = VideoQATask(data_info=tiny_datamodule.info(), host=HOST, finsta=FinstaConfig(enabled=False)).eval()
    host_only.load_state_dict(with_graphs.state_dict(), strict=False)
    torch.testing.assert_close(with_graphs.features(tiny_batch).joint, host_only.features(tiny_batch).joint)


def test_losses_fall_when_overfitting_one_batch(tiny_datamodule, tiny_batch) -> None:  # noqa: ANN001
    model = _model(tiny_datamodule)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    first = None
    for _ in range(25):
        feats = model.features(tiny_batch)
        parts = {"task": model.task_step(tiny_batch, feats, "train"), **feats.finsta.losses}
        first = first or {k: float(v.detach()) for k, v in parts.items()}
        opt.zero_grad()
        sum(parts.values()).backward()
        opt.step()
    last = {k: float(v.detach()) for k, v in parts.items()}
    for k in first:
        assert last[k] < first[k], (k, first[k], last[k])


def test_bf16_autocast_forward_is_finite(tiny_datamodule, tiny_batch) -> None:  # noqa: ANN001
    model = _model(tiny_datamodule)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = _loss(model, tiny_batch)
    assert torch.isfinite(loss)


def test_dedup_mean_counts_each_sample_once() -> None:
    m = DedupMean()
    m.update(torch.tensor([0, 1, 2]), torch.tensor([1.0, 0.0, 1.0]))
    m.update(torch.tensor([2, 0]), torch.tensor([1.0, 1.0]))  # padded repeats from a distributed sampler
    assert float(m.compute()) == pytest.approx(2 / 3)


def _empty_graph_batch(tiny_datamodule):  # noqa: ANN001, ANN202
    """Plain gray clips and noun-less text: every graph is the scene-only fallback, no OSC/PTC pairs."""
    import numpy as np

    from finsta_pl.data_modules.batch import collate_samples
    from finsta_pl.data_modules.graph_builder import GraphBuilder, GraphConfig

    builder = GraphBuilder(GraphConfig())
    vocab = tiny_datamodule.vocab
    samples = []
    for k in range(3):
        frames = np.full((4, 64, 64, 3), 128, np.uint8)
        ids, offsets = vocab.encode("quickly!", 8)
        samples.append({"id": str(k), "frames": frames, "text_ids": ids, "label": k, "index": k,
                        **builder(frames, np.arange(4), "quickly!", offsets)})
    return collate_samples(samples, vocab.encode_label, ("label", "index"))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_no_nan_with_empty_graphs_in_low_precision(tiny_datamodule, dtype) -> None:  # noqa: ANN001
    batch = _empty_graph_batch(tiny_datamodule)
    assert batch.osc.num_pairs == 0 and batch.ptc.num_pairs == 0
    model = _model(tiny_datamodule)
    with torch.autocast("cpu", dtype=dtype):
        loss = _loss(model, batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
