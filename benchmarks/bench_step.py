"""Step overhead: one full training step (forward, loss, backward, AdamW step) of host + Finsta over the host
alone, for every task's shipped config with the built-in host, and for videoqa and retrieval with a CLIP4Clip
host at ViT-B/32 shape (random weights, 8 frames, ViT input 224 px), with the FLOP ratio ``finsta-pl profile`` counts.

Host alone = the *same* model and optimizer on the same batch with its scene graphs removed (as
``finsta-pl profile`` does), so the difference is exactly what Finsta's streams and losses cost.  The
``enabled: false`` twin configs would differ in more than that: without Finsta's distillation some host
features go unread, so their parameters are frozen and their backward skipped, which is not Finsta's overhead.
Batches come from the real DataModule (no workers) and are loaded before timing.  fp32 (the CLIP4Clip config
trains in bf16-mixed on GPUs; on CPU bf16 autocast would time the cast, not the model).

Usage: python -m benchmarks.bench_step [--quick]
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.report import Section, interleaved_medians, markdown_table, section_main
from benchmarks.workload import TINY_CONFIGS, build_task, train_batch
from finsta_pl.batch import FinstaBatch
from finsta_pl.tools.profile import _flops, profile_model

TASKS = ("videoqa", "retrieval", "captioning", "mcqa", "inference", "action")
CLIP_TASKS = ("videoqa", "retrieval")
#: timed steps per CLIP4Clip variant: a step takes seconds and its time swings with the allocator, so the median
#: of 2 was not enough (a run measured host + Finsta at 0.75x the host alone).
CLIP_RUNS = 5
# ViT-B/32 (openai/clip-vit-base-patch32) tower shapes; the text vocabulary is the tokenizer's.
VIT_B32 = {"vision_config": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                                 image_size=224, patch_size=32),
           "text_config": dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8),
           "projection_dim": 512}


def host_only(batch: FinstaBatch) -> FinstaBatch:
    """``batch`` without scene graphs: the task runs its host alone."""
    return dataclasses.replace(batch, tsg=None, dsg=None, hsg=None)


def train_step(model: Any, batch: FinstaBatch) -> Callable[[], None]:
    """One training step of ``model`` on ``batch`` (the task's training_step, backward, AdamW step)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-6)  # tiny steps: the weights barely move between timed runs

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model.training_step(batch, 0).backward()
        opt.step()

    return step


def flop_ratio(model: Any, batch: FinstaBatch) -> tuple[float, str]:
    """host + Finsta / host forward FLOPs on this batch, and what was counted: ``finsta-pl profile``'s
    ``head(features().joint)`` where the task's head reads the joint feature, else the forward of the training
    step (retrieval has no head, action recognition no joint feature)."""
    try:
        rows = profile_model(model, batch)
        ratio, counted = rows[2][2] / rows[0][2], "profile_model"
    except (AttributeError, TypeError):
        model.eval()
        ratio = _flops(lambda: model.training_step(batch, 0)) / _flops(lambda: model.training_step(host_only(batch), 0))
        counted = "training_step forward"
    model.train()
    return ratio, counted


def clip_configs(tokenizer_dir: Path) -> list[str]:
    """Overrides for a random ViT-B/32-shaped CLIP4Clip host whose text vocabulary is ``tokenizer_dir``'s."""
    import json

    from finsta_pl.tools.tiny_clip import write_tiny_clip

    write_tiny_clip(tokenizer_dir)  # only its tokenizer is used: the model is built from clip_config
    cfg = json.loads((tokenizer_dir / "config.json").read_text())["text_config"]
    text = {**VIT_B32["text_config"], **{k: cfg[k] for k in ("vocab_size", "max_position_embeddings",
                                                              "bos_token_id", "eos_token_id", "pad_token_id")}}
    clip = json.dumps({**VIT_B32, "text_config": text})
    return ["--model.init_args.host.checkpoint=", f"--model.init_args.host.clip_config={clip}",
            f"--data.init_args.tokenizer={tokenizer_dir}", "--data.init_args.clip.num_frames=8",
            "--data.init_args.clip.frame_size=224"]  # CLIP's input size: frames and graphs as a real run has them


def measure(configs: list[str], overrides: list[str], batch_size: int, warmup: int,
            runs: int) -> tuple[float, float, float, float, str]:
    """``(host ms, host + Finsta ms, time ratio, FLOP ratio, what the FLOPs counted)`` of one task."""
    torch.manual_seed(0)
    model, dm = build_task(configs, overrides, batch_size)
    model.train()
    batch = train_batch(dm)
    flops, counted = flop_ratio(model, batch)
    ms = interleaved_medians({"host": train_step(model, host_only(batch)), "full": train_step(model, batch)},
                             warmup, runs)
    return 1e3 * ms["host"], 1e3 * ms["full"], ms["full"] / ms["host"], flops, counted


def run(quick: bool, out_dir: Path, tiny: bool = False) -> Section:
    """Per-task step ratios (built-in host), then the CLIP4Clip rows (full runs).  ``tiny``: videoqa only,
    batch 4, one run, the tests' tiny world and model (for the test suite)."""
    t0 = time.perf_counter()
    torch.set_num_threads(2)
    tasks = TASKS[:1] if tiny or quick else TASKS
    batch_size = 4 if tiny else 16
    warmup, runs = (1, 1) if tiny else ((1, 2) if quick else (2, 5))
    rows, headline = [], {}
    for task in tasks:
        row = measure([f"experiments/{task}.yaml", *(TINY_CONFIGS if tiny else [])], [], batch_size, warmup, runs)
        rows.append((task, "built-in (dim 128)" if not tiny else "built-in (tiny)", batch_size, *row))
        if task == "videoqa":
            headline["step host+Finsta / host, videoqa built-in"] = row[2]
    if not quick and not tiny:
        with tempfile.TemporaryDirectory() as tmp:
            overrides = clip_configs(Path(tmp) / "clip")
            for task in CLIP_TASKS:
                config = "experiments/videoqa_clip4clip.yaml" if task == "videoqa" else f"experiments/{task}.yaml"
                row = measure([config], _clip_host(task) + overrides, 2, 1, CLIP_RUNS)
                rows.append((task, "CLIP4Clip ViT-B/32 (random), 8 frames, 224 px", 2, *row))
                headline[f"step host+Finsta / host, {task} CLIP4Clip ViT-B/32"] = row[2]
    md = [f"One training step (forward, loss, backward, AdamW step), median of {runs} interleaved runs "
          f"(CLIP4Clip rows: {CLIP_RUNS}), {torch.get_num_threads()} threads, fp32.  Host alone: the same model on the batch with its graphs "
          "removed.  FLOP ratio: forward FLOPs (torch.utils.flop_counter) on the same batch, counted as the last "
          "column says.", "",
          markdown_table(("task", "host", "batch", "host ms", "host+Finsta ms", "time ratio", "FLOP ratio",
                          "FLOPs of"), rows)]
    return Section("Step overhead: host + Finsta over host", "\n".join(md),
                   "python -m benchmarks.bench_step" + (" --quick" if quick else ""),
                   headline=headline, seconds=time.perf_counter() - t0)


def _clip_host(task: str) -> list[str]:
    """Host overrides of ``videoqa_clip4clip.yaml`` for tasks that have no CLIP4Clip config of their own."""
    if task == "videoqa":
        return []
    return ["--model.init_args.host.name=clip4clip", "--model.init_args.host.heads=8"]


def main() -> None:
    """Print the section's markdown."""
    section_main(run, __doc__, Path("benchmarks/plots"))


if __name__ == "__main__":
    main()
