"""A reproduction's report: mean +- std over seeds per cell, ``*`` where the intervals do not overlap the
table's reference row, bar charts, and RESULTS.md."""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from finsta_pl.tools.reproduce.plan import (CAPACITY, CLASS_AGNOSTIC, HOST_ONLY, JOINT, LABEL_FREE_POSTTRAIN_TABLE,
                                            LABEL_FREE_TABLE, POSTTRAINED, POSTTRAINED_HOST_LOSS, SPLITS, Run, Size)

#: tables of variations, each led by the runs it varies: (table prefix, the reference row's name, the row of the
#: task's table on the standard split that it copies).
_LED_BY = (("ablation: ", "full model", JOINT), ("robustness: ", "node drop 0%", JOINT),
           ("post-training control: ", "post-trained with Finsta, no graphs", POSTTRAINED))
#: variations led by a row of another table of the same column: (table prefix, reference row's name, the
#: table it comes from (prefix + task), that table's row).
_LED_BY_COLUMN = (("label-free ablation: ", "class-agnostic boxes, full model", LABEL_FREE_TABLE, CLASS_AGNOSTIC),)
#: tables with a second reference row: a cell beyond its spread gets a dagger (the label-free table's capacity
#: control: an effect of the alignment must beat it, not only the host; the post-training tables' host-loss-only
#: control: a post-training with Finsta must beat more training with the host's own loss).
SECOND_REFERENCE = {LABEL_FREE_TABLE: CAPACITY, LABEL_FREE_POSTTRAIN_TABLE: POSTTRAINED_HOST_LOSS}


def with_references(results: dict[Run, float]) -> dict[Run, float]:
    """The report's cells: post-trainings left out, and each table of variations (ablations, node drop, the
    post-training control) led by the runs of its task on the standard split that it varies (not run twice),
    the row its ``*`` marks compare with; the label-free ablations led by the class-agnostic arm on the splits
    they vary."""
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
        for prefix, name, source, varied in _LED_BY_COLUMN:
            if run.table.startswith(prefix) and not any(r.table == run.table for r in out):
                task = source + run.table.removeprefix(prefix)
                columns = {r.column for r in results if r.table == run.table}  # only the splits it varies
                for reference, v in results.items():
                    if (reference.table, reference.row) == (task, varied) and reference.column in columns:
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
    a ``*`` marks a cell whose interval does not overlap the reference row's in that column, a dagger one that
    does not overlap the table's second reference (``SECOND_REFERENCE``: the label-free tables' capacity
    control, the post-training-without-labels tables' host-loss-only control)."""
    parts = []
    for table, rows in cells_by_table(results).items():
        columns = sorted({c for cells in rows.values() for c in cells}, key=SPLITS.index)
        reference = next(iter(rows))
        second = next((row for prefix, row in SECOND_REFERENCE.items() if table.startswith(prefix)), None)
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
                if second in rows and row not in (reference, second) and beyond_spread(values, rows[second].get(c, [])):
                    mark += "\u2020"
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
             "std of the validation metric over seeds; `*`: the interval does not overlap the table's first row's; "
             "\u2020 (label-free tables): nor the capacity control's (post-training-without-labels tables: the "
             "host-loss-only control's).",
             ""]
    if example is not None:
        lines += ["Each cell is one `finsta-pl` command per seed, its arguments in the run's `config.yaml` under "
                  f"`{out}/runs/` (a fit two tables share, e.g. a label-free table's host-only row, ran once, "
                  f"under the first table's folder); e.g. (seed {example.seed}):", "", "```",
                  "finsta-pl " + " ".join(example.args(size, out)), "```", ""]
    analysis = report.parent / "results" / "analysis.md"
    if analysis.is_file():
        lines += [analysis.read_text().strip(), ""]
    for path in plot(results, report.parent / "results"):
        lines += [f"![{path.stem}](results/{path.name})", ""]
    lines.append(tables(results))
    report.write_text("\n".join(lines) + "\n")
