"""``finsta-pl reproduce``: does Finsta help, does post-training transfer, and what does each part cost.

Every number is a fit (or, for zero-shot, a validation) of a shipped config on the embedded world, run in this
process one after the other, with the overrides its :class:`Run` lists; the tables give mean and standard
deviation over seeds and mark the differences whose mean +- std intervals do not overlap.

    finsta-pl reproduce --size small          (make reproduce SIZE=small)   -> RESULTS.md
    finsta-pl reproduce --size minimal        (what the test suite runs: one task, one seed, toy sizes)

Post-training runs ``posttrain_synthetic.yaml`` once per seed and exports the enhanced host; the
"post-trained" rows fine-tune the host-only config from it (no graphs at any point of fine-tuning or
inference), the zero-shot rows validate it without any fine-tuning.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

#: the validation metric each task's table reads (higher is better everywhere).
METRIC = {"videoqa": "val/acc", "retrieval": "val/t2v_r1", "captioning": "val/cider", "mcqa": "val/acc",
          "inference": "val/acc", "action": "val/top1"}
COMPOSITIONAL = ("--data.init_args.split_lists={train: splits/compositional_train.txt, "
                 "val: splits/compositional_val.txt, test: splits/compositional_test.txt}")
#: the paper's six ablation rows: (row name, the FinstaConfig switch turned off).
ABLATIONS = (("w/o PTC", "ptc"), ("w/o OSC", "osc"), ("w/o STGD", "stgd"),
             ("w/o temporal coreference edges", "temporal_edges"), ("w/o adverb nodes", "adverb_nodes"),
             ("w/o cross-modal edges", "crossmodal_edges"))


JOINT = "host + Finsta (joint)"


@dataclass(frozen=True)
class Size:
    """How big a reproduction is: the world, epochs, seeds and which tasks each table covers."""

    world: tuple[int, int, int]  # training, validation, test videos
    epochs: int
    posttrain_epochs: int
    seeds: tuple[int, ...]
    tasks: tuple[str, ...]
    compositional: tuple[str, ...]  # tasks that also get the compositional split
    ablation_tasks: tuple[str, ...]
    extra: tuple[str, ...] = ()  # further overrides of every run (batch limits of the toy sizes)
    studies: bool = True  # robustness, vocabulary-free detector, zero-shot
    ablations: tuple[str, ...] = tuple(switch for _, switch in ABLATIONS)


SIZES: dict[str, Size] = {
    "minimal": Size((24, 12, 8), 1, 1, (0,), ("videoqa",), (), ("videoqa",),
                    ("--config", "tests/configs/tiny.yaml"), studies=False, ablations=("ptc",)),
    # Under 10 minutes on 2 cores: video QA only, both splits, the two alignment losses' ablations.
    "small": Size((48, 24, 24), 2, 2, (0, 1, 2), ("videoqa",), ("videoqa",), ("videoqa",),
                  ("--data.init_args.loader.num_workers=1",), studies=False, ablations=("ptc", "osc")),
    "full": Size((480, 120, 120), 4, 4, (0, 1, 2), tuple(METRIC), ("videoqa", "retrieval"), ("videoqa", "retrieval"),
                 ("--data.init_args.loader.num_workers=1",)),
}


@dataclass(frozen=True)
class Run:
    """One fit: where its number goes (table, row, column, seed), its configs and overrides, the metric.
    ``command`` is ``fit`` or ``validate``; ``needs``: the seed's post-training must have run first."""

    table: str
    row: str
    column: str
    seed: int
    configs: tuple[str, ...]
    overrides: tuple[str, ...]
    metric: str
    command: str = "fit"
    needs_posttrain: bool = False

    def args(self, size: Size, out: Path) -> list[str]:
        """The CLI arguments of this run."""
        n_train, n_val, n_test = size.world
        args = [self.command, *(a for c in self.configs for a in ("--config", c)), *size.extra,
                f"--seed_everything={self.seed}", f"--data.init_args.seed={self.seed}",
                f"--data.init_args.synthetic.num_train={n_train}", f"--data.init_args.synthetic.num_val={n_val}",
                f"--data.init_args.synthetic.num_test={n_test}"]
        if self.command == "fit":
            args.append(f"--trainer.max_epochs={size.epochs}")
        folder = out / "runs" / self.slug
        args += [f"--trainer.default_root_dir={folder}", f"--trainer.logger.init_args.save_dir={folder}",
                 *self.overrides]
        if self.needs_posttrain:
            args.append(f"--model.init_args.host.init_from={enhanced_host(out, self.seed, self.column)}")
        return args

    @property
    def slug(self) -> str:
        """A folder name for the run."""
        text = f"{self.table}-{self.row}-{self.column}-seed{self.seed}"
        return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def enhanced_host(out: Path, seed: int, split: str = "standard") -> Path:
    """Where the post-training of ``seed`` on ``split``'s training clips exports the enhanced host."""
    return out / "hosts" / f"enhanced_host_{split}_seed{seed}.pt"


def posttrain_runs(size: Size) -> list[Run]:
    """One post-training per seed (captions of the world, Finsta's losses and distillation), and one on the
    compositional training clips where a task has that split: its held-out combinations must stay unseen."""
    splits = ("standard", "compositional") if size.compositional else ("standard",)
    return [Run("posttrain", "post-training", split, s, ("experiments/posttrain_synthetic.yaml",),
                (f"--trainer.max_epochs={size.posttrain_epochs}", *((COMPOSITIONAL,) if split == "compositional" else ())),
                "val/t2v_r1") for s in size.seeds for split in splits]


def plan(size: Size, out: Path) -> list[Run]:
    """Every run of a reproduction, post-trainings first."""
    runs = posttrain_runs(size)
    for s in size.seeds:
        for task in size.tasks:
            for split in ("standard", "compositional") if task in size.compositional else ("standard",):
                split_args = (COMPOSITIONAL,) if split == "compositional" else ()
                metric = METRIC[task]
                runs += [Run(task, "host only", split, s, (f"experiments/{task}_host_only.yaml",), split_args, metric),
                         Run(task, JOINT, split, s, (f"experiments/{task}.yaml",), split_args, metric),
                         Run(task, "post-trained host, no graphs", split, s, (f"experiments/{task}_host_only.yaml",),
                             split_args, metric, needs_posttrain=True)]
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
        for row, post in (("random host", False), ("post-trained host", True)):
            runs.append(Run("zero-shot retrieval", row, "standard", s, ("experiments/retrieval_host_only.yaml",), (),
                            METRIC["retrieval"], command="validate", needs_posttrain=post))
    return runs


def execute(run: Run, size: Size, out: Path) -> float:
    """Run ``run`` in this process and return its metric (the last validation's value)."""
    from finsta_pl.cli import build_cli, expand_config_args

    args = run.args(size, out)
    if run.table == "posttrain":
        enhanced_host(out, run.seed, run.column).parent.mkdir(parents=True, exist_ok=True)
        args.append(f"--model.init_args.export_path={enhanced_host(out, run.seed, run.column)}")
    cli = build_cli(expand_config_args(args))
    metrics = cli.trainer.callback_metrics
    if run.metric not in metrics:
        raise RuntimeError(f"{run.slug}: no {run.metric} among the logged metrics {sorted(metrics)}")
    return float(metrics[run.metric])


def summarise(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (sample) standard deviation; 0 spread for a single seed."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def beyond_spread(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether the mean +- std intervals of ``a`` and ``b`` do not overlap (with one seed: never claimed)."""
    if len(a) < 2 or len(b) < 2:
        return False
    (ma, sa), (mb, sb) = summarise(a), summarise(b)
    return abs(ma - mb) > sa + sb


def tables(results: dict[Run, float]) -> str:
    """Markdown: one table per ``Run.table``, rows x columns of mean +- std, the first row the reference;
    a ``*`` marks a cell whose interval does not overlap the reference row's in that column."""
    by_table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for run, value in results.items():
        by_table.setdefault(run.table, {}).setdefault(run.row, {}).setdefault(run.column, []).append(value)
    parts = []
    for table, rows in by_table.items():
        columns = sorted({c for cells in rows.values() for c in cells}, key=("standard", "compositional").index)
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


def reproduce(size_name: str, out: Path, report: Path,
              run_one: Callable[[Run, Size, Path], float] = execute) -> dict[Run, float]:
    """Run every run of ``size_name`` (each result kept in ``out/results.jsonl``, so a rerun skips what is
    done), then write ``report``."""
    size = SIZES[size_name]
    out.mkdir(parents=True, exist_ok=True)
    done_file = out / "results.jsonl"
    done = {}
    if done_file.is_file():
        for line in done_file.read_text().splitlines():
            entry = json.loads(line)
            done[entry["slug"]] = entry["value"]
    results: dict[Run, float] = {}
    start = time.perf_counter()
    for run in plan(size, out):
        if run.slug not in done:
            value = run_one(run, size, out)
            with done_file.open("a") as f:
                f.write(json.dumps({"slug": run.slug, "value": value}) + "\n")
            done[run.slug] = value
        results[run] = done[run.slug]
    write_results(report, size_name, size, with_references(results), time.perf_counter() - start)
    return results


#: tables of variations of the joint model, led by it: (table prefix, the reference row's name).
_LED_BY_JOINT = (("ablation: ", "full model"), ("robustness: ", "node drop 0%"),
                 ("vocabulary-free detector: ", "host + Finsta, motion detector (its labels)"))


def with_references(results: dict[Run, float]) -> dict[Run, float]:
    """The report's cells: post-trainings left out, and each table of variations (ablations, node drop, the
    detector) led by the joint runs of its task on the standard split (not run twice), the row its ``*``
    marks compare with."""
    out: dict[Run, float] = {}
    for run, value in results.items():
        if run.table == "posttrain":
            continue
        for prefix, name in _LED_BY_JOINT:
            if run.table.startswith(prefix) and not any(r.table == run.table for r in out):
                task = run.table.removeprefix(prefix)
                for joint, v in results.items():
                    if (joint.table, joint.row, joint.column) == (task, JOINT, "standard"):
                        out[replace(joint, table=run.table, row=name)] = v
        out[run] = value
    return out


def write_results(report: Path, size_name: str, size: Size, results: dict[Run, float], seconds: float) -> None:
    """RESULTS.md: how it was made, then the tables."""
    example = next(iter(results), None)
    lines = ["# finsta-pl results", "",
             f"`make reproduce SIZE={size_name}` ({seconds / 60:.0f} min here): the embedded world at "
             f"{size.world[0]}/{size.world[1]}/{size.world[2]} videos, {size.epochs} epochs "
             f"(post-training {size.posttrain_epochs}), seeds {', '.join(map(str, size.seeds))}.  Cells: mean +- "
             "std of the validation metric over seeds; `*`: the interval does not overlap the table's first row's.",
             ""]
    if example is not None:
        lines += ["Each cell is one `finsta-pl` command per seed, e.g.:", "", "```",
                  "finsta-pl " + " ".join(example.args(size, Path("runs/reproduce") / size_name)), "```", ""]
    lines.append(tables(results))
    report.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    """``finsta-pl reproduce``."""
    parser = argparse.ArgumentParser(prog="finsta-pl reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"), help="runs, hosts and results.jsonl")
    parser.add_argument("--report", type=Path, default=Path("RESULTS.md"))
    parser.add_argument("--list", action="store_true", help="print the runs and stop")
    args = parser.parse_args(argv)
    if args.list:
        for run in plan(SIZES[args.size], args.out / args.size):
            print(run.slug)
        return 0
    reproduce(args.size, args.out / args.size, args.report)
    print(f"wrote {args.report}")
    return 0
