"""The alignment loss on two real ranks (gloo, CPU): no hang when one rank has no pairs, and the per-rank losses
add up to the single-process loss over all pairs (cross-rank negatives, shared-region keys, hard negatives)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from finsta_pl.nn.losses import info_nce

DIM = 8


def _case(seed: int, counts: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Pairs of both ranks, rank 0's first; keys repeat once (two anchors sharing one region)."""
    g = torch.Generator().manual_seed(seed)
    n = sum(counts)
    keys = torch.arange(n)
    if n >= 3:
        keys[2] = keys[0]
    return {"anchors": torch.randn(n, DIM, generator=g), "positives": torch.randn(n, DIM, generator=g),
            "hard": torch.randn(n, DIM, generator=g), "hard_mask": torch.arange(n) % 2 == 0, "keys": keys}


def _worker(rank: int, port: int, counts: tuple[int, int], out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    data = _case(0, counts)
    lo = sum(counts[:rank])
    rows = slice(lo, lo + counts[rank])
    anchors = data["anchors"][rows].clone().requires_grad_()
    positives = data["positives"][rows].clone().requires_grad_()
    scale = torch.tensor(2.0, requires_grad=True)
    loss = info_nce(anchors, positives, scale, data["keys"][rows], data["hard"][rows], data["hard_mask"][rows])
    # Weighted by the rank's share of the pairs, the ranks' losses add up to the single-process loss, so each
    # rank's gradient of its rows must be that loss's gradient: it reaches them from every rank's loss.  (This
    # backward hung forever on the rank with pairs when the other returned early.)
    (loss * counts[rank] / sum(counts)).backward()
    torch.save({"loss": loss.detach(), "n": counts[rank], "anchors": anchors.grad, "positives": positives.grad},
               f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def _run_two_ranks(counts: tuple[int, int], tmp_path: Path, timeout: float = 120.0) -> list[dict]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.start_processes(_worker, args=(port, counts, str(tmp_path)), nprocs=2, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            pytest.fail(f"two-rank info_nce with pair counts {counts} did not finish in {timeout:.0f} s (hang)")
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]


def _reference(counts: tuple[int, int]) -> dict[str, torch.Tensor]:
    """The single-process loss over all pairs and its gradients."""
    data = _case(0, counts)
    anchors, positives = data["anchors"].requires_grad_(), data["positives"].requires_grad_()
    loss = info_nce(anchors, positives, torch.tensor(2.0), data["keys"], data["hard"], data["hard_mask"])
    loss.backward()
    return {"loss": loss.detach(), "anchors": anchors.grad, "positives": positives.grad}


@pytest.mark.parametrize("counts", [(0, 3), (3, 0), (2, 3)])
def test_two_ranks_agree_with_one_process(counts: tuple[int, int], tmp_path: Path) -> None:
    results = _run_two_ranks(counts, tmp_path)
    reference = _reference(counts)
    total = sum(r["loss"] * r["n"] for r in results) / sum(counts)
    torch.testing.assert_close(total, reference["loss"])
    for name in ("anchors", "positives"):
        torch.testing.assert_close(torch.cat([r[name] for r in results]), reference[name], msg=name)


def test_shared_region_keys_remove_false_negatives() -> None:
    a = torch.eye(3)
    p = torch.stack([torch.eye(3)[0], torch.eye(3)[1], torch.eye(3)[0]])  # pairs 0 and 2 share one region
    scale = torch.tensor(3.0)
    plain = info_nce(a, p, scale)
    keyed = info_nce(a, p, scale, keys=torch.tensor([7, 8, 7]))
    assert keyed < plain  # the shared region is no longer a negative of either pair


def test_hard_negative_raises_the_loss_only_where_present() -> None:
    g = torch.Generator().manual_seed(1)
    a, p = torch.randn(4, DIM, generator=g), torch.randn(4, DIM, generator=g)
    scale = torch.tensor(2.0)
    base = info_nce(a, p, scale)
    none = info_nce(a, p, scale, hard_negatives=torch.randn(4, DIM, generator=g), hard_mask=torch.zeros(4, dtype=torch.bool))
    torch.testing.assert_close(none, base)
    harder = info_nce(a, p, scale, hard_negatives=a.clone(), hard_mask=torch.ones(4, dtype=torch.bool))
    assert harder > base


def _metric_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from finsta_pl.metrics import RetrievalRecall

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    text, video, vid = _metric_case()
    # 9 captions over 2 ranks: rank 1 gets 4 and the sampler's padding repeat of caption 0.
    rows = torch.arange(0, 5) if rank == 0 else torch.tensor([5, 6, 7, 8, 0])
    metric = RetrievalRecall()
    metric.update(text[rows], video[vid[rows]], rows, vid[rows])
    torch.save({k: v for k, v in metric.compute().items()}, f"{out}/metric{rank}.pt")
    dist.destroy_process_group()


def _metric_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    video = torch.randn(4, DIM, generator=g)
    vid = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 3])
    return video[vid] + torch.randn(9, DIM, generator=g), video, vid


@pytest.mark.slow  # two spawned ranks; tests/tasks/test_ddp_equality.py checks every task's metrics on uneven ranks in the default run
def test_retrieval_metric_on_two_ranks_with_an_uneven_last_batch(tmp_path: Path) -> None:
    import socket

    from finsta_pl.metrics import RetrievalRecall

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.start_processes(_metric_worker, args=(port, str(tmp_path)), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + 120
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            pytest.fail("two-rank retrieval metric did not finish")
    text, video, vid = _metric_case()
    single = RetrievalRecall()
    single.update(text, video[vid], torch.arange(9), vid)
    expected = single.compute()
    for rank in range(2):
        got = torch.load(tmp_path / f"metric{rank}.pt")
        for key, value in expected.items():
            torch.testing.assert_close(got[key], value, msg=key)
