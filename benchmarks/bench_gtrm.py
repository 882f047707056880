"""Time GTrm's attention kernels (forward + backward) on CPU and print a table with the dense/dgl ratio.

Usage: python -m benchmarks.bench_gtrm [--threads 2] [--runs 10] [--warmup 3]
The numbers decide ``finsta_pl.nn.gtrm.CPU_AUTO_BACKEND`` (dense vs dgl) and ``DENSE_SDPA`` (the "sdpa"
column: the dense kernel with scaled_dot_product_attention instead of an explicit softmax).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from finsta_pl.nn import gtrm
from finsta_pl.nn.gtrm import GTrmLayer, available_backends

from benchmarks.report import Section, markdown_table


def random_batch(sizes: list[int], edges_per_node: float, dim: int, seed: int = 0):
    """Graphs of the given sizes with ~edges_per_node random in-edges per node (no duplicates/self-loops)."""
    gen = torch.Generator().manual_seed(seed)
    node_graph = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    start, edges = 0, []
    for s in sizes:  # data generation only; the layer itself never loops over graphs
        if s > 1:
            pairs = torch.randperm(s * s, generator=gen)
            pairs = pairs[pairs // s != pairs % s][: int(edges_per_node * s)]
            edges.append(torch.stack([pairs % s, pairs // s]) + start)
        start += s
    edge_index = torch.cat(edges, 1) if edges else torch.zeros(2, 0, dtype=torch.long)
    h = torch.randn(len(node_graph), dim, generator=gen)
    e = torch.randn(edge_index.shape[1], dim, generator=gen)
    return h, e, edge_index, node_graph, len(sizes)


def time_kernels(layer: GTrmLayer, batch, variants: list[str], warmup: int, runs: int) -> dict[str, float]:
    """Median milliseconds of one forward + backward per variant.

    Variants are timed round-robin, one iteration each in turn, so load from other processes on a shared
    machine hits them all alike and the ratio stays meaningful.
    """
    h, e, ei, ng, g = batch
    h, e = h.clone().requires_grad_(), e.clone().requires_grad_()
    times: dict[str, list[float]] = {v: [] for v in variants}
    for it in range(warmup + runs):
        for variant in variants:
            layer.backend = "dense" if variant == "sdpa" else variant
            gtrm.DENSE_SDPA = variant == "sdpa"
            t0 = time.perf_counter()
            ho, eo = layer(h, e, ei, ng, g)
            (ho.square().sum() + eo.square().sum()).backward()
            if it >= warmup:
                times[variant].append((time.perf_counter() - t0) * 1e3)
            layer.zero_grad(set_to_none=True)
            h.grad = e.grad = None
    gtrm.DENSE_SDPA = False
    return {v: statistics.median(t) for v, t in times.items()}


CASES = ("32x8 frame graphs (~12 nodes)", "32 video graphs (8x~12 nodes)", "32 graphs x 15 nodes")


def kernel_table(dim: int = 128, heads: int = 4, warmup: int = 3, runs: int = 10) -> tuple[str, dict[str, float]]:
    """Markdown table of the kernels' ms on the three batches, and the dense/dgl ratio per batch."""
    gen = torch.Generator().manual_seed(1)
    frame_sizes = torch.randint(8, 17, (32 * 8,), generator=gen).tolist()  # ~12 nodes per frame graph
    batches = dict(zip(CASES, (
        random_batch(frame_sizes, 2.0, dim),
        random_batch([sum(frame_sizes[i * 8:(i + 1) * 8]) for i in range(32)], 2.0, dim),
        random_batch([15] * 32, 2.0, dim))))
    backends = available_backends() + ["sdpa"]
    torch.manual_seed(0)
    layer = GTrmLayer(dim, heads)
    rows, ratios = [], {}
    for name, batch in batches.items():
        ms = time_kernels(layer, batch, backends, warmup, runs)
        row = [name, batch[0].shape[0], batch[1].shape[0], int(torch.bincount(batch[3]).max())]
        row += [ms[b] for b in backends]
        if "dgl" in ms:
            ratios[name] = ms["dense"] / ms["dgl"]
            row.append(ratios[name])
        rows.append(row)
    header = ["batch", "N", "E", "Nmax", *(f"{b} ms" for b in backends)] + (["dense/dgl"] if "dgl" in backends else [])
    return markdown_table(header, rows), ratios


def run(quick: bool, out_dir: Path, tiny: bool = False) -> Section:
    """The GTrm kernel section of BENCHMARKS.md: one layer, forward + backward, per kernel (``tiny``: dim 32,
    one run, for the test suite)."""
    torch.set_num_threads(2)
    start = time.perf_counter()
    runs, warmup = (1, 0) if tiny else ((2, 0) if quick else (10, 3))
    table, ratios = kernel_table(dim=32 if tiny else 128, warmup=warmup, runs=runs)
    md = (f"One GTrm layer (dim 128, 4 heads), forward + backward, median of {runs} interleaved runs; `sdpa` is the "
          "dense kernel with `scaled_dot_product_attention`.  These decide `CPU_AUTO_BACKEND` in nn/gtrm.py.\n\n"
          + table)
    return Section("GTrm kernels", md, "python -m benchmarks.bench_gtrm", seconds=time.perf_counter() - start,
                   headline={f"dense/dgl, {k}": v for k, v in ratios.items()})


def main() -> None:
    """Print the kernel table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, dim={args.dim}, heads={args.heads}, "
          f"fwd+bwd median of {args.runs} (warm-up {args.warmup})")
    print(kernel_table(args.dim, args.heads, args.warmup, args.runs)[0])


if __name__ == "__main__":
    main()
