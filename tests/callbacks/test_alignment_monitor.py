"""AlignmentMonitor (issue 22, point 7) in tiny fits: its line per validation epoch, the host gradient norms
(logged, positive, and without changing a single weight), its warning when the alignment does not run, and
silence where there is nothing to align."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from tests.helpers import REPO, TINY
from finsta_pl.callbacks import AlignmentMonitor


def _fit(tmp_path: Path, callbacks: list, config: str = "videoqa", *overrides: str) -> tuple[L.Trainer, L.LightningModule]:
    from finsta_pl.cli import build_cli, expand_config_args

    args = expand_config_args(["--config", str(REPO / "experiments" / f"{config}.yaml"), "--config", str(TINY), *overrides])
    cli = build_cli(args, run=False)  # seeds: equal arguments build equal models and loaders
    trainer = L.Trainer(callbacks=callbacks, max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, default_root_dir=tmp_path, accelerator="cpu", devices=1)
    trainer.fit(cli.model, cli.datamodule)
    return trainer, cli.model


def _not_running(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if "ALIGNMENT NOT RUNNING" in str(w.message)]


def test_line_and_host_grad_norms_leave_the_weights_unchanged(tiny_world: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, plain = _fit(tmp_path / "plain", [])
    monitor = AlignmentMonitor(every_n_steps=1)  # both steps measure
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer, watched = _fit(tmp_path / "watched", [monitor])
    assert not _not_running(record) and not monitor.problems
    line = capsys.readouterr().out
    assert monitor.line and monitor.line in line and line.count("alignment, epoch 0:") == 1
    for part in ("links/object", "OSC pairs", "PTC pairs", "top-1", "loss share", "link P", "host grad norm: align"):
        assert part in monitor.line, part
    metrics = trainer.callback_metrics
    assert float(metrics["train/align_host_grad_norm"]) > 0 and float(metrics["train/task_host_grad_norm"]) > 0
    assert float(metrics["val/align_osc_pairs"]) > 0 and float(metrics["val/align_links_per_object"]) > 0
    assert not watched.measure_host_grads  # left as found
    # The extra partial backward passes retain the graph and touch no .grad: the fit is bit-identical.
    a, b = plain.state_dict(), watched.state_dict()
    assert a.keys() == b.keys()
    unequal = [k for k in a if not torch.equal(a[k], b[k])]
    assert not unequal, f"{len(unequal)} tensors differ with the monitor: {unequal[:5]}"


def test_warns_when_osc_and_ptc_make_no_pairs(tiny_world: Path, tmp_path: Path) -> None:
    monitor = AlignmentMonitor()
    with pytest.warns(UserWarning, match=r"ALIGNMENT NOT RUNNING \(epoch 0\): OSC and PTC are both off"):
        trainer, _ = _fit(tmp_path, [monitor], "videoqa", "--model.init_args.finsta.osc=false",
                          "--model.init_args.finsta.ptc=false")
    assert len(monitor.problems) == 1 and "OSC pairs" not in (monitor.line or "")
    assert float(trainer.callback_metrics["train/align_host_grad_norm"]) > 0  # distillation still pulls


def test_host_only_run_is_quiet(tiny_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monitor = AlignmentMonitor()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer, model = _fit(tmp_path, [monitor], "videoqa_host_only")
    assert model.finsta is None and not _not_running(record) and monitor.line is None
    assert "alignment, epoch" not in capsys.readouterr().out
    assert not any("align" in k or "host_grad" in k for k in trainer.callback_metrics)


def _module(finsta: bool = True, uses_text: bool = True, osc: bool = True, ptc: bool = True) -> SimpleNamespace:
    return SimpleNamespace(finsta=object() if finsta else None, uses_text=uses_text,
                           finsta_config=SimpleNamespace(osc=osc, ptc=ptc))


def test_checks_on_logged_values() -> None:
    check = AlignmentMonitor().check
    running = {"links_per_object": 1.5, "osc_pairs": 4.0, "ptc_pairs": 0.0, "loss_share": 0.3}
    assert check(running, _module()) == []
    assert check({**running, "osc_pairs": 0.0}, _module())[0].startswith("0 positive OSC and 0 PTC pairs")
    assert "0 links per text object" in check({**running, "links_per_object": 0.0}, _module())[0]
    assert AlignmentMonitor(expect_links=False).check({**running, "links_per_object": 0.0}, _module()) == []
    assert "no scene graphs" in check({}, _module())[0]
    assert check({}, _module(finsta=False)) == []  # host only
    assert check({"loss_share": 0.2}, _module(uses_text=False)) == []  # action: no texts, no pairs by design
    line = AlignmentMonitor.compose(2, {**running, "osc_top1": 0.5, "link_precision": 0.9, "link_recall": 0.6},
                                    {"align": 0.2, "task": 0.4})
    assert line == ("alignment, epoch 2: links/object 1.50 | OSC pairs 4.0 top-1 0.500 | PTC pairs 0.0 | "
                    "loss share 0.300 | link P 0.900 R 0.600 | host grad norm: align 0.2, task 0.4 (0.50x)")
