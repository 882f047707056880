"""``finsta-pl reproduce``: does Finsta help, does post-training transfer, and what does each part cost.

Every number is a fit (or, for zero-shot, a validation) of a shipped config on the embedded world with the
overrides its :class:`Run` lists, run in a pool of ``--jobs`` processes (one thread each); the tables give mean
and standard deviation over seeds and mark the differences whose mean +- std intervals do not overlap.

    finsta-pl reproduce --size full     (make reproduce SIZE=full)    -> RESULTS.md, results/*.png
    finsta-pl reproduce --size small    (make reproduce SIZE=small)   -> runs/reproduce/small/RESULTS.md
    finsta-pl reproduce --size minimal  (what the test suite runs: one task, one seed, toy sizes)

Post-training runs ``posttrain_synthetic.yaml`` once per seed and split and exports the enhanced host; the
"post-trained" rows fine-tune the host-only config from it (no graphs at any point of fine-tuning or
inference), the zero-shot rows validate it without any fine-tuning.  Each seed is its own world (the world's
seed is the run's), so the spread holds data as well as initialisation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

#: the validation metric each task's table reads (higher is better everywhere).
METRIC = {"videoqa": "val/acc", "retrieval": "val/t2v_r1", "captioning": "val/cider", "mcqa": "val/acc",
          "inference": "val/acc", "action": "val/top1"}
COMPOSITIONAL = ("--data.init_args.split_lists={train: splits/compositional_train.txt, "
                 "val: splits/compositional_val.txt, test: splits/compositional_test.txt}")
SPLITS = ("standard", "compositional")
#: the paper's six ablation rows: (row name, the FinstaConfig switch turned off).
ABLATIONS = (("w/o PTC", "ptc"), ("w/o OSC", "osc"), ("w/o STGD", "stgd"),
             ("w/o temporal coreference edges", "temporal_edges"), ("w/o adverb nodes", "adverb_nodes"),
             ("w/o cross-modal edges", "crossmodal_edges"))
HOST_ONLY, JOINT, POSTTRAINED = "host only", "host + Finsta (joint)", "post-trained host, no graphs"
CLIP4CLIP = "clip4clip"
#: the post-training control: the built-in host post-trained on the same clips with its own contrastive loss
#: alone (no scene graphs, so no OSC, PTC or distillation); its rows tell Finsta's share of a post-trained
#: host's gain from what more training on the post-training captions gives by itself.
HOST_LOSS_ONLY = "small_vlm_host_loss_only"
POSTTRAINED_HOST_LOSS = "post-trained with the host loss only, no graphs"


@dataclass(frozen=True)
class Size:
    """How big a reproduction is: the world, epochs, seeds, which tasks each table covers, and how many runs
    go at once (``jobs``: processes of one thread each)."""

    world: tuple[int, int, int]  # training, validation, test videos
    epochs: int
    posttrain_epochs: int
    seeds: tuple[int, ...]
    tasks: tuple[str, ...]
    compositional: tuple[str, ...]  # tasks that also get the compositional split
    ablation_tasks: tuple[str, ...]
    extra: tuple[str, ...] = ()  # further overrides of every run (frames, loader, trainer output)
    studies: bool = True  # robustness, vocabulary-free detector, zero-shot
    ablations: tuple[str, ...] = tuple(switch for _, switch in ABLATIONS)
    clip4clip: tuple[str, ...] = ()  # tasks that get the three rows with a (tiny, random) CLIP4Clip host
    controls: tuple[str, ...] = ()  # tasks that get the post-training control (and zero-shot, with studies)
    jobs: int = 2


#: what every reproduction changes in the shipped configs, to fit its 198 runs of the full size into an hour
#: on 2 cores: 4 frames a clip (the shipped 8 double each run's cost; 4 still show each motion), graphs built
#: in the run's own process (the pool keeps every core busy), validation only after the last epoch.
_REPRO = ("--data.init_args.clip.num_frames=4", "--data.init_args.loader.num_workers=0",
          "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false")
SIZES: dict[str, Size] = {
    "minimal": Size((24, 12, 8), 1, 1, (0,), ("videoqa",), (), ("videoqa",),
                    ("--config", "tests/configs/tiny.yaml"), studies=False, ablations=("ptc",), jobs=1),
    # Under 10 minutes on 2 cores: video QA only, both splits, the two alignment losses' ablations.
    "small": Size((120, 60, 30), 3, 3, (0, 1, 2), ("videoqa",), ("videoqa",), ("videoqa",), _REPRO,
                  studies=False, ablations=("ptc", "osc")),
    # Under 60 minutes on 2 cores: everything the issue asks for.
    "full": Size((200, 60, 30), 3, 3, (0, 1, 2), tuple(METRIC), tuple(METRIC), ("videoqa", "retrieval"),
                 _REPRO, clip4clip=("videoqa", "retrieval"), controls=("retrieval", "mcqa")),
}


@dataclass(frozen=True)
class Run:
    """One fit: where its number goes (table, row, column, seed), its configs and overrides, the metric.
    ``command`` is ``fit`` or ``validate``; ``host``: the enhanced host it loads or writes, named by the host
    (``small_vlm``, ``clip4clip``) or by how it was post-trained (``HOST_LOSS_ONLY``); ``needs_posttrain``: the
    post-training of its seed, split (``column``) and ``host`` must have run first; ``export``: a
    post-training, which writes that host."""

    table: str
    row: str
    column: str
    seed: int
    configs: tuple[str, ...]
    overrides: tuple[str, ...]
    metric: str
    command: str = "fit"
    needs_posttrain: bool = False
    host: str = "small_vlm"
    export: bool = False

    def args(self, size: Size, out: Path) -> list[str]:
        """The CLI arguments of this run."""
        n_train, n_val, n_test = size.world
        args = [self.command, *(a for c in self.configs for a in ("--config", c)), *size.extra,
                f"--seed_everything={self.seed}", f"--data.init_args.seed={self.seed}",
                f"--data.init_args.synthetic.num_train={n_train}", f"--data.init_args.synthetic.num_val={n_val}",
                f"--data.init_args.synthetic.num_test={n_test}"]
        if self.command == "fit":
            epochs = size.posttrain_epochs if self.export else size.epochs
            args += [f"--trainer.max_epochs={epochs}", f"--trainer.check_val_every_n_epoch={epochs}"]
        folder = out / "runs" / self.slug
        # One graph cache for every run: each seed's world is read by dozens of runs, which then detect each
        # source frame once and track each evaluation clip once (the graphs are the same, see graphs.cache).
        args += [f"--trainer.default_root_dir={folder}", f"--trainer.logger.init_args.save_dir={folder}",
                 "--data.init_args.graphs.cache=true", f"--data.init_args.graphs.cache_dir={out / 'graph_cache'}",
                 *self.overrides]
        host = enhanced_host(out, self.seed, self.column, self.host)
        if self.needs_posttrain:
            args.append(f"--model.init_args.host.init_from={host}")
        if self.export:
            args.append(f"--model.init_args.export_path={host}")
        return args

    @property
    def slug(self) -> str:
        """A folder name for the run."""
        text = f"{self.table}-{self.row}-{self.column}-seed{self.seed}"
        return "".join(c if c.isalnum() else "_" for c in text).strip("_")

    @property
    def dependency(self) -> str | None:
        """The slug of the post-training this run starts from, if any."""
        return posttrain_run(self.seed, self.column, self.host, ()).slug if self.needs_posttrain else None


def enhanced_host(out: Path, seed: int, split: str = "standard", host: str = "small_vlm") -> Path:
    """Where the post-training of ``seed`` on ``split``'s training clips exports the enhanced ``host``."""
    return out / "hosts" / f"enhanced_{host}_{split}_seed{seed}.pt"


def clip_checkpoint(out: Path) -> Path:
    """The tiny random CLIP the CLIP4Clip rows use (written by :func:`write_clip_checkpoint`)."""
    return out / "tiny-clip"


def clip4clip_overrides(out: Path) -> tuple[str, ...]:
    """A task's built-in-host config turned into the same run with a tiny random CLIP4Clip host."""
    clip = clip_checkpoint(out)
    return ("--model.init_args.host.name=clip4clip", f"--model.init_args.host.checkpoint={clip}",
            f"--data.init_args.tokenizer={clip}", "--model.init_args.host.fusion_layers=1")


def split_overrides(split: str) -> tuple[str, ...]:
    """The data overrides that select ``split`` (the standard split is each config's own)."""
    return (COMPOSITIONAL,) if split == "compositional" else ()


def posttrain_run(seed: int, split: str, host: str, overrides: tuple[str, ...]) -> Run:
    """The post-training of ``seed`` on ``split``'s training clips (a compositional split's held-out
    combinations stay unseen), exporting the enhanced ``host``."""
    table = "posttrain" if host == "small_vlm" else f"posttrain ({host})"
    return Run(table, "post-training", split, seed, ("experiments/posttrain_synthetic.yaml",),
               (*overrides, *split_overrides(split)), "val/t2v_r1",
               host=host, export=True)


def _three_rows(task: str, table: str, split: str, seed: int, overrides: tuple[str, ...], host: str) -> list[Run]:
    metric = METRIC[task]
    host_only = (f"experiments/{task}_host_only.yaml",)
    return [Run(table, HOST_ONLY, split, seed, host_only, overrides, metric, host=host),
            Run(table, JOINT, split, seed, (f"experiments/{task}.yaml",), overrides, metric, host=host),
            Run(table, POSTTRAINED, split, seed, host_only, overrides, metric, needs_posttrain=True, host=host)]


def plan(size: Size, out: Path) -> list[Run]:
    """Every run of a reproduction, post-trainings first."""
    clip = clip4clip_overrides(out)
    splits = SPLITS if size.compositional else SPLITS[:1]
    runs = [posttrain_run(s, split, "small_vlm", ()) for s in size.seeds for split in splits]
    if size.clip4clip:
        runs += [posttrain_run(s, "standard", CLIP4CLIP, clip) for s in size.seeds]
    if size.controls:
        runs += [posttrain_run(s, "standard", HOST_LOSS_ONLY, ("--model.init_args.finsta.enabled=false",))
                 for s in size.seeds]
    for s in size.seeds:
        for task in size.tasks:
            for split in SPLITS if task in size.compositional else SPLITS[:1]:
                runs += _three_rows(task, task, split, s, split_overrides(split), "small_vlm")
        for task in size.clip4clip:
            runs += _three_rows(task, f"{task}, CLIP4Clip host (tiny, random init)", "standard", s, clip, CLIP4CLIP)
        runs += [Run(f"post-training control: {task}", POSTTRAINED_HOST_LOSS, "standard", s,
                     (f"experiments/{task}_host_only.yaml",), (), METRIC[task], needs_posttrain=True,
                     host=HOST_LOSS_ONLY) for task in size.controls]
        for task in size.ablation_tasks:
            runs += [Run(f"ablation: {task}", row, "standard", s, (f"experiments/{task}.yaml",),
                         (f"--model.init_args.finsta.{switch}=false",), METRIC[task])
                     for row, switch in ABLATIONS if switch in size.ablations]
        if not size.studies:
            continue
        for rate in (0.25, 0.5):  # node drop in training and in evaluation (the graph builder serves both)
            runs.append(Run("robustness: videoqa", f"node drop {rate:.0%}", "standard", s, ("experiments/videoqa.yaml",),
                            (f"--data.init_args.graphs.node_drop={rate}",), METRIC["videoqa"]))
        # A detector that knows nothing of the world's vocabulary: grid regions, linked by host embeddings.
        runs.append(Run("vocabulary-free detector: videoqa", "host + Finsta, grid boxes, embedding links", "standard",
                        s, ("experiments/videoqa.yaml",), ("--data.init_args.graphs.detector=grid",
                                                           "--data.init_args.graphs.link.method=embedding"),
                        METRIC["videoqa"]))
        zero_shot = [("random host", False, "small_vlm"), ("post-trained host", True, "small_vlm")]
        if size.controls:
            zero_shot.append(("host post-trained with its own loss only", True, HOST_LOSS_ONLY))
        for row, post, host in zero_shot:
            runs.append(Run("zero-shot retrieval", row, "standard", s, ("experiments/retrieval_host_only.yaml",), (),
                            METRIC["retrieval"], command="validate", needs_posttrain=post, host=host))
    return runs


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
    has finished; ``record(run, value, seconds)`` as each ends.  The first failure stops the pool."""
    pending = [r for r in runs if r.slug not in done]
    if jobs <= 1:
        for run in pending:
            start = time.perf_counter()
            done[run.slug] = value = run_one(run, size, out)
            record(run, value, time.perf_counter() - start)
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
                value = future.result()  # a failed run raises here, naming its log
                done[run.slug] = value
                record(run, value, time.perf_counter() - start)


def reproduce(size_name: str, out: Path, report: Path, run_one: Callable[[Run, Size, Path], float] | None = None,
              jobs: int | None = None) -> dict[Run, float]:
    """Run every run of ``size_name`` (each result kept in ``out/results.jsonl``, so a rerun skips what is
    done), then write ``report`` and its plots.  ``run_one`` defaults to a real fit, logged to a file when
    runs go in parallel; ``jobs`` to the size's."""
    size = SIZES[size_name]
    jobs = size.jobs if jobs is None else jobs
    run_one = run_one or (execute_logged if jobs > 1 else execute)
    out.mkdir(parents=True, exist_ok=True)
    done_file = out / "results.jsonl"
    done: dict[str, float] = {}
    seconds: dict[str, float] = {}
    if done_file.is_file():
        for line in done_file.read_text().splitlines():
            entry = json.loads(line)
            done[entry["slug"]] = entry["value"]
            seconds[entry["slug"]] = entry.get("seconds", 0.0)
    start, before = time.perf_counter(), len(seconds)
    runs = plan(size, out)
    if size.clip4clip and any(r.slug not in done for r in runs if r.host == CLIP4CLIP):
        write_clip_checkpoint(size, out)

    def record(run: Run, value: float, took: float) -> None:
        seconds[run.slug] = took
        with done_file.open("a") as f:
            f.write(json.dumps({"slug": run.slug, "value": value, "seconds": round(took, 1)}) + "\n")
        print(f"[{len(seconds)}/{len(runs)}] {run.slug}: {run.metric} {value:.3f} ({took:.0f} s)", flush=True)

    run_all(runs, size, out, done, record, run_one, jobs)
    # Wall time over every invocation that ran something, so a resumed reproduction (or a rerun that only
    # rewrites the report) states the whole run's.
    wall_file = out / "wall_seconds.txt"
    wall = float(wall_file.read_text()) if wall_file.is_file() else 0.0
    if len(seconds) > before:
        wall += time.perf_counter() - start
        wall_file.write_text(f"{wall:.1f}\n")
    results = {run: done[run.slug] for run in runs}
    write_results(report, size_name, size, with_references(results), wall,
                  sum(seconds.get(r.slug, 0.0) for r in runs), jobs, out)
    return results


#: tables of variations, each led by the runs it varies: (table prefix, the reference row's name, the row of the
#: task's table on the standard split that it copies).
_LED_BY = (("ablation: ", "full model", JOINT), ("robustness: ", "node drop 0%", JOINT),
           ("vocabulary-free detector: ", "host + Finsta, motion detector (its labels)", JOINT),
           ("post-training control: ", "post-trained with Finsta, no graphs", POSTTRAINED))


def with_references(results: dict[Run, float]) -> dict[Run, float]:
    """The report's cells: post-trainings left out, and each table of variations (ablations, node drop, the
    detector, the post-training control) led by the runs of its task on the standard split that it varies
    (not run twice), the row its ``*`` marks compare with."""
    out: dict[Run, float] = {}
    for run, value in results.items():
        if run.export:
            continue
        for prefix, name, varied in _LED_BY:
            if run.table.startswith(prefix) and not any(r.table == run.table for r in out):
                task = run.table.removeprefix(prefix)
                for reference, v in results.items():
                    if (reference.table, reference.row, reference.column) == (task, varied, "standard"):
                        out[replace(reference, table=run.table, row=name)] = v
        out[run] = value
    return out


def summarise(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (sample) standard deviation; 0 spread for a single seed."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def beyond_spread(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether the mean +- std intervals of ``a`` and ``b`` do not overlap (with one seed: never claimed)."""
    if len(a) < 2 or len(b) < 2:
        return False
    (ma, sa), (mb, sb) = summarise(a), summarise(b)
    return abs(ma - mb) > sa + sb


Cells = dict[str, dict[str, dict[str, list[float]]]]  # table -> row -> column -> one value per seed


def cells_by_table(results: dict[Run, float]) -> Cells:
    """The results grouped for the tables and plots, rows and columns in plan order."""
    by_table: Cells = {}
    for run, value in results.items():
        by_table.setdefault(run.table, {}).setdefault(run.row, {}).setdefault(run.column, []).append(value)
    return by_table


def tables(results: dict[Run, float]) -> str:
    """Markdown: one table per ``Run.table``, rows x columns of mean +- std, the first row the reference;
    a ``*`` marks a cell whose interval does not overlap the reference row's in that column."""
    parts = []
    for table, rows in cells_by_table(results).items():
        columns = sorted({c for cells in rows.values() for c in cells}, key=SPLITS.index)
        reference = next(iter(rows))
        lines = [f"### {table}", "", "| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for row, cells in rows.items():
            shown = []
            for c in columns:
                values = cells.get(c, [])
                if not values:
                    shown.append("-")
                    continue
                mean, std = summarise(values)
                mark = "*" if row != reference and beyond_spread(values, rows[reference].get(c, [])) else ""
                shown.append(f"{mean:.3f} +- {std:.3f} (n={len(values)}){mark}")
            lines.append(f"| {row} | " + " | ".join(shown) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def plot(results: dict[Run, float], folder: Path) -> list[Path]:
    """Bar charts with seed-spread error bars: the three rows of every task (one panel per table of rows
    host only / joint / post-trained), and one panel per table of variations; returns the PNGs written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    by_table = cells_by_table(results)
    groups = {"tasks": [t for t, rows in by_table.items() if HOST_ONLY in rows],
              "variations": [t for t, rows in by_table.items() if HOST_ONLY not in rows]}
    written = []
    for name, names in groups.items():
        if not names:
            continue
        cols = min(3, len(names))
        fig, axes = plt.subplots((len(names) + cols - 1) // cols, cols, figsize=(4.2 * cols, 3.4 * ((len(names) + cols - 1) // cols)),
                                 squeeze=False)
        for ax, table in zip(axes.flat, names):
            rows = by_table[table]
            columns = sorted({c for cells in rows.values() for c in cells}, key=SPLITS.index)
            width = 0.8 / len(columns)
            for j, column in enumerate(columns):
                stats = [summarise(rows[r][column]) if rows[r].get(column) else (0.0, 0.0) for r in rows]
                ax.bar([i + j * width for i in range(len(rows))], [m for m, _ in stats], width,
                       yerr=[s for _, s in stats], capsize=3, label=column, hatch="//" if j else None)
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))],
                          [textwrap.fill(r, 14) for r in rows], fontsize=6)
            ax.set_title(table, fontsize=8)
            ax.set_ylabel(next(r.metric for r in results if r.table == table), fontsize=7)
            if len(columns) > 1:
                ax.legend(fontsize=6)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.tight_layout()
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_results(report: Path, size_name: str, size: Size, results: dict[Run, float], seconds: float,
                  run_seconds: float, jobs: int, out: Path) -> None:
    """RESULTS.md: how it was made, the reading of the numbers (``results/analysis.md`` beside the report, when
    there is one: written by a person, so a rerun keeps it), the plots, then the tables."""
    example = next((r for r in results if r.row == JOINT), next(iter(results), None))
    lines = ["# finsta-pl results", "",
             f"`finsta-pl reproduce --size {size_name}` (`make reproduce SIZE={size_name}`): {seconds / 60:.1f} min "
             f"wall here with {jobs} run(s) at once ({run_seconds / 60:.1f} min of runs); the embedded world at "
             f"{size.world[0]}/{size.world[1]}/{size.world[2]} videos per seed, {size.epochs} epochs "
             f"(post-training {size.posttrain_epochs}), seeds {', '.join(map(str, size.seeds))}.  Cells: mean +- "
             "std of the validation metric over seeds; `*`: the interval does not overlap the table's first row's.",
             ""]
    if example is not None:
        lines += ["Each cell is one `finsta-pl` command per seed, its arguments in the run's `config.yaml` under "
                  f"`{out}/runs/`; e.g. (seed {example.seed}):", "", "```",
                  "finsta-pl " + " ".join(example.args(size, out)), "```", ""]
    analysis = report.parent / "results" / "analysis.md"
    if analysis.is_file():
        lines += [analysis.read_text().strip(), ""]
    for path in plot(results, report.parent / "results"):
        lines += [f"![{path.stem}](results/{path.name})", ""]
    lines.append(tables(results))
    report.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    """``finsta-pl reproduce``."""
    parser = argparse.ArgumentParser(prog="finsta-pl reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"), help="runs, hosts and results.jsonl")
    parser.add_argument("--report", type=Path, default=None,
                        help="default: RESULTS.md for --size full, else OUT/SIZE/RESULTS.md (the committed report "
                             "is a full run's)")
    parser.add_argument("--jobs", type=int, default=None, help="runs at once (default: the size's)")
    parser.add_argument("--list", action="store_true", help="print the runs and stop")
    args = parser.parse_args(argv)
    if args.list:
        for run in plan(SIZES[args.size], args.out / args.size):
            print(run.slug)
        return 0
    report = args.report or (Path("RESULTS.md") if args.size == "full" else args.out / args.size / "RESULTS.md")
    reproduce(args.size, args.out / args.size, report, jobs=args.jobs)
    print(f"wrote {report}")
    return 0
