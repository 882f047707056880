"""DDP equality: the validation metrics of every task on two gloo CPU ranks equal those of one process, on the
same data and the same checkpoint, with a validation split (7 records) that two ranks cannot split evenly.

How: ``tests/runners/ddp_validate_runner.py`` writes one checkpoint per task (fixed noise + a few Adam steps, so the
metrics are neither 0 nor 1), validates it in this process on one device, then two copies of it started the
way torchrun starts them validate it with ``strategy=ddp`` on 2 CPU devices (one process group for all six
tasks).  Eval batches of 3: one process sees 3+3+1 records; under DDP Lightning's ``DistributedSampler`` gives
each rank 4 (3+1), rank 1's last being a repeat of record 0 (padding).

What must be equal, and why:

- **task metrics, exactly** (accuracies, top-k and class means, every retrieval recall and rank, BLEU-1..4,
  ROUGE-L, CIDEr): they are computed once per epoch from states gathered over all ranks and de-duplicated by
  sample index (``metrics.py``, ``caption_metrics.py``), so the padded repeat must not count twice, and every
  per-sample value is computed from the same weights;
- **every rank reports the same values** (each computes from the gathered states; losses are synced);
- **per-clip model outputs** (pooled video feature, joint feature of each text), ``allclose`` 1e-5: a clip's
  forward pass must not depend on which records share its batch (padding of texts and graphs);
- **the losses are not compared**: they are means of per-batch means (Lightning's ``sync_dist`` averages
  the ranks' batch-size-weighted means), so the padded repeat of record 0 counts twice under DDP; and the
  contrastive losses (retrieval, OSC/PTC/HSG) take their negatives from the batch -- from every rank's batch
  under DDP -- so the same record has a different loss in a batch of 3 than in a gathered batch of 6.  They
  are checked to be present, finite and equal across ranks.  So are the alignment diagnostics (``align_*``:
  pair and link counts, in-batch top-1), which depend on the batch the same way.
- Captioning is scored without Java (METEOR and the PTB tokenizer each start a JVM, ~20 s here): the
  gathering and de-duplication of clips and references under test are the same with and without it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO
from tests.runners import ddp_validate_runner as runner

LOSSES = {"loss", "task_loss", "osc", "ptc", "hsg", "distill"}


def _read(out: Path, task: str, world: int, rank: int) -> dict:
    path = out / f"{task}.ws{world}.rank{rank}.json"
    assert path.is_file(), f"{task}: rank {rank} of {world} never reached it (an earlier task hung)"
    record = json.loads(path.read_text())
    assert "error" not in record, f"{task}, rank {rank} of {world}:\n{record['error']}"
    return record


@pytest.fixture(scope="module")
def results(data_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoints, the one-process validation (here) and the two-rank one (two runner processes)."""
    from finsta_pl.data_modules.synthetic import WorldConfig, ensure_world

    ensure_world(WorldConfig(**runner.WORLD))  # generated once here, not raced by the ranks
    out = tmp_path_factory.mktemp("ddp_equality")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: a second thread only spins (and the ranks take the cores below)
    try:
        for task in runner.TASKS:
            runner.write_checkpoint(task, out / f"{task}.pt")
        procs = _start_ranks(out)
        runner.validate_all(out, list(runner.TASKS), 1)
    finally:
        torch.set_num_threads(threads)
    for p in procs:
        try:
            log, _ = p.communicate(timeout=600)
        except subprocess.TimeoutExpired:  # a task hung both ranks: the others after it report "started"
            for q in procs:
                q.kill()
            log = "timed out"
        (out / f"rank{procs.index(p)}.log").write_text(log)
    return out


def _start_ranks(out: Path) -> list[subprocess.Popen]:
    """Two runner processes as torchrun would start them (Lightning's DDP takes the processes it finds)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "WORLD_SIZE": "2", "NODE_RANK": "0"}
    script = REPO / "tests" / "runners" / "ddp_validate_runner.py"
    return [subprocess.Popen([sys.executable, str(script), str(out), *runner.TASKS], cwd=out,
                             env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for r in range(2)]


def test_the_runner_covers_every_task() -> None:
    from tests.tasks.test_tasks import TASKS

    assert set(runner.TASKS) == set(TASKS)
    for task in runner.TASKS:
        dm_cls, task_cls = runner.shipped_classes(task)
        assert (dm_cls.__name__, task_cls.__name__) == TASKS[task]


@pytest.mark.parametrize("task", runner.TASKS)
def test_two_ranks_validate_like_one_process(task: str, results: Path) -> None:
    one = _read(results, task, 1, 0)
    ranks = [_read(results, task, 2, r) for r in range(2)]
    # The uneven split was exercised: 7 records, 4 per rank, one of them a padded repeat.
    assert one["dataset"] == 7 and [len(b) for b in one["batches"]] == [3, 3, 1]
    assert all(r["world_size"] == 2 and r["sampler"] == "DistributedSampler" for r in ranks), ranks[0]["sampler"]
    seen = [clip for r in ranks for batch in r["batches"] for clip in batch]
    assert len(seen) == 8 and sorted(set(seen)) == sorted(c for b in one["batches"] for c in b)

    assert ranks[0]["metrics"] == ranks[1]["metrics"], "ranks report different values"
    ddp = ranks[0]["metrics"]
    assert set(ddp) == set(one["metrics"])
    task_metrics = {k for k in one["metrics"] if k.split("/")[-1] not in LOSSES and "/align_" not in k}
    assert task_metrics, f"{task}: no task metric logged: {sorted(one['metrics'])}"
    assert any(0 < one["metrics"][k] < 1 for k in task_metrics), f"{task}: degenerate checkpoint {one['metrics']}"
    assert {k: ddp[k] for k in task_metrics} == {k: one["metrics"][k] for k in task_metrics}
    assert all(math.isfinite(v) for v in ddp.values())

    outputs = {**ranks[0]["outputs"], **ranks[1]["outputs"]}
    assert set(outputs) == set(one["outputs"])
    for clip, expected in one["outputs"].items():
        for name, value in expected.items():
            torch.testing.assert_close(torch.tensor(outputs[clip][name]), torch.tensor(value), atol=1e-5, rtol=1e-5,
                                       msg=lambda m, c=clip, n=name: f"{task}, clip {c}, {n}: {m}")
