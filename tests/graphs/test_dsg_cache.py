"""DSG disk cache: keys, hits and misses, atomic concurrent writes, recovery from corrupt files."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import torch

from finsta_pl.graphs.cache import (
    DSGCache,
    cache_key,
    cached_content_hash,
    content_hash,
    default_cache_dir,
)
from finsta_pl.graphs.container import SceneGraph
from finsta_pl.graphs.detect import GridDetector
from finsta_pl.graphs.dsg import DSGConfig, build_dsg


def _graph(seed: int = 0) -> SceneGraph:
    frames = np.random.default_rng(seed).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    return build_dsg(GridDetector(2)(frames), [0, 5, 10], (32, 32))


def _same(a: SceneGraph, b: SceneGraph) -> bool:
    return a.node_label == b.node_label and all(
        torch.equal(getattr(a, f), getattr(b, f))
        for f in ("node_type", "edge_index", "edge_type", "node_span", "node_frame", "node_track", "node_box"))


def test_content_hash_definition(tmp_path: Path) -> None:
    import hashlib

    small = tmp_path / "a.mp4"
    small.write_bytes(b"abc")
    assert content_hash(small) == hashlib.sha1(b"3\nabcabc").hexdigest()
    big = tmp_path / "b.mp4"
    data = bytes(range(256)) * (3 * 4096 + 1)  # 3 MiB + 256 bytes: the middle is not hashed
    big.write_bytes(data)
    mib = 1 << 20
    assert content_hash(big) == hashlib.sha1(f"{len(data)}\n".encode() + data[:mib] + data[-mib:]).hexdigest()
    assert cached_content_hash(big) == content_hash(big)


def test_hit_miss_and_config_change(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FINSTA_PL_DATA", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / "dsg_cache"
    cache = DSGCache(tmp_path / "c")
    det = {"name": "grid", "grid": 2}
    key = cache_key("h1", DSGConfig(), det, np.array([0, 5, 10]), frame_size=(32, 32))
    calls = []
    build = lambda: calls.append(1) or _graph()
    first = cache.get_or_build(key, build)
    second = cache.get_or_build(key, build)
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1) and _same(first, second)
    assert second.node_label == first.node_label and isinstance(second.node_label, list)
    others = [cache_key("h2", DSGConfig(), det, [0, 5, 10], frame_size=(32, 32)),
              cache_key("h1", DSGConfig(move_speed=0.1), det, [0, 5, 10], frame_size=(32, 32)),
              cache_key("h1", DSGConfig(), {"name": "grid", "grid": 3}, [0, 5, 10], frame_size=(32, 32)),
              cache_key("h1", DSGConfig(), det, [0, 5, 11], frame_size=(32, 32)),
              cache_key("h1", DSGConfig(), det, [0, 5, 10], frame_size=(64, 64))]
    assert len({key, *others}) == 6
    assert cache.get(others[1]) is None and cache.misses == 2
    assert key == cache_key("h1", DSGConfig(), {"grid": 2, "name": "grid"}, [0, 5, 10], frame_size=[32, 32])


def test_corrupt_file_is_a_miss_and_rewritten(tmp_path: Path) -> None:
    cache = DSGCache(tmp_path)
    cache.put("ab" * 20, _graph())
    path = cache.path("ab" * 20)
    path.write_bytes(path.read_bytes()[:50])  # truncated, as by a crash of a writer without os.replace
    rebuilt = cache.get_or_build("ab" * 20, _graph)
    assert cache.misses == 1 and _same(rebuilt, _graph())
    assert _same(cache.get("ab" * 20), _graph()) and cache.hits == 1
    torch.save({"something": "else"}, path)
    assert cache.get("ab" * 20) is None


def _writer(root: str, key: str, seed: int, rounds: int) -> None:
    cache = DSGCache(root)
    graph = _graph(seed)
    for _ in range(rounds):
        cache.put(key, graph)


def test_concurrent_writers_leave_one_valid_file(tmp_path: Path) -> None:
    key = "cd" * 20
    ctx = mp.get_context("fork")  # cheap here: no threads or CUDA in the test process
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), key, s, 40)) for s in (1, 2)]
    for p in procs:
        p.start()
    reader, seen = DSGCache(tmp_path), 0
    while any(p.is_alive() for p in procs):
        if reader.path(key).exists():  # once there, a file is always whole: never a miss again
            assert reader.get(key) is not None
            seen += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    files = list(reader.path(key).parent.iterdir())
    assert files == [reader.path(key)]  # no temp files left behind
    final = reader.get(key)
    assert final is not None and (_same(final, _graph(1)) or _same(final, _graph(2)))
