"""Mixed precision (issue 11, point 6): bf16 and fp16 autocast, fp16's grad scaler, and a real bf16-mixed /
16-mixed Trainer fit, on batches whose scene graphs are empty (no node), a single node, or fully masked.

Batches are real library batches: tiny-world samples through the data pipeline, some of whose graphs are
replaced by degenerate ones before :func:`collate_samples`.  The CLI's bf16 fit on ordinary data is
``test_cli_fit.py::test_bf16_mixed_fit``; the scene-only-batch autocast check is ``test_model.py``.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch.utils.data import DataLoader

from finsta_pl.batch import FinstaBatch, Sample, SampleText, TextGraphs, collate_samples
from finsta_pl.graphs.container import NODE, SceneGraph
from finsta_pl.graphs.hsg import Alignment, build_hsg
from finsta_pl.nn import gtrm
from finsta_pl.nn.finsta import FinstaConfig
from finsta_pl.nn.gtrm import GTrmLayer
from finsta_pl.nn.scatter import scatter_softmax
from tests.nn.test_model import HOST, _loss, _model  # one model recipe for all model tests

LOW = [torch.bfloat16, torch.float16]


def _no_nodes() -> SceneGraph:
    """A graph with no node at all (the pipeline always leaves a scene node; the model must not rely on it)."""
    empty = torch.zeros(0, dtype=torch.long)
    return SceneGraph(empty, [], torch.zeros(2, 0, dtype=torch.long), empty)


def _adverb_only() -> SceneGraph:
    """One adverb node: with ``adverb_nodes: false`` every node of this TSG is masked."""
    return SceneGraph(torch.tensor([NODE["adverb"]]), ["quickly"], torch.zeros(2, 0, dtype=torch.long),
                      torch.zeros(0, dtype=torch.long))


def _replace_graphs(sample: Sample, dsg: SceneGraph, tsg: SceneGraph) -> Sample:
    """``sample`` with its DSG and every text's TSG replaced (HSG rebuilt, no alignment pairs)."""
    texts = [SampleText(t.ids, TextGraphs(tsg, build_hsg(tsg, dsg, []), Alignment(), Alignment()), t.targets)
             for t in sample.texts]
    return Sample(sample.id, sample.frames, texts, dsg, sample.targets)


def _degenerate_samples(dm) -> list[Sample]:  # noqa: ANN001
    """Two real samples (so OSC/PTC have pairs) and four with degenerate graphs."""
    ds = dm.datasets["train"]
    real = [ds[k] for k in range(6)]
    frames = real[0].frames.shape[0]
    return real[:2] + [
        _replace_graphs(real[2], SceneGraph.scene_only(1), SceneGraph.scene_only(0)),  # single node each
        _replace_graphs(real[3], real[3].dsg, _no_nodes()),  # text with an empty TSG
        _replace_graphs(real[4], _no_nodes(), _no_nodes()),  # nothing at all: empty DSG, TSG and HSG
        _replace_graphs(real[5], SceneGraph.scene_only(frames), _adverb_only()),
    ]


def _all_masked_samples(dm) -> list[Sample]:  # noqa: ANN001
    """Samples whose HSG is one masked adverb (``adverb_nodes: false``): the readout has no valid key."""
    ds = dm.datasets["train"]
    return [_replace_graphs(ds[k], _no_nodes(), _adverb_only()) for k in range(2)]


def _batch(dm, samples: list[Sample]) -> FinstaBatch:  # noqa: ANN001
    return collate_samples(samples, dm.vocab.encode_label)


def _assert_finite_step(model, batch: FinstaBatch, dtype: torch.dtype) -> None:  # noqa: ANN001
    with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        loss = _loss(model, batch)
    assert loss.dtype == torch.float32 and torch.isfinite(loss), float(loss)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads, "no gradient reached the model"
    bad = [n for n, g in grads.items() if not torch.isfinite(g).all()]
    assert not bad, f"non-finite gradients under {dtype}: {bad[:5]}"


@pytest.mark.parametrize("recurrence", ["loop", "scan"])
@pytest.mark.parametrize("dtype", LOW)
def test_empty_and_single_node_graphs_train_under_autocast(tiny_datamodule, dtype, recurrence) -> None:  # noqa: ANN001
    batch = _batch(tiny_datamodule, _degenerate_samples(tiny_datamodule))
    counts = torch.bincount(batch.tsg.node_graph, minlength=batch.tsg.num_graphs)
    assert (counts == 0).any() and (counts == 1).any(), "the batch must hold empty and single-node TSGs"
    assert (torch.bincount(batch.dsg.node_graph, minlength=batch.dsg.num_graphs) == 0).any()
    assert batch.osc.num_pairs > 0  # the real samples keep the contrastive losses in the step
    _assert_finite_step(_model(tiny_datamodule, recurrence=recurrence), batch, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, *LOW])
def test_fully_masked_readout_is_finite(tiny_datamodule, dtype) -> None:  # noqa: ANN001
    """``adverb_nodes: false`` on an adverb-only text with an empty clip: the HSG readout has no valid node."""
    batch = _batch(tiny_datamodule, _all_masked_samples(tiny_datamodule))
    assert batch.hsg.num_nodes == batch.hsg.num_graphs  # one (masked) adverb per HSG, nothing else
    model = _model(tiny_datamodule, adverb_nodes=False)
    feats = model.features(batch) if dtype == torch.float32 else None
    if feats is not None:
        assert torch.isfinite(feats.finsta.joint).all() and not feats.finsta.joint.abs().sum()
    _assert_finite_step(model, batch, dtype)


def test_fp16_grad_scaler_step_on_cpu(tiny_datamodule) -> None:  # noqa: ANN001
    """The 16-mixed recipe by hand: fp16 autocast forward, scaled backward, unscale, step, update."""
    batch = _batch(tiny_datamodule, _degenerate_samples(tiny_datamodule))
    model = _model(tiny_datamodule)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    for _ in range(2):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            loss = _loss(model, batch)
        assert torch.isfinite(loss)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        scaler.step(opt)
        scaler.update()
    assert scaler.get_scale() == 2.0**12, "the scaler found inf/NaN gradients and skipped a step"
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_scatter_softmax_is_fp32_and_safe_on_fully_masked_segments() -> None:
    src = torch.tensor([0.5, float("-inf"), float("-inf"), 2.0, 1.0], dtype=torch.bfloat16, requires_grad=True)
    index = torch.tensor([0, 1, 1, 2, 2])
    out = scatter_softmax(src, index, 4)  # segment 1: all masked; segment 3: empty
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[:3], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(out[3:].sum(), torch.tensor(1.0))
    (out * torch.arange(5.0)).sum().backward()
    assert torch.isfinite(src.grad.float()).all() and not src.grad[1:3].float().abs().sum()


@pytest.mark.parametrize("dtype", LOW)
def test_gtrm_dense_softmax_runs_in_fp32_under_autocast(dtype, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    seen: list[torch.dtype] = []
    original = torch.Tensor.softmax

    def spy(self: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # noqa: ANN002, ANN003
        seen.append(self.dtype)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "softmax", spy)
    torch.manual_seed(0)
    layer = GTrmLayer(16, 2, backend="dense")
    node_graph = torch.tensor([1, 2, 2, 2])  # graph 0 empty, graph 1 a single node
    edge_index = torch.tensor([[1, 2, 3], [2, 3, 1]])
    h, e = torch.randn(4, 16), torch.randn(3, 16)
    with torch.autocast("cpu", dtype=dtype):
        ho, eo = layer(h, e, edge_index, node_graph, 3, key_bias=torch.randn(4, 2))
    assert seen and all(d == torch.float32 for d in seen), seen
    assert torch.isfinite(ho.float()).all() and torch.isfinite(eo.float()).all()


def test_dense_sdpa_variant_is_finite_under_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gtrm, "DENSE_SDPA", True)
    torch.manual_seed(0)
    layer = GTrmLayer(16, 2, backend="dense")
    h, e = torch.randn(3, 16, requires_grad=True), torch.randn(2, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ho, _ = layer(h, e, torch.tensor([[1, 2], [2, 1]]), torch.tensor([0, 1, 1]), 2)
    ho.float().sum().backward()
    assert torch.isfinite(ho.float()).all() and torch.isfinite(h.grad).all()


class _FixedBatches(L.LightningDataModule):
    """The degenerate batch, twice per epoch, through a real DataLoader (collation in ``collate_fn``)."""

    def __init__(self, dm, samples: list[Sample]) -> None:  # noqa: ANN001
        super().__init__()
        self.dm, self.samples = dm, samples

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.samples * 2, batch_size=len(self.samples),
                          collate_fn=lambda s: collate_samples(s, self.dm.vocab.encode_label))


def _nan_guard_fit(tiny_datamodule, tmp_path, **trainer) -> tuple[L.Trainer, list[float]]:  # noqa: ANN001
    """Fit 2 steps on degenerate batches; returns the trainer and every logged training loss."""
    from finsta_pl.tasks import VideoQATask

    torch.manual_seed(0)
    model = VideoQATask(data_info=tiny_datamodule.info(), host=HOST, finsta=FinstaConfig(heads=2, tsg_layers=1))
    losses: list[float] = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
            losses.append(float(outputs["loss"]))
            assert all(torch.isfinite(p).all() for p in module.parameters()), "weights went non-finite"

    fit = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                    callbacks=[Record()], **trainer)
    fit.fit(model, datamodule=_FixedBatches(tiny_datamodule, _degenerate_samples(tiny_datamodule)))
    return fit, losses


def test_bf16_mixed_trainer_fit_on_degenerate_graphs(tiny_datamodule, tmp_path) -> None:  # noqa: ANN001
    fit, losses = _nan_guard_fit(tiny_datamodule, tmp_path, precision="bf16-mixed")
    assert fit.precision == "bf16-mixed" and fit.global_step == 2
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


def test_16_mixed_flag_on_cpu_falls_back_to_bf16(tmp_path) -> None:  # noqa: ANN001
    """Lightning 2.6 does not run ``precision="16-mixed"`` on CPU: it warns and trains in bf16 instead."""
    with pytest.warns(UserWarning, match="AMP with fp16 is not supported on CPU"):
        trainer = L.Trainer(accelerator="cpu", precision="16-mixed", logger=False, default_root_dir=tmp_path)
    assert trainer.precision == "bf16-mixed"


def test_fp16_mixed_plugin_with_grad_scaler_fits_on_cpu(tiny_datamodule, tmp_path) -> None:  # noqa: ANN001
    """What the flag does not give, the plugin does: fp16 autocast + ``torch.amp.GradScaler("cpu")``."""
    plugin = MixedPrecision("16-mixed", "cpu")
    assert isinstance(plugin.scaler, torch.amp.GradScaler)
    start = plugin.scaler.get_scale()
    fit, losses = _nan_guard_fit(tiny_datamodule, tmp_path, plugins=[plugin])
    assert fit.precision == "16-mixed" and fit.global_step == 2
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert plugin.scaler.get_scale() == start, "a step was skipped for inf/NaN gradients"
