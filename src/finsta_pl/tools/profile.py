"""``finsta-pl profile --config ...``: parameters and FLOPs of the host and of host + Finsta.

The paper's efficiency table (+28% parameters, +16% GFLOPs for its host) for our hosts: the model and one
batch come from the same configs a run uses; FLOPs are counted by ``torch.utils.flop_counter`` on the forward
pass (matmuls, convolutions, attention; gathers and scatters are not FLOPs there), per sample.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


def _count(module: torch.nn.Module | None) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def _flops(fn: Any) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def profile_model(model: Any, batch: Any) -> list[tuple[str, float, float]]:
    """Rows ``(name, parameters in M, forward GFLOPs per sample)`` for host, Finsta and host + Finsta."""
    model.eval()
    host_only = dataclasses.replace(batch, tsg=None, dsg=None, hsg=None)
    n = batch.batch_size
    host_params = _count(model.host) + _count(getattr(model, "head", None))
    finsta_params = _count(model.finsta)
    host_flops = _flops(lambda: model.head(model.features(host_only).joint)) / n
    full_flops = _flops(lambda: model.head(model.features(batch).joint)) / n if model.finsta is not None else host_flops
    return [
        ("host (+ task head)", host_params / 1e6, host_flops / 1e9),
        ("Finsta streams", finsta_params / 1e6, (full_flops - host_flops) / 1e9),
        ("host + Finsta", (host_params + finsta_params) / 1e6, full_flops / 1e9),
    ]


def main(argv: list[str]) -> int:
    """Parse ``--config`` files (same as ``fit``), build model and data, print the table."""
    parser = argparse.ArgumentParser(prog="finsta-pl profile", description=__doc__)
    parser.add_argument("--config", action="append", required=True, help="config file(s), composed in order")
    parser.add_argument("--batch-size", type=int, default=8)
    args, rest = parser.parse_known_args(argv)
    from finsta_pl.cli import build_cli, expand_config_args

    cli_args = expand_config_args([*(a for c in args.config for a in ("--config", c)), *rest])
    cli_args += [f"--data.init_args.loader.batch_size={args.batch_size}", "--data.init_args.loader.num_workers=0"]
    cli = build_cli(cli_args, run=False)
    cli.datamodule.setup("fit")
    batch = next(iter(cli.datamodule.train_dataloader()))
    rows = profile_model(cli.model, batch)
    host = rows[0]
    print(f"{'':22s} {'params (M)':>11s} {'GFLOPs/sample':>14s}")
    for name, params, flops in rows:
        print(f"{name:22s} {params:11.3f} {flops:14.3f}")
    if cli.model.finsta is not None:
        full = rows[2]
        print(f"{'Finsta adds':22s} {100 * (full[1] / host[1] - 1):10.1f}% {100 * (full[2] / host[2] - 1):13.1f}%")
    return 0
