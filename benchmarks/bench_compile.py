"""The streams compiled (``finsta.compile``: ``torch.compile(dynamic=True)``) against eager: kernels launched and
time of one encoder forward + backward, with each frame recurrence, and what compiling costs.

The streams are compiled as ``finsta.compile: true`` compiles them (``torch.compile(dynamic=True)``), here as a
wrapper so that eager and compiled run interleaved on the same weights.  Kernels are counted by one rule for both
(``finsta_pl.tools.dispatch_count.count_profiled_launches``: the operators called from Python, autograd or a
compiled graph's wrapper, plus the kernels inductor generated), so eager's count here matches
``bench_dispatch``'s ``kernels`` to about 1%.  These are CPU counts and CPU times: on a GPU inductor writes
Triton kernels and fuses by its own rules, so the GPU count is to be measured there.  Compiling happens at the
first batches and again for a new pattern of sizes (graphs of one node, a frame without nodes, ...); its seconds
are given.

Usage: python -m benchmarks.bench_compile [--quick]   (``--quick``: 8x8x4; ``make bench QUICK=1`` leaves it out)
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from benchmarks.bench_encoder import encoder_loss, encoder_step
from benchmarks.report import Section, interleaved_medians, markdown_table, section_main
from benchmarks.workload import TINY_CONFIGS, build_task, object_batch
from finsta_pl.tools.dispatch_count import count_dispatch, count_profiled_launches

CONFIG = "experiments/videoqa.yaml"
#: left out of ``make bench QUICK=1`` (its 3-minute promise): compiling the streams takes minutes at any size.
IN_QUICK_RUN = False


def recurrence_rows(recurrence: str, size: tuple[int, int, int], tiny: bool) -> list[tuple]:
    """``(recurrence, mode, kernels, ms, compile s, max |loss - eager loss|)`` for eager and compiled, on three
    batches of ``size`` (the first two compile, the last is measured)."""
    import torch._dynamo
    import torch._inductor.config

    torch._dynamo.reset()
    with torch._inductor.config.patch({"cpp.enable_kernel_profile": True}):  # generated kernels show in the profiler
        return _rows(recurrence, size, tiny)


def _rows(recurrence: str, size: tuple[int, int, int], tiny: bool) -> list[tuple]:
    model, dm = build_task([CONFIG, *(TINY_CONFIGS if tiny else [])],
                           [f"--model.init_args.finsta.recurrence={recurrence}", "--model.init_args.finsta.backend=dense"],
                           batch_size=8)
    model.train()
    b, t, o = size
    batches = [object_batch(dm, b, o, frames=t, seed=s) for s in range(3)]
    compiled = torch.compile(model.finsta, dynamic=True)
    t0 = time.perf_counter()
    diffs = []
    for batch in batches:
        c_loss, e_loss = encoder_loss(model, batch, compiled)(), encoder_loss(model, batch)()
        c_loss.backward()
        model.zero_grad(set_to_none=True)
        diffs.append(abs(float(c_loss.detach()) - float(e_loss.detach())))
    compile_s = time.perf_counter() - t0
    eager, fused = encoder_step(model, batches[-1]), encoder_step(model, batches[-1], compiled)
    eager()  # warm
    check = count_dispatch(eager).launches
    launches = {"eager": count_profiled_launches(eager).total, "compiled": count_profiled_launches(fused).total}
    ms = {k: 1e3 * v for k, v in interleaved_medians({"eager": eager, "compiled": fused}, warmup=1, runs=5).items()}
    return [(recurrence, "eager", launches["eager"], f"{ms['eager']:.1f}", "-", "-", check),
            (recurrence, "compiled", launches["compiled"], f"{ms['compiled']:.1f}", f"{compile_s:.0f}",
             f"{max(diffs):.1e}", "-")]


def run(quick: bool, out_dir: Path, tiny: bool = False) -> Section:
    """Eager and compiled rows for ``loop`` and ``scan`` at 32x8x16 (``--quick``/``--tiny``: 8x8x4)."""
    t0 = time.perf_counter()
    torch.set_num_threads(2)
    size = (8, 8, 4) if quick or tiny else (32, 8, 16)
    rows = [row for recurrence in ("loop", "scan") for row in recurrence_rows(recurrence, size, tiny)]
    by = {(r[0], r[1]): r for r in rows}
    headline = {}
    for rec in ("loop", "scan"):
        headline[f"kernels per encoder step, compiled / eager ({rec})"] = by[rec, "compiled"][2] / by[rec, "eager"][2]
        headline[f"encoder step time on CPU, compiled / eager ({rec})"] = (float(by[rec, "compiled"][3])
                                                                           / float(by[rec, "eager"][3]))
        headline[f"kernels per encoder step at {'x'.join(map(str, size))}, compiled ({rec})"] = float(by[rec, "compiled"][2])
    md = [f"One encoder forward + backward at {'x'.join(map(str, size))} (batch x frames x objects; videoqa "
          "streams, dense kernel), eager and compiled as `finsta.compile: true` compiles them "
          "(`torch.compile(dynamic=True)`, inductor, CPU), for each frame recurrence.  `kernels`: launched per step, counted under the profiler by one rule for "
          "both (`count_profiled_launches`; `dispatch check`: eager's count by `count_dispatch`, the counter of "
          "the section above, which cannot see inside a compiled step).  `ms`: median of 5 interleaved runs, "
          "2 threads, with the profiler's per-kernel markers compiled in.  `compile s`: the first three batches, "
          "eager reference included.  `loss diff`: largest |compiled - eager| loss over them (fp32).", "",
          markdown_table(("recurrence", "mode", "kernels", "ms", "compile s", "loss diff", "dispatch check"), rows)]
    return Section("Compiled streams", "\n".join(md), "python -m benchmarks.bench_compile", [], headline,
                   time.perf_counter() - t0)


def main() -> None:
    """Print the section's markdown."""
    section_main(run, __doc__, Path("benchmarks/plots"))


if __name__ == "__main__":
    main()
