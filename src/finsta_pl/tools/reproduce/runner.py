"""How a reproduction's runs run: one fit in this process, or many in a pool of one-thread processes, each
started as soon as the post-training it starts from has finished; each run's output in its own log."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from finsta_pl.tools.reproduce.plan import Run, Size, clip_checkpoint, enhanced_host


def execute(run: Run, size: Size, out: Path) -> float:
    """Run ``run`` in this process and return its metric (the last validation's value)."""
    from finsta_pl.cli import build_cli, expand_config_args

    if run.export:
        enhanced_host(out, run.seed, run.column, run.host).parent.mkdir(parents=True, exist_ok=True)
    cli = build_cli(expand_config_args(run.args(size, out)))
    metrics = cli.trainer.callback_metrics
    if run.metric not in metrics:
        raise RuntimeError(f"{run.slug}: no {run.metric} among the logged metrics {sorted(metrics)}")
    return float(metrics[run.metric])


def execute_logged(run: Run, size: Size, out: Path) -> float:
    """:func:`execute` with the run's console output in ``out/logs/<slug>.log`` (the runs of a pool would
    interleave theirs); a failure raises naming the run and its log."""
    import traceback

    log = out / "logs" / f"{run.slug}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with _output_to(log):
        try:
            return execute(run, size, out)
        except Exception as exc:
            traceback.print_exc()
            raise RuntimeError(f"{run.slug} failed ({type(exc).__name__}: {exc}); its log: {log}") from None


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr to ``path`` at the descriptor level, then restore them.

    Why not ``contextlib.redirect_stdout``: logging handlers (Lightning's among them) keep the stream they were
    made with, so a pool process's second run would write its log lines to the first run's closed file; C
    extensions' output would bypass it too.  Swapping descriptors 1 and 2 keeps every such stream valid."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("w") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _one_thread() -> None:
    """A pool process's initialiser: one thread each, the pool is as wide as the cores it was given."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def write_clip_checkpoint(size: Size, out: Path) -> None:
    """The tiny random CLIP of the CLIP4Clip rows, its BPE merges built from the reproduction world's words
    (the vocabularies of the captions and questions the built-in host's word tokenizer collects)."""
    from finsta_pl.cli import build_cli, expand_config_args
    from finsta_pl.tools.tiny_clip import write_tiny_clip

    if (clip_checkpoint(out) / "config.json").is_file():
        return
    texts = []
    for task in ("posttrain_synthetic", *size.clip4clip):
        probe = Run("vocabulary", task, "standard", size.seeds[0], (f"experiments/{task}.yaml",), (), "")
        cli = build_cli(expand_config_args(probe.args(size, out)[1:]), run=False)
        texts.append(json.dumps(cli.model.data_info))
    write_tiny_clip(clip_checkpoint(out), texts, width=64, layers=2, image_size=32, patch_size=8)


def run_all(runs: Sequence[Run], size: Size, out: Path, done: dict[str, float],
            record: Callable[[Run, float, float], None], run_one: Callable[[Run, Size, Path], float],
            jobs: int) -> None:
    """Run what ``done`` lacks, at most ``jobs`` at once, each as soon as the post-training it starts from
    has finished; ``record(run, value, seconds)`` as each ends.  Runs that are the same fit (``Run.fit``) run
    once: the others are recorded with its value and 0 s.  The first failure stops the pool."""
    same: dict[tuple, list[Run]] = {}
    for run in runs:
        same.setdefault(run.fit, []).append(run)
    pending = []
    for group in same.values():
        known = next((done[r.slug] for r in group if r.slug in done), None)
        if known is None:
            pending.append(group[0])
        else:  # a resumed reproduction whose earlier plan ran this fit under one of its other names
            for run in group:
                if run.slug not in done:
                    done[run.slug] = known
                    record(run, known, 0.0)

    def finish(run: Run, value: float, took: float) -> None:
        for r in same[run.fit]:
            done[r.slug] = value
            record(r, value, took if r is run else 0.0)

    if jobs <= 1:
        for run in pending:
            start = time.perf_counter()
            value = run_one(run, size, out)
            finish(run, value, time.perf_counter() - start)
        return
    import multiprocessing

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread) as pool:
        running: dict[Future, tuple[Run, float]] = {}
        while pending or running:
            for run in [r for r in pending if r.dependency is None or r.dependency in done]:
                if len(running) >= jobs:
                    break
                pending.remove(run)
                running[pool.submit(run_one, run, size, out)] = (run, time.perf_counter())
            if not running:
                raise RuntimeError(f"{len(pending)} runs wait on post-trainings that are not in the plan")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                run, start = running.pop(future)
                finish(run, future.result(), time.perf_counter() - start)  # a failed run raises, naming its log
