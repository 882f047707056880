"""One line per validation epoch on whether Finsta's alignment runs and what it does; a loud warning when not."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

#: ``val/align_<name>`` metrics in the order the line shows them: (name, label, format).
_SHOWN = (
    ("links_per_object", "links/object", "{:.2f}"),
    ("osc_pairs", "OSC pairs", "{:.1f}"),
    ("osc_top1", "top-1", "{:.3f}"),
    ("ptc_pairs", "PTC pairs", "{:.1f}"),
    ("ptc_top1", "top-1", "{:.3f}"),
    ("loss_share", "loss share", "{:.3f}"),
    ("link_precision", "link P", "{:.3f}"),
    ("link_recall", "R", "{:.3f}"),
    ("link_accuracy", "acc", "{:.3f}"),
)


class AlignmentMonitor(L.Callback):
    """Prints after each validation epoch (rank zero) e.g.::

        alignment, epoch 3: links/object 1.42 | OSC pairs 37.5 top-1 0.412 | PTC pairs 21.0 top-1 0.288 |
        loss share 0.310 | link P 0.810 R 0.640 acc 0.770 | host grad norm: align 0.0121, task 0.0342 (0.35x)

    from the epoch means of the ``val/align_*`` metrics the task logs (pairs are positive pairs per batch,
    top-1 the in-batch anchor -> region retrieval accuracy, the link scores against the gold scene graphs of
    the embedded world) and the gradient norms at the host of the weighted alignment losses and of the task
    loss, measured on the training steps this callback asks for (``FinstaTask.measure_host_grads``; logged as
    ``train/align_host_grad_norm``, ``train/task_host_grad_norm``).

    It warns, once per epoch, when the alignment does not run: Finsta is on but logged nothing (no graphs in
    the batches), OSC and PTC made 0 positive pairs (or are both off), or no text object got a link
    (``expect_links``).  A study arm in that state measures nothing.  Host-only runs (Finsta off) and tasks
    without texts (no pairs, no links by design) get no warning.

    ``every_n_steps``: measure the gradient norms on every n-th training batch of an epoch (``None``: its first
    batch only; ``0``: never, the training steps stay exactly as without this callback).

    .. code-block:: yaml

        trainer:
          callbacks:
            - class_path: finsta_pl.callbacks.AlignmentMonitor
    """

    def __init__(self, every_n_steps: int | None = None, expect_links: bool = True) -> None:
        if every_n_steps is not None and every_n_steps < 0:
            raise ValueError(f"every_n_steps must be None or >= 0, not {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.expect_links = expect_links
        #: the last line printed and the warnings of the last epoch (for tests and other callbacks).
        self.line: str | None = None
        self.problems: list[str] = []
        self._said_unmeasurable = False

    def _measures(self, batch_idx: int) -> bool:
        n = self.every_n_steps
        return batch_idx == 0 if n is None else n > 0 and batch_idx % n == 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        """Ask the task to measure the host gradient norms on this step (the same decision on every rank; none
        without Finsta: there is no alignment to compare with)."""
        if hasattr(pl_module, "measure_host_grads"):
            has_finsta = getattr(pl_module, "finsta", None) is not None
            measurable = getattr(pl_module, "host_grads_measurable", has_finsta)
            if not measurable and has_finsta and self._measures(batch_idx) and not self._said_unmeasurable:
                rank_zero_warn("AlignmentMonitor: host gradient norms are not measured with finsta.compile "
                               "(a compiled backward runs once per forward)")
                self._said_unmeasurable = True
            pl_module.measure_host_grads = measurable and self._measures(batch_idx)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Measured or not, the next step measures only when asked again."""
        if hasattr(pl_module, "measure_host_grads"):
            pl_module.measure_host_grads = False

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Leave the module as it was (a later fit without this callback measures nothing)."""
        if hasattr(pl_module, "measure_host_grads"):
            pl_module.measure_host_grads = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The epoch's means are in ``callback_metrics`` by now (``on_validation_epoch_end`` runs before they are)."""
        if trainer.sanity_checking:
            return
        align = {k[len("val/align_"):]: float(v) for k, v in trainer.callback_metrics.items()
                 if k.startswith("val/align_")}
        grads = {k: float(v) for k, v in (getattr(pl_module, "host_grad_norms", None) or {}).items()}
        self.problems = self.check(align, pl_module)
        self.line = self.compose(trainer.current_epoch, align, grads) if align or grads else None
        self._report(trainer.current_epoch)

    @rank_zero_only
    def _report(self, epoch: int) -> None:
        if self.line is not None:
            print(f"\n{self.line}")
        for problem in self.problems:
            rank_zero_warn(f"ALIGNMENT NOT RUNNING (epoch {epoch}): {problem}")

    @staticmethod
    def compose(epoch: int, align: dict[str, float], grads: dict[str, float]) -> str:
        """The epoch's line from the ``val/align_*`` means (by name, without the prefix) and the host norms."""
        parts, current = [], ""
        for name, label, fmt in _SHOWN:
            if name not in align:
                continue
            item = f"{label} {fmt.format(align[name])}"
            # A follower (top-1 after its pairs, R after P) joins its leader's part.
            follows = label in {"top-1", "R", "acc"} and current
            if follows:
                current += f" {item}"
            else:
                if current:
                    parts.append(current)
                current = item
        if current:
            parts.append(current)
        if grads:
            norms = ", ".join(f"{k} {v:.4g}" for k, v in sorted(grads.items()))
            if grads.get("task", 0.0) > 0 and "align" in grads:
                norms += f" ({grads['align'] / grads['task']:.2f}x)"
            parts.append(f"host grad norm: {norms}")
        return f"alignment, epoch {epoch}: " + " | ".join(parts)

    def check(self, align: dict[str, float], pl_module: L.LightningModule) -> list[str]:
        """What says that the alignment does not run, as sentences (empty: it runs, or is not meant to)."""
        if getattr(pl_module, "finsta", None) is None:
            return []  # the host alone: nothing to align
        if not align:
            return ["Finsta is enabled but logged no val/align_* metrics: the validation batches carried no scene "
                    "graphs (graphs off in the data config?)"]
        if not getattr(pl_module, "uses_text", True):
            return []  # clips without texts: no pairs and no links by design
        problems = []
        config = getattr(pl_module, "finsta_config", None)
        pairs = {k: align[k] for k in ("osc_pairs", "ptc_pairs") if k in align}
        if not pairs:
            off = config is not None and not config.osc and not config.ptc
            problems.append("OSC and PTC are both off: no contrastive alignment between the graphs" if off else
                            "no OSC/PTC pair counts were logged")
        elif all(v == 0 for v in pairs.values()):
            problems.append("0 positive " + " and 0 ".join(k.split("_")[0].upper() for k in pairs) + " pairs per "
                            "batch: the alignment losses are constant (no links, no shared concepts, or no true texts?)")
        if self.expect_links and align.get("links_per_object", 1.0) == 0:
            problems.append("0 links per text object: no cross-modal HSG edges and no linked OSC pairs (link "
                            "threshold too high, or learned links that never fire?)")
        return problems
