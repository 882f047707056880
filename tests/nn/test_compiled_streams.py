"""``finsta.compile``: the streams under ``torch.compile`` (issue 23).

The default suite checks what makes compilation possible at all, cheaply: the streams of every task kind's
shipped configuration (and of the scan recurrence) trace into one graph with no break
(``torch._dynamo.explain``, no code generation).  A break there is a host sync or an untraceable kernel
(torch-scatter's, DGL's) that would split the compiled step and stall a GPU.  The slow test compiles for real and compares the compiled step with eager.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.workload import TINY_CONFIGS, build_task, stream_inputs, train_batch
from finsta_pl.callbacks import AlignmentMonitor
from finsta_pl.nn.finsta import FinstaConfig

SHIPPED = ["videoqa", "retrieval", "captioning", "mcqa", "inference", "action", "videoqa_label_free",
           "posttrain_synthetic"]


def _trace(task: str, overrides: list[str] = ()):  # noqa: ANN202
    """``torch._dynamo.explain`` of one training forward of the streams of ``experiments/<task>.yaml``."""
    torch.manual_seed(0)
    model, dm = build_task([f"experiments/{task}.yaml", *TINY_CONFIGS], list(overrides), batch_size=6)
    model.train()
    return torch._dynamo.explain(model.finsta)(*stream_inputs(model, train_batch(dm)))


@pytest.mark.parametrize("task", SHIPPED)
def test_shipped_streams_trace_into_one_graph(task: str, tiny_world) -> None:  # noqa: ANN001
    _assert_one_graph(_trace(task))


def test_the_scan_recurrence_and_large_graphs_trace_into_one_graph(tiny_world, monkeypatch) -> None:  # noqa: ANN001
    """The scan recurrence; and graphs large enough that ``auto`` would hand them to DGL on CPU, which a compiled
    graph cannot trace, so it takes the dense kernel while compiling."""
    from finsta_pl.compat.dgl import load_dgl
    from finsta_pl.nn import gtrm

    _assert_one_graph(_trace("videoqa", ["--model.init_args.finsta.recurrence=scan"]))
    if load_dgl() is None:
        pytest.skip("without DGL, auto is the dense kernel anyway")
    monkeypatch.setattr(gtrm, "CPU_AUTO_DGL_MIN_NMAX", 0)  # every graph is "large"
    _assert_one_graph(_trace("videoqa"))


def _assert_one_graph(explained) -> None:  # noqa: ANN001
    reasons = [f"{b.reason} at {b.user_stack[-1] if b.user_stack else '?'}" for b in explained.break_reasons]
    assert explained.graph_break_count == 0 and explained.graph_count == 1, reasons


def test_compile_keeps_parameter_names_and_refuses_dgl(tiny_world) -> None:  # noqa: ANN001
    eager, _ = build_task(["experiments/videoqa.yaml", *TINY_CONFIGS], batch_size=6)
    compiled, _ = build_task(["experiments/videoqa.yaml", *TINY_CONFIGS], ["--model.init_args.finsta.compile=true"],
                             batch_size=6)
    # Compiled in place: a checkpoint of either loads into the other.
    assert compiled.finsta._compiled_call_impl is not None and eager.finsta._compiled_call_impl is None
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    with pytest.raises(ValueError, match="compile.*DGL"):
        FinstaConfig(compile=True, backend="dgl")
    # The host-gradient measurement backs through the streams three times over one forward: not when compiled.
    monitor = AlignmentMonitor()
    monitor.on_train_batch_start(None, eager, None, 0)
    assert eager.host_grads_measurable and eager.measure_host_grads
    with pytest.warns(UserWarning, match="not measured with finsta.compile"):
        monitor.on_train_batch_start(None, compiled, None, 0)
    assert not compiled.host_grads_measurable and not compiled.measure_host_grads


@pytest.mark.slow
def test_compiled_step_equals_eager(tiny_world) -> None:  # noqa: ANN001
    """Loss, every output and every gradient of one compiled forward + backward match eager (fp32; fused kernels
    sum in another order, so to a tolerance), on two batches of different sizes (the second reuses the graph)."""
    torch.manual_seed(0)
    model, dm = build_task(["experiments/videoqa.yaml", *TINY_CONFIGS], ["--model.init_args.finsta.backend=dense"],
                           batch_size=6)
    model.train()
    loader = iter(dm.train_dataloader())
    compiled = torch.compile(model.finsta, dynamic=True)

    def run(streams, inputs):  # noqa: ANN001, ANN202
        out = streams(*inputs)
        loss = (model.finsta.total_loss(out.losses) + out.video.square().mean() + out.text.square().mean()
                + out.joint.square().mean())
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.finsta.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        return loss.detach(), {k: v.detach() for k, v in out.losses.items()}, grads

    for _ in range(2):
        inputs = stream_inputs(model, next(loader))
        loss, losses, grads = run(compiled, inputs)
        ref_loss, ref_losses, ref_grads = run(model.finsta, inputs)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-4, atol=1e-5)
        assert losses.keys() == ref_losses.keys()
        for key, value in ref_losses.items():
            torch.testing.assert_close(losses[key], value, rtol=1e-4, atol=1e-5, msg=key)
        assert grads.keys() == ref_grads.keys()
        for key, value in ref_grads.items():
            torch.testing.assert_close(grads[key], value, rtol=1e-3, atol=1e-5, msg=key)


@pytest.mark.slow  # compiles the training and the validation graphs (~5 min on 2 cores)
def test_compiled_fit_trains_and_its_checkpoint_loads_eagerly(tmp_path, tiny_world) -> None:  # noqa: ANN001
    """``finsta-pl fit`` with ``finsta.compile=true`` under Lightning (the shipped callbacks, the AlignmentMonitor
    among them): it trains, validates and checkpoints, and the checkpoint loads into an eager model strictly."""
    import csv

    from tests.helpers import REPO, run_cli

    proc = run_cli("fit", "--config", str(REPO / "experiments" / "videoqa.yaml"), "--config", str(REPO / TINY_CONFIGS[0]),
                   "--model.init_args.finsta.compile=true", "--trainer.max_epochs=2",
                   f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}",
                   "--trainer.enable_progress_bar=false", cwd=tmp_path, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(next(tmp_path.rglob("metrics.csv")).open()))
    val = [float(r["val/acc"]) for r in rows if r.get("val/acc")]
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(val) == 2 and losses and all(map(torch.isfinite, torch.tensor(losses)))
    assert not any(r.get("train/task_host_grad_norm") for r in rows)  # not measured through a compiled backward
    eager, _ = build_task(["experiments/videoqa.yaml", *TINY_CONFIGS], batch_size=6)
    state = torch.load(next(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=False)["state_dict"]
    eager.load_state_dict(state, strict=True)
