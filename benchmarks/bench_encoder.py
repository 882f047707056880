"""Graph kernels: forward + backward of the whole Finsta encoder (FinstaStreams: TSG, DSG and HSG streams, their
features and losses) per GTrm backend, against a plain dense Transformer encoder on scaled_dot_product_attention
with the same width, heads, layer count per stream and node tokens per sample (padded per sample): the
practical limit of attention over those tokens.

Batches are real videoqa samples whose clips hold 4, 8 or 16 moving objects per frame (``workload.py``), batch
32, 8 frames.  A second table times every GTrm call of the encoder alone with each kernel, which is what
``backend: auto`` decides per call (``gtrm.CPU_AUTO_DGL_MIN_NMAX``).

Usage: python -m benchmarks.bench_encoder [--quick]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.bench_gtrm import time_kernels
from benchmarks.report import Section, interleaved_medians, markdown_table, section_main
from benchmarks.workload import TINY_CONFIGS, build_task, graph_sizes, object_batch, stream_inputs
from finsta_pl.batch import FinstaBatch
from finsta_pl.nn import gtrm
from finsta_pl.nn.gtrm import GTrmLayer

CONFIG = "experiments/videoqa.yaml"
# Dense GTrm materialises several [G, H, Nmax, Nmax] fp32 tensors (mask, scores, probabilities and their
# gradients); past this many cells per tensor (~0.8 GB) it is not run, and the table says so.
DENSE_MAX_CELLS = 200_000_000


class SdpaLayer(nn.Module):
    """Post-LN Transformer layer shaped like GTrm's node branch (qkv, output projection, FFN x ffn_mult)."""

    def __init__(self, dim: int, heads: int, ffn_mult: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_mult * dim), nn.GELU(), nn.Linear(ffn_mult * dim, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        """``x`` [G, N, d]; ``keep`` [G, 1, 1, N] bool, ``False`` on padding keys."""
        g, n, d = x.shape
        q, k, v = self.qkv(x).view(g, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(g, n, d)
        x = self.norm1(x + self.out(a))
        return self.norm2(x + self.ffn(x))


class SdpaEncoder(nn.Module):
    """One stack of :class:`SdpaLayer` per graph stream, with the Finsta encoder's layer counts."""

    def __init__(self, dim: int, heads: int, layers: dict[str, int]) -> None:
        super().__init__()
        self.streams = nn.ModuleDict({k: nn.ModuleList(SdpaLayer(dim, heads) for _ in range(n))
                                      for k, n in layers.items()})

    def forward(self, tokens: dict[str, tuple[Tensor, Tensor]]) -> Tensor:
        """Sum of squares of every stream's outputs (a scalar to differentiate)."""
        total = torch.zeros(())
        for name, (x, keep) in tokens.items():
            for layer in self.streams[name]:
                x = layer(x, keep)
            total = total + x.square().mean()
        return total


def padded_tokens(batch: FinstaBatch, dim: int, seed: int = 0) -> dict[str, tuple[Tensor, Tensor]]:
    """Random node tokens ``[G, Nmax, d]`` per stream with the batch's node count per graph, and key masks."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name in ("tsg", "dsg", "hsg"):
        g = getattr(batch, name)
        counts = torch.bincount(g.node_graph, minlength=g.num_graphs)
        width = max(int(counts.max()), 1)
        keep = torch.arange(width)[None, :] < counts.clamp(min=1)[:, None]
        out[name] = (torch.randn(g.num_graphs, width, dim, generator=gen), keep[:, None, None, :])
    return out


def encoder_loss(model: Any, batch: FinstaBatch, streams: Callable[..., Any] | None = None) -> Callable[[], torch.Tensor]:
    """The forward of ``model.finsta`` (or ``streams``, e.g. a compiled one) on ``batch`` to a scalar that every
    output reaches; host features are computed once, outside."""
    finsta = model.finsta
    inputs = stream_inputs(model, batch)

    def loss() -> torch.Tensor:
        out = (finsta if streams is None else streams)(*inputs)
        return finsta.total_loss(out.losses) + out.video.square().mean() + out.text.square().mean() + out.joint.square().mean()

    return loss


def encoder_step(model: Any, batch: FinstaBatch, streams: Callable[..., Any] | None = None) -> Callable[[], None]:
    """One forward + backward of ``model.finsta`` (or ``streams``) on ``batch`` (:func:`encoder_loss`)."""
    loss = encoder_loss(model, batch, streams)

    def step() -> None:
        loss().backward()
        model.zero_grad(set_to_none=True)

    return step


def step_flops(step: Callable[[], None]) -> int:
    """FLOPs of one forward + backward (``torch.utils.flop_counter``: matmuls and attention; gathers and
    scatters count none), to tell a slow kernel (time ratio above the FLOP ratio) from more work."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def sdpa_step(encoder: SdpaEncoder, tokens: dict[str, tuple[Tensor, Tensor]]) -> Callable[[], None]:
    """One forward + backward of the SDPA encoder."""
    def step() -> None:
        encoder(tokens).backward()
        encoder.zero_grad(set_to_none=True)

    return step


def set_backend(model: Any, backend: str) -> None:
    """Point every GTrm layer of the model at ``backend``."""
    for m in model.modules():
        if isinstance(m, GTrmLayer):
            m.backend = backend


def dense_cells(batch: FinstaBatch, heads: int) -> int:
    """Cells of the largest [G, H, Nmax, Nmax] tensor the dense kernel would build for this batch."""
    return max(g * heads * nmax * nmax for name, (n, e, nmax) in graph_sizes(batch).items()
               for g in [getattr(batch, name).num_graphs])


def gtrm_calls(model: Any, batch: FinstaBatch) -> list[tuple[str, tuple]]:
    """``(layer name, (h, e, edge_index, node_graph, num_graphs))`` of every GTrm call of one encoder forward."""
    names = {m: n for n, m in model.finsta.named_modules() if isinstance(m, GTrmLayer)}
    calls: list[tuple[str, tuple]] = []

    def hook(module: nn.Module, args: tuple) -> None:
        calls.append((names[module], tuple(a.detach() if isinstance(a, Tensor) else a for a in args[:5])))

    handles = [m.register_forward_pre_hook(hook) for m in names]
    try:
        encoder_step(model, batch)()
    finally:
        for h in handles:
            h.remove()
    return calls


def top_ops(fn: Callable[[], None], rows: int = 10) -> str:
    """torch.profiler's self-CPU-time table of one (warm) call of ``fn`` (top ``rows`` ops), as markdown."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return markdown_table(("op", "calls", "self CPU ms", "share"),
                          [(f"`{e.key}`", e.count, e.self_cpu_time_total / 1e3, f"{100 * e.self_cpu_time_total / total:.1f}%")
                           for e in events[:rows]])


def run(quick: bool, out_dir: Path, tiny: bool = False) -> Section:
    """Encoder vs SDPA table, per-call kernel table, and (full runs) the profile of the 16-object encoder.
    ``tiny``: one small size, one run, the tests' tiny world and model (for the test suite)."""
    t0 = time.perf_counter()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    batch_size = 8 if tiny else (16 if quick else 32)
    objects = [4] if tiny or quick else [4, 8, 16]
    warmup, runs = (1, 1) if tiny or quick else (1, 2)  # a warm-up for all: the first call of a kernel pays its set-up
    model, dm = build_task([CONFIG, *(TINY_CONFIGS if tiny else [])], batch_size=batch_size)
    model.train()
    cfg = model.finsta_config
    heads, dim = cfg.heads, model.host.dim
    backends = gtrm.available_backends() + ["auto"]
    sdpa = SdpaEncoder(dim, heads, {"tsg": cfg.tsg_layers, "dsg": cfg.dsg_blocks, "hsg": cfg.hsg_blocks})
    rows, call_rows, headline, notes = [], [], {}, []
    profiled, shares = "", ""
    for n_obj in objects:
        batch = object_batch(dm, batch_size, n_obj)
        sizes = graph_sizes(batch)
        variants: dict[str, Callable[[], object]] = {"sdpa": sdpa_step(sdpa, padded_tokens(batch, dim))}
        big = dense_cells(batch, heads) > DENSE_MAX_CELLS
        step = encoder_step(model, batch)
        for backend in backends:
            if backend == "dense" and big:
                continue

            def fn(backend: str = backend) -> None:
                set_backend(model, backend)
                step()

            variants[backend] = fn
        ms = {k: 1e3 * v for k, v in interleaved_medians(variants, warmup, runs).items()}
        set_backend(model, cfg.backend)
        # Counted with the dense kernel, whose attention is matmuls the counter sees (DGL's sparse ops it does
        # not); where dense cannot run, with auto, and the attention over edges is left out of the count.
        set_backend(model, "auto" if big else "dense")
        flop_ratio = step_flops(step) / step_flops(variants["sdpa"])
        set_backend(model, cfg.backend)
        fastest = min(ms[b] for b in backends if b in ms and b != "auto")
        rows.append((f"{batch_size}x8x{n_obj}",
                     f"{sizes['dsg'][0]} / {sizes['dsg'][1]} / {sizes['dsg'][2]}", ms["sdpa"],
                     *[ms.get(b, "skipped (memory)") for b in backends],
                     *[ms[b] / ms["sdpa"] if b in ms else "-" for b in backends],
                     ms["auto"] / fastest, flop_ratio))
        headline[f"encoder/SDPA at {batch_size}x8x{n_obj} (auto)"] = ms["auto"] / ms["sdpa"]
        worst = "auto / fastest kernel, worst measured size"
        headline[worst] = max(headline.get(worst, 0.0), ms["auto"] / fastest)
        if big:
            gb = dense_cells(batch, heads) * 4 / 2**30
            notes.append(f"dense at {n_obj} objects/frame not run: each [G, H, Nmax, Nmax] tensor would be "
                         f"{gb:.1f} GB (scores, mask, probabilities and their gradients: several of them).")
        if not tiny and not quick and not big:
            call_rows += kernel_calls(model, batch, n_obj, heads, big, runs)
        if n_obj == objects[-1] and not quick and not tiny:
            profiled = top_ops(encoder_step(model, batch))
        if n_obj == objects[0] and not quick and not tiny:
            shares = stage_shares(model, batch, runs)
    header = ("batch x frames x objects", "DSG nodes / edges / Nmax", "SDPA ms", *[f"{b} ms" for b in backends],
              *[f"{b}/SDPA" for b in backends], "auto / fastest", "FLOPs encoder/SDPA")
    md = [f"Finsta encoder (videoqa config: dim {dim}, {heads} heads, TSG {cfg.tsg_layers} + DSG {cfg.dsg_blocks} "
          f"+ HSG {cfg.hsg_blocks} layers) forward + backward, median of {runs} interleaved runs, "
          f"{torch.get_num_threads()} threads.  SDPA: the same layer counts over the same node tokens per graph, "
          "padded per graph (TSG and HSG per text, DSG per clip).  The FLOP column counts one forward + "
          "backward of each (the encoder with the dense kernel; where that cannot run, with auto, whose DGL "
          "attention the counter does not see, so that ratio is a lower bound): GTrm layers also carry edge features (bias, value and, except in a stack's last "
          "layer, an edge MLP and FFN over every edge), and a DSG has about three edges per node in each "
          "direction, so the encoder does more arithmetic than attention over the same tokens until the "
          "quadratic attention of large graphs catches up.", "", markdown_table(header, rows)]
    md += ["", *notes] if notes else []
    if call_rows:
        md += ["", "Every GTrm call of one encoder forward, alone, forward + backward, per kernel (what `auto` "
               f"decides: dgl from Nmax >= {gtrm.CPU_AUTO_DGL_MIN_NMAX}):", "",
               markdown_table(("objects", "layer", "graphs", "nodes", "edges", "Nmax", "dense ms", "dgl ms",
                               "auto picks", "faster"), call_rows)]
    if shares:
        md += ["", f"Where the encoder's time goes at {batch_size}x8x{objects[0]}: the step with a part replaced by "
               "the identity, interleaved with the whole step (the difference is that part's time):", "", shares]
    if profiled:
        md += ["", f"torch.profiler, one `auto` encoder step at 32x8x{objects[-1]} (self CPU time):", "", profiled]
    return Section("Graph kernels: Finsta encoder vs SDPA", "\n".join(md),
                   "python -m benchmarks.bench_encoder" + (" --quick" if quick else ""),
                   headline=headline, seconds=time.perf_counter() - t0)


def stage_shares(model: Any, batch: FinstaBatch, runs: int) -> str:
    """Markdown: the share of one encoder step spent in the frame recurrence (R-GTrm's walk over frames) and
    in GTrm's edge update, each measured by timing the step with that part switched off, interleaved."""
    from finsta_pl.nn import rgtrm

    step = encoder_step(model, batch)
    layers = [m for m in model.finsta.modules() if isinstance(m, GTrmLayer)]

    def no_recurrence() -> None:
        original = rgtrm.FrameRecurrence.forward
        rgtrm.FrameRecurrence.forward = lambda self, h, *args, **kwargs: h * 1.0
        try:
            step()
        finally:
            rgtrm.FrameRecurrence.forward = original

    def no_edge_update() -> None:  # update_edges=False: the layer returns its input edges (as a stack's last)
        flags = [layer.update_edges for layer in layers]
        for layer in layers:
            layer.update_edges = False
        try:
            step()
        finally:
            for layer, flag in zip(layers, flags):
                layer.update_edges = flag

    ms = interleaved_medians({"whole": step, "recurrence": no_recurrence, "edges": no_edge_update}, 1, runs)
    rows = [("frame recurrence (`FrameRecurrence`, a loop over frames)", 1e3 * (ms["whole"] - ms["recurrence"]),
             (ms["whole"] - ms["recurrence"]) / ms["whole"]),
            ("edge update (GTrm's edge MLP + FFN over every edge)", 1e3 * (ms["whole"] - ms["edges"]),
             (ms["whole"] - ms["edges"]) / ms["whole"]),
            ("whole step", 1e3 * ms["whole"], 1.0)]
    return markdown_table(("part", "ms", "share of the step"), rows)


def kernel_calls(model: Any, batch: FinstaBatch, n_obj: int, heads: int, big: bool, runs: int) -> list[tuple]:
    """Rows of the per-call table: each GTrm call of the encoder timed alone with dense and dgl."""
    out = []
    modules = dict(model.finsta.named_modules())
    for name, args in gtrm_calls(model, batch):
        h, e, ei, ng, g = args
        layer = modules[name]
        nmax = int(torch.bincount(ng, minlength=g).max()) if ng.numel() else 0
        kernels = [k for k in gtrm.available_backends() if not (k == "dense" and g * heads * nmax * nmax > DENSE_MAX_CELLS)]
        ms = time_kernels(layer, args, kernels, 0, runs)
        layer.backend = "auto"
        pick = layer._resolve(h.device, nmax)
        layer.backend = model.finsta_config.backend
        faster = min(ms, key=ms.get) if len(ms) > 1 else "-"
        out.append((n_obj, name, g, h.shape[0], ei.shape[1], nmax, ms.get("dense", "-"), ms.get("dgl", "-"), pick, faster))
    return out


def main() -> None:
    """Print the section's markdown."""
    section_main(run, __doc__, Path("benchmarks/plots"))


if __name__ == "__main__":
    main()
