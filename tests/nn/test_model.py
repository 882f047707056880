"""The model on a real tiny batch: every Finsta switch, gradients, dual-stream identity, losses."""

from __future__ import annotations


import pytest
import torch

from finsta_pl.data_modules import ClipConfig, LoaderConfig, VideoQADataModule
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.graphs.container import NODE
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


def _outputs(model: VideoQATask, batch, record_saliency: bool = False):  # noqa: ANN001, ANN202
    """Finsta's output and, when asked, every STGD saliency it computed."""
    seen: list[torch.Tensor] = []
    if record_saliency:
        for block in model.finsta.stgd:
            original = block.saliency
            block.saliency = lambda *a, _f=original: seen.append(_f(*a)) or seen[-1]  # type: ignore[method-assign]
    with torch.no_grad():
        out = model.finsta(batch, model.host, *_host(model, batch))
    return out, seen


def _variant(base: VideoQATask, tiny_datamodule, **switch) -> VideoQATask:  # noqa: ANN001
    other = _model(tiny_datamodule, **switch).eval()
    missing, _ = other.load_state_dict(base.state_dict(), strict=False)
    assert not missing, missing  # a switched-off row creates nothing new
    return other


def _same(x: torch.Tensor, y: torch.Tensor) -> bool:
    return torch.allclose(x, y, atol=1e-6, rtol=1e-5)


def test_each_switch_removes_exactly_its_row(tiny_datamodule, tiny_batch) -> None:  # noqa: ANN001
    """The paper's six rows: each changes the component it names and leaves the others as they were."""
    base_model = _model(tiny_datamodule).eval()
    base, base_saliency = _outputs(base_model, tiny_batch, record_saliency=True)
    variants = {s: _outputs(_variant(base_model, tiny_datamodule, **{s: False}), tiny_batch, s == "temporal_edges")
                for s in ("osc", "ptc", "stgd", "temporal_edges", "adverb_nodes", "crossmodal_edges")}
    for loss in ("osc", "ptc"):  # a loss switch drops that loss and nothing else
        out, _ = variants[loss]
        assert loss not in out.losses
        assert all(_same(getattr(base, k), getattr(out, k)) for k in ("text", "video", "joint"))
        assert all(_same(base.losses[k], v) for k, v in out.losses.items())
    for switch in ("stgd", "temporal_edges"):  # DSG-side rows: the DSG stream changes, the TSG does not
        out, _ = variants[switch]
        assert not _same(base.video, out.video) and _same(base.text, out.text), switch
    # Motion saliency reads track identity: switching off the temporal edges leaves STGD exactly as it was.
    _, saliency = variants["temporal_edges"]
    assert base_saliency and any(bool((m > 0).any()) for m in base_saliency)
    assert all(torch.equal(a, b) for a, b in zip(base_saliency, saliency, strict=True))
    # Cross-modal edges: only the HSG changes; the links (and so OSC) stay.
    out, _ = variants["crossmodal_edges"]
    assert not _same(base.joint, out.joint)
    assert _same(base.text, out.text) and _same(base.video, out.video) and _same(base.losses["osc"], out.losses["osc"])


def _batch_with_texts(dm, texts: list[str]):  # noqa: ANN001, ANN202
    """Real clips of the tiny world, sample ``k`` with the sentence ``texts[k % len(texts)]``."""
    import numpy as np

    from finsta_pl.batch import SampleText, collate_samples
    from finsta_pl.data_modules.graph_builder import GraphBuilder, GraphConfig

    builder, samples = GraphBuilder(GraphConfig()), []
    for k in range(6):
        text = texts[k % len(texts)]
        ids, offsets = dm.vocab.encode(text, 16)
        sample = dm.datasets["train"][k]
        sample.dsg, (graphs,) = builder(sample.frames, np.arange(len(sample.frames)), [(text, offsets)])
        sample.texts = [SampleText(ids, graphs)]
        samples.append(sample)
    return collate_samples(samples, dm.vocab.encode_label)


def test_adverb_switch_is_the_text_side_row(tiny_datamodule) -> None:  # noqa: ANN001
    """Adverbial modifiers of the TSG go; the DSG's direction and speed nodes stay."""
    batch = _batch_with_texts(tiny_datamodule, ["the red circle moves left quickly", "a blue square grows slowly",
                                                "the green triangle moves up slowly quickly"])
    assert bool((batch.tsg.node_type == NODE["adverb"]).any()) and bool((batch.dsg.node_type == NODE["adverb"]).any())
    base_model = _model(tiny_datamodule).eval()
    base, _ = _outputs(base_model, batch)
    out, _ = _outputs(_variant(base_model, tiny_datamodule, adverb_nodes=False), batch)
    assert not _same(base.text, out.text) and not _same(base.joint, out.joint)
    assert _same(base.video, out.video)
    assert not _same(base.losses["ptc"], out.losses["ptc"])  # PTC anchors pool the predicate's adverbs


def test_crossmodal_switch_keeps_embedding_links_for_osc(tiny_world) -> None:  # noqa: ANN001
    """With a label-free detector the links come from the model; OSC must not vanish with the edges."""
    from finsta_pl.data_modules.graph_builder import GraphConfig

    dm = VideoQADataModule(synthetic=WorldConfig(num_train=24, num_val=12, num_test=8),
                           clip=ClipConfig(num_frames=4, frame_size=64), loader=LoaderConfig(batch_size=6, num_workers=0),
                           graphs=GraphConfig(detector="grid"))
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch.osc.num_pairs == 0 and bool(batch.embedding_link.samples.all())
    base_model = _model(dm).eval()
    base, _ = _outputs(base_model, batch)
    out, _ = _outputs(_variant(base_model, dm, crossmodal_edges=False), batch)
    assert float(base.losses["osc"]) > 0 and _same(base.losses["osc"], out.losses["osc"])
    assert not _same(base.joint, out.joint)


def test_stgd_sigma_of_every_block_learns(tiny_datamodule, tiny_batch) -> None:  # noqa: ANN001
    model = _model(tiny_datamodule)
    model.finsta = type(model.finsta)(FinstaConfig(heads=2, dsg_blocks=3), model.host, model.fused_features)
    _loss(model, tiny_batch).backward()
    sigmas = [block.log_sigma.grad for block in model.finsta.stgd]
    assert len(sigmas) == 2 and all(g is not None and float(g.abs()) > 0 for g in sigmas)


def test_stgd_saliency_is_never_negative(tiny_batch) -> None:  # noqa: ANN001
    from finsta_pl.nn.rgtrm import STGD

    g = tiny_batch.dsg
    t_max = int(g.node_frame.max()) + 2
    center = (g.node_box[:, :2] + g.node_box[:, 2:]) / 2
    m = STGD(8, 2).saliency(center, g.previous_in_track(), g.node_type == NODE["object"],
                                        g.node_graph * t_max + g.node_frame + 1, g.num_graphs * t_max)
    assert bool(((m >= 0) & (m <= 1)).all()) and bool((m > 0).any())  # Delta < 0 once gave m < 0


def test_distillation_skips_empty_graphs(tiny_datamodule) -> None:  # noqa: ANN001
    batch = _empty_graph_batch(tiny_datamodule)
    model = _model(tiny_datamodule)
    out = model.features(batch).finsta
    assert float(out.losses["distill"].detach()) == 0.0  # a lone "scene" node teaches nothing


def _host(model: VideoQATask, batch):  # noqa: ANN001, ANN202
    video = model.host.encode_video(batch.frames)
    text = model.host.encode_text(batch.text_ids)
    return video, text, model.host.fuse(video, text)


def test_dual_stream_is_identity_at_init(tiny_datamodule, tiny_batch) -> None:  # noqa: ANN001
    with_graphs = _model(tiny_datamodule).eval()
    host_only = VideoQATask(data_info=tiny_datamodule.info(), host=HOST, finsta=FinstaConfig(enabled=False)).eval()
    host_only.load_state_dict(with_graphs.state_dict(), strict=False)
    torch.testing.assert_close(with_graphs.features(tiny_batch).joint, host_only.features(tiny_batch).joint)


@pytest.mark.slow  # 25 optimizer steps, ~60 s on 2 cores; the default run's fits (tests/cli) train the same model end to end
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

    from finsta_pl.batch import Sample, SampleText, collate_samples
    from finsta_pl.data_modules.graph_builder import GraphBuilder, GraphConfig

    builder = GraphBuilder(GraphConfig())
    vocab = tiny_datamodule.vocab
    samples = []
    for k in range(3):
        frames = np.full((4, 64, 64, 3), 128, np.uint8)
        ids, offsets = vocab.encode("quickly!", 8)
        dsg, (graphs,) = builder(frames, np.arange(4), [("quickly!", offsets)])
        samples.append(Sample(str(k), frames, [SampleText(ids, graphs)], dsg, {"label": k, "index": k}))
    return collate_samples(samples, vocab.encode_label)


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
