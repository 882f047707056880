"""``finsta.compile``: the streams under ``torch.compile`` (issue 23).

The default suite checks what makes compilation possible at all, cheaply: every shipped configuration's
streams trace into one graph with no break (``torch._dynamo.explain``, no code generation).  A break there is
a host sync or an untraceable kernel (torch-scatter's, DGL's) that would split the compiled step and stall a
GPU.  The slow test compiles for real and compares the compiled step with eager.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.workload import TINY_CONFIGS, build_task, train_batch
from finsta_pl.nn.finsta import FinstaConfig

SHIPPED = ["videoqa", "retrieval", "captioning", "mcqa", "inference", "action", "videoqa_label_free",
           "posttrain_synthetic"]


def _stream_inputs(model, batch):  # noqa: ANN001, ANN202
    """The streams' arguments for ``batch``, as ``FinstaTask.features`` passes them."""
    host = model.host
    with torch.no_grad():
        video = host.encode_video(batch.frames)
        text = host.encode_text(batch.text_ids) if batch.num_texts else None
        joint = host.fuse(video.select(batch.text_sample), text) if text is not None else None
    return batch, host, video, text, joint, model.true_texts(batch)


@pytest.mark.parametrize("task", SHIPPED)
def test_shipped_streams_trace_into_one_graph(task: str, tiny_world) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    model, dm = build_task([f"experiments/{task}.yaml", *TINY_CONFIGS], batch_size=6)
    model.train()
    inputs = _stream_inputs(model, train_batch(dm))
    explained = torch._dynamo.explain(model.finsta)(*inputs)
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
        loss = model.finsta.total_loss(out.losses) + out.video.square().mean() + out.joint.square().mean()
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.finsta.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        return loss.detach(), {k: v.detach() for k, v in out.losses.items()}, grads

    for _ in range(2):
        inputs = _stream_inputs(model, next(loader))
        loss, losses, grads = run(compiled, inputs)
        ref_loss, ref_losses, ref_grads = run(model.finsta, inputs)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-4, atol=1e-5)
        assert losses.keys() == ref_losses.keys()
        for key, value in ref_losses.items():
            torch.testing.assert_close(losses[key], value, rtol=1e-4, atol=1e-5, msg=key)
        assert grads.keys() == ref_grads.keys()
        for key, value in ref_grads.items():
            torch.testing.assert_close(grads[key], value, rtol=1e-3, atol=1e-5, msg=key)
