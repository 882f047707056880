"""The typed description of a dataset that a task is built for (linked from the DataModule by the CLI).

It travels as a plain dict (a LightningCLI link target and a checkpoint hyperparameter must serialise), and
every reader goes through :class:`DataInfo`, so a missing key is one clear message, not a ``KeyError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from finsta_pl.errors import FinstaError

_TEXT_KEYS = ("vocab", "tokenizer", "tokenizer_size")


@dataclass(frozen=True)
class DataInfo:
    """``task``: the data's task family; ``text``: the tokenizer's description (word list, or a `transformers`
    tokenizer folder and size); ``targets`` / ``text_targets``: the per-clip / per-text targets its batches
    carry; ``labels``: answer or class names; ``baselines``: trivial baselines for the run summary."""

    task: str
    text: dict[str, Any]
    targets: tuple[str, ...] = ()
    text_targets: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    baselines: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The serialisable form (the tokenizer keys at the top level, where hosts read them)."""
        return {"task": self.task, **self.text, "targets": list(self.targets), "text_targets": list(self.text_targets),
                "labels": list(self.labels), "baselines": dict(self.baselines)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, who: str = "this task") -> "DataInfo":
        """Parse the dict form; says what is missing and where it should come from."""
        if not data or not any(k in data for k in ("vocab", "tokenizer")):
            raise FinstaError(f"{who} needs data_info from a DataModule (run it through finsta-pl, or pass "
                              "DataModule.info())")
        missing = [k for k in ("task", "targets") if k not in data]
        if missing:
            raise FinstaError(f"{who}: data_info lacks {missing} (written by an older finsta-pl? refit the model)")
        return cls(task=data["task"], text={k: data[k] for k in _TEXT_KEYS if k in data},
                   targets=tuple(data["targets"]), text_targets=tuple(data.get("text_targets", ())),
                   labels=tuple(data.get("labels", ())), baselines=dict(data.get("baselines", {})))

    def require(self, who: str, targets: tuple[str, ...] = (), text_targets: tuple[str, ...] = ()) -> None:
        """Stop with one message when the data does not carry the targets ``who`` reads."""
        lacking = [t for t in targets if t not in self.targets] + [t for t in text_targets if t not in self.text_targets]
        if lacking:
            raise FinstaError(
                f"{who} reads the targets {lacking}, which {self.task!r} data does not provide (it has "
                f"{list(self.targets)} per clip and {list(self.text_targets)} per text); pair the task with a "
                "DataModule of its kind (see the configs in experiments/)")
