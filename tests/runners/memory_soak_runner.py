"""Memory soak: a videoqa fit of several epochs with two DataLoader workers, the resident memory of each worker
measured at the end of its work in every epoch.  ``tests/callbacks/test_memory_soak.py`` runs it (``make test-slow``);
run by hand it prints the figures:

    python tests/runners/memory_soak_runner.py OUT [--epochs 3] [--train 120] [--persistent] [--cache]

How the workers are measured: the training dataset's class is swapped for a subclass whose ``__getitem__``,
in a worker, writes the worker's RSS, USS (memory unique to it: pages it wrote since the fork), open file
descriptors and thread count to ``OUT/probe/pid<PID>.json`` after each sample (atomically; the last write is
the worker's state at the end of its work).  A callback in the main process reads them at each training
epoch's end: workers are not persistent in this project (``LoaderConfig``), so each epoch brings new
processes, already joined by then; with ``--persistent`` the same two processes serve every epoch (where a
leak adds up).  Workers are told apart by their worker id (0, 1).  The figures go to ``OUT/memory.json``.

Why RSS alone can mislead: a forked worker's RSS counts the parent's pages it maps (copy-on-write), so it
grows when the main process does; USS and the main process's RSS are reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _memory(pid: int | str = "self") -> dict[str, int]:
    """RSS (``/proc/<pid>/statm``), USS (psutil where installed), open fds and threads of a process."""
    with open(f"/proc/{pid}/statm") as f:
        rss = int(f.read().split()[1]) * _PAGE
    out = {"rss": rss, "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": len(os.listdir(f"/proc/{pid}/task"))}
    try:
        import psutil

        out["uss"] = psutil.Process(os.getpid() if pid == "self" else int(pid)).memory_full_info().uss
    except Exception:  # noqa: BLE001 - psutil missing or smaps unreadable: RSS alone
        pass
    return out


_PROBE_DIR: Path | None = None  # set before the workers fork; they inherit it
_STATE: dict = {}  # this worker's figures (each worker process has its own copy)


def _record() -> None:
    """In a DataLoader worker: write this worker's figures after one more sample (atomically)."""
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    if info is None or _PROBE_DIR is None:
        return
    if _STATE.get("pid") != os.getpid():  # a new worker: forked with the parent's (empty) copy
        _STATE.clear()
        _STATE.update(pid=os.getpid(), worker=info.id, items=0, rss_max=0)
    _STATE["items"] += 1
    _STATE.update(_memory())
    if _STATE["items"] == 1:  # what the worker inherited from the fork, plus its start-up and one sample
        _STATE["rss_first"], _STATE["uss_first"] = _STATE["rss"], _STATE.get("uss", 0)
    _STATE["rss_max"] = max(_STATE["rss_max"], _STATE["rss"])
    path = _PROBE_DIR / f"pid{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_STATE))
    os.replace(tmp, path)


def probe(dataset, probe_dir: Path) -> None:  # noqa: ANN001
    """Make ``dataset`` (in place) write its workers' memory figures to ``probe_dir`` after each sample."""
    global _PROBE_DIR
    probe_dir.mkdir(parents=True, exist_ok=True)
    _PROBE_DIR = probe_dir
    base = type(dataset)

    def __getitem__(self, index):  # noqa: ANN001, ANN202, N807
        item = base.__getitem__(self, index)
        _record()
        return item

    dataset.__class__ = type(f"Probed{base.__name__}", (base,), {"__getitem__": __getitem__})


def run(out: Path, epochs: int = 3, train: int = 120, persistent: bool = False, cache: bool = False) -> dict:
    """Fit videoqa for ``epochs`` with two workers; the per-epoch figures (also written to ``out/memory.json``)."""
    import torch

    from finsta_pl.data_modules import ClipConfig, GraphConfig, LoaderConfig, VideoQADataModule
    from finsta_pl.data_modules.synthetic import WorldConfig
    from finsta_pl.hosts.base import HostConfig
    from finsta_pl.nn.finsta import FinstaConfig
    from finsta_pl.tasks import VideoQATask
    from lightning.pytorch import Callback, Trainer  # after finsta_pl (it makes torchvision importable first)

    torch.set_num_threads(1)
    probe_dir = out / "probe"
    graphs = GraphConfig(cache=True, cache_dir=str(out / "dsg_cache")) if cache else GraphConfig()
    dm = VideoQADataModule(synthetic=WorldConfig(num_train=train, num_val=12, num_test=8),
                           clip=ClipConfig(num_frames=8, frame_size=64), graphs=graphs,
                           loader=LoaderConfig(batch_size=8, num_workers=2))
    dm.setup("fit")
    probe(dm.datasets["train"], probe_dir)
    if persistent:  # LoaderConfig has no switch for it (by design); this run asks the DataLoader directly
        make = dm.train_dataloader

        def persistent_loader():  # noqa: ANN202
            loader = make()
            object.__setattr__(loader, "persistent_workers", True)  # DataLoader forbids it after __init__
            return loader

        dm.train_dataloader = persistent_loader
    torch.manual_seed(0)
    model = VideoQATask(data_info=dm.info(), host=HostConfig(dim=32, heads=2, video_layers=1, text_layers=1),
                        finsta=FinstaConfig(heads=2, tsg_layers=1, dsg_blocks=2, hsg_blocks=1))
    epochs_seen: list[dict] = []

    class Measure(Callback):
        main_at_start: dict = {}

        def on_train_epoch_start(self, trainer, pl_module) -> None:  # noqa: ANN001, D102
            self.main_at_start = _memory()  # the parent just before this epoch's workers fork

        def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: ANN001, D102
            workers = {}
            for path in sorted(probe_dir.glob("pid*.json")):
                state = json.loads(path.read_text())
                if persistent or all(state["pid"] not in e["pids"] for e in epochs_seen):
                    workers[str(state["worker"])] = state
            epochs_seen.append({"epoch": trainer.current_epoch, "workers": workers,
                                "pids": [w["pid"] for w in workers.values()], "main": _memory(),
                                "main_at_start": self.main_at_start})

    trainer = Trainer(accelerator="cpu", devices=1, max_epochs=epochs, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                      limit_val_batches=1, callbacks=[Measure()])
    trainer.fit(model, datamodule=dm)
    first, last = epochs_seen[0], epochs_seen[-1]
    growth = {w: last["workers"][w]["rss"] / first["workers"][w]["rss"] - 1
              for w in first["workers"] if w in last["workers"]}
    result = {"epochs": epochs_seen, "rss_growth": growth, "persistent": persistent, "cache": cache,
              "train_records": len(dm.datasets["train"]),
              "main_rss_growth": last["main"]["rss"] / first["main"]["rss"] - 1}
    (out / "memory.json").write_text(json.dumps(result, indent=1))
    return result


def table(result: dict) -> str:
    """The figures as text: per epoch and worker RSS / USS in MiB, items, fds, threads."""
    mib = 1 << 20
    lines = [f"persistent={result['persistent']} cache={result['cache']} train records={result['train_records']}"]
    for e in result["epochs"]:
        parts = [f"epoch {e['epoch']}: main RSS {e['main_at_start']['rss'] / mib:.1f} at start (fork), "
                 f"{e['main']['rss'] / mib:.1f} MiB at end"]
        for w, s in sorted(e["workers"].items()):
            uss = f", USS {s['uss_first'] / mib:.1f} -> {s['uss'] / mib:.1f}" if "uss" in s else ""
            parts.append(f"worker {w} (pid {s['pid']}, {s['items']} items): RSS {s['rss_first'] / mib:.1f} at 1st "
                         f"sample -> {s['rss'] / mib:.1f} MiB at end{uss}, fds {s['fds']}, threads {s['threads']}")
        lines.append(" | ".join(parts))
    lines.append("RSS growth first->last epoch: " + ", ".join(f"worker {w} {g:+.2%}" for w, g in
                                                           sorted(result["rss_growth"].items()))
                 + f"; main {result['main_rss_growth']:+.2%}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train", type=int, default=120, help="training videos of the synthetic world")
    parser.add_argument("--persistent", action="store_true", help="one pair of workers for all epochs")
    parser.add_argument("--cache", action="store_true", help="DSG cache on (under OUT/dsg_cache)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(table(run(args.out, args.epochs, args.train, args.persistent, args.cache)))
    sys.exit(0)
