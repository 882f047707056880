"""Validation of every task on one checkpoint, in one process or as one rank of a torchrun-style gloo group.

``tests/tasks/test_ddp_equality.py`` runs :func:`validate_all` once in its own process (one device) and starts two of
these scripts the way torchrun would (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``), so
Lightning's DDP takes the processes it finds and the process group is set up once for all tasks.  Each task's
classes come from its shipped config (``experiments/<task>.yaml``: ``model.class_path``, ``data.class_path``),
shrunk to the tiny sizes of ``tests/configs/tiny.yaml``; the weights come from ``<out>/<task>.pt``, written by
:func:`write_checkpoint` in the parent, so every process evaluates the same model.  For each task it writes
``<out>/<task>.ws<W>.rank<R>.json``: the metrics ``trainer.validate`` returned, the sampler Lightning used, the
record ids of each batch this rank evaluated and each clip's output features -- or the traceback.

    python tests/runners/ddp_validate_runner.py OUT TASK [TASK ...]
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TASKS = ("videoqa", "retrieval", "mcqa", "captioning", "action", "inference")
#: the validation world: 7 clips (odd, so two ranks split them unevenly and DistributedSampler pads), and
#: one question per clip so every task's validation split has an odd number of records.
WORLD = dict(num_train=24, num_val=7, num_test=4, questions_per_video=1)
#: eval batches of 3: 7 records are 3+3+1 in one process, 4 per rank (3+1) in two.
EVAL_BATCH = 3


def _class(path: str):  # noqa: ANN202
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def shipped_classes(task: str) -> tuple[type, type]:
    """The (DataModule, task) classes named by ``experiments/<task>.yaml``."""
    import yaml

    config = yaml.safe_load((REPO / "experiments" / f"{task}.yaml").read_text())
    return _class(config["data"]["class_path"]), _class(config["model"]["class_path"])


def build(task: str):  # noqa: ANN201
    """The set-up tiny DataModule and an (untrained) task model of ``task``."""
    import torch

    from finsta_pl.data_modules import ClipConfig, LoaderConfig
    from finsta_pl.data_modules.synthetic import WorldConfig
    from finsta_pl.hosts.base import HostConfig
    from finsta_pl.nn.finsta import FinstaConfig

    dm_cls, task_cls = shipped_classes(task)
    dm = dm_cls(synthetic=WorldConfig(**WORLD), clip=ClipConfig(num_frames=4, frame_size=64),
                loader=LoaderConfig(batch_size=4, eval_batch_size=EVAL_BATCH, num_workers=0))
    dm.setup("fit")
    torch.manual_seed(0)
    model = task_cls(data_info=dm.info(), host=HostConfig(dim=32, heads=2, video_layers=1, text_layers=1,
                                                           fusion_layers=1, dropout=0.0),
                     finsta=FinstaConfig(heads=2, tsg_layers=1, dsg_blocks=2, hsg_blocks=1))
    return dm, model


def write_checkpoint(task: str, path: Path, steps: int = 6) -> None:
    """A checkpoint of ``task`` trained for ``steps`` Adam steps on its validation batches, after its weights were
    moved off their initial values by fixed noise.  Why: the dual-stream projections start at zero (the host
    unchanged at step 0), and an untrained classifier answers nearly one class for every sample; either would
    let the metrics agree for the wrong reason.  Fitting the validation clips a little gives metrics that are
    neither 0 nor 1 and predictions that differ from sample to sample."""
    import torch

    dm, model = build(task)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point():
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    model.log = lambda *args, **kwargs: None  # no trainer attached; logging is not under test
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    batches = list(dm.val_dataloader())
    torch.manual_seed(0)
    for step in range(steps):
        opt.zero_grad()
        model.training_step(batches[step % len(batches)], step).backward()
        opt.step()
    torch.save(model.state_dict(), path)


def _record_outputs(model) -> dict:  # noqa: ANN001
    """Wrap ``model.features`` so each clip's pooled video feature and the joint features of its texts are kept,
    keyed by the clip's id (a clip repeated by the sampler's padding overwrites itself with equal values)."""
    outputs: dict[str, dict] = {}
    features = model.features

    def recording(batch):  # noqa: ANN001, ANN202
        feats = features(batch)
        for i, clip in enumerate(batch.ids):
            entry = {"video": feats.video.pooled[i].tolist()}
            if feats.joint is not None:
                entry["joint"] = feats.joint[batch.text_sample == i].tolist()
            outputs[str(clip)] = entry
        return feats

    model.features = recording
    return outputs


def _hide_java():  # noqa: ANN202
    """``shutil.which("java")`` answers None until the returned function is called: the captioning metrics then
    skip METEOR and the PTB tokenizer (two Java start-ups per compute, ~20 s here) and tokenize in Python."""
    import shutil

    which = shutil.which
    shutil.which = lambda cmd, *args, **kwargs: None if cmd == "java" else which(cmd, *args, **kwargs)

    def restore() -> None:
        shutil.which = which

    return restore


def validate(task: str, out: Path, devices: int) -> dict:
    """``trainer.validate`` of ``task``'s checkpoint on ``devices`` CPU processes; the record written to JSON:
    the returned metrics, the sampler, the sample indices of each batch of this rank, and per-clip features."""
    import torch

    import finsta_pl  # noqa: F401 - before lightning: it makes an installed torchvision importable (compat/)
    from lightning.pytorch import Callback, Trainer

    class Seen(Callback):
        def __init__(self) -> None:
            self.batches: list[list] = []

        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):  # noqa: ANN001, D102
            self.batches.append(list(batch.ids))

    dm, model = build(task)
    model.load_state_dict(torch.load(out / f"{task}.pt", weights_only=True))
    outputs, seen = _record_outputs(model), Seen()
    trainer = Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
                      precision="32-true", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, callbacks=[seen])
    (metrics,) = trainer.validate(model, datamodule=dm, verbose=False)
    sampler = trainer.val_dataloaders.sampler
    return {"metrics": {k: float(v) for k, v in metrics.items()}, "world_size": trainer.world_size,
            "dataset": len(dm.datasets["val"]), "sampler": type(sampler).__name__, "batches": seen.batches,
            "outputs": outputs}


def validate_all(out: Path, tasks: list[str], devices: int, rank: int = 0) -> int:
    """:func:`validate` of each task, each written to ``<out>/<task>.ws<devices>.rank<rank>.json``."""
    failed = 0
    restore = _hide_java()
    try:
        for task in tasks:
            result = out / f"{task}.ws{devices}.rank{rank}.json"
            result.write_text(json.dumps({"error": "started"}))
            try:
                result.write_text(json.dumps(validate(task, out, devices)))
            except BaseException:  # noqa: BLE001 - reported per task; the other rank may then wait in a collective
                result.write_text(json.dumps({"error": traceback.format_exc()}))
                failed += 1
    finally:
        restore()
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(validate_all(Path(sys.argv[1]), sys.argv[2:], int(os.environ.get("WORLD_SIZE", "1")),
                          int(os.environ.get("RANK", "0"))))
