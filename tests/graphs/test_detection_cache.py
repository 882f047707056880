"""Per-frame detection cache: training epochs with new random offsets reuse frames; results never change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from finsta_pl.data_modules.video import decode_frames, index_videos
from finsta_pl.graphs.cache import DetectionCache, detections_key
from finsta_pl.graphs.detect import GridDetector, MotionDetector, frame_local


class CountingDetector:
    """A frame-local detector that records how many frames it was asked to detect."""

    def __init__(self, local: bool = True) -> None:
        self.inner, self.local, self.frames = MotionDetector(), local, 0

    def frame_local(self, frames: np.ndarray) -> np.ndarray:
        return self.inner.frame_local(frames) if self.local else np.zeros(len(frames), bool)

    def __call__(self, frames: np.ndarray):  # noqa: ANN204
        self.frames += len(frames)
        return self.inner(frames)


def _video(tiny_world: Path, k: int = 1) -> np.ndarray:
    videos = index_videos(tiny_world / "videos")
    return decode_frames(sorted(videos.values())[k], list(range(16)), (64, 64))


def test_motion_detector_is_frame_local_on_plain_backgrounds(tiny_world: Path) -> None:
    """One pass over the stacked clip gives every frame what detecting that frame alone gives."""
    frames = _video(tiny_world)
    detector = MotionDetector()
    assert frame_local(detector, frames).all()
    together = detector(frames)
    assert sum(map(len, together)) >= 16  # the world's videos have an object in every frame
    assert together == [detector(frames[k : k + 1])[0] for k in range(len(frames))]
    assert frame_local(GridDetector(), frames).all() and not frame_local(object(), frames).any()  # type: ignore[arg-type]


@pytest.mark.parametrize("side", [64, 63])
def test_equal_area_ties_sort_as_in_a_pass_over_one_frame(side: int) -> None:
    """OpenCV numbers components by 2x2 blocks: a frame stacked at an odd row would number equal-area objects
    in another order (and keep another six of seven).  Every frame must come out as it does alone."""
    rng = np.random.default_rng(0)
    frames = np.full((3, side, 128, 3), 128, np.uint8)
    frames[1, 1:9, 40:48] = frames[1, 2:10, 2:10] = (200, 30, 30)  # two equal squares, first rows 1 and 2
    for k in (0, 2):
        for i in range(7):  # more equal squares than max_objects
            y, x = int(rng.integers(0, side - 9)), int(rng.integers(0, 118))
            frames[k, y : y + 8, x : x + 8] = (200, 30, 30) if i % 2 else (30, 30, 200)
    detector = MotionDetector()
    together = detector(frames)
    assert [d.box for d in together[1]] == [(40.0, 1.0, 48.0, 9.0), (2.0, 2.0, 10.0, 10.0)]
    assert together == [detector(frames[k : k + 1])[0] for k in range(3)]
    assert detector(frames[:0]) == []


def test_textured_frames_are_not_frame_local() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)  # noise border: the temporal median decides
    frames[2] = 128  # one plain frame
    assert frame_local(MotionDetector(), frames).tolist() == [False, False, True, False]


def test_cache_detects_only_missing_frames_and_returns_the_same(tiny_world: Path, tmp_path: Path) -> None:
    frames = _video(tiny_world)
    cache, detector = DetectionCache(tmp_path), CountingDetector()
    key = detections_key("video-hash", {"name": "motion"}, (64, 64))
    reference = MotionDetector()(frames)
    first = cache.detections(key, detector, frames[[0, 2, 4, 6]], [0, 2, 4, 6])
    assert first == [reference[i] for i in (0, 2, 4, 6)] and detector.frames == 4
    # Another epoch's offsets: frames 2 and 6 are cached, only 3 and 7 are detected.
    second = cache.detections(key, detector, frames[[2, 3, 6, 7]], [2, 3, 6, 7])
    assert second == [reference[i] for i in (2, 3, 6, 7)] and detector.frames == 6
    assert (cache.hits, cache.misses) == (2, 6)
    # A new process (a new worker) finds all six frames on disk.
    again = DetectionCache(tmp_path)
    assert again.detections(key, detector, frames[[0, 3, 6, 7]], [0, 3, 6, 7]) == [reference[i] for i in (0, 3, 6, 7)]
    assert detector.frames == 6 and again.hits == 4
    # Other detector arguments or frame size: other files.
    assert len({key, detections_key("video-hash", {"name": "motion", "min_area": 0.01}, (64, 64)),
                detections_key("video-hash", {"name": "motion"}, (32, 32)),
                detections_key("other-hash", {"name": "motion"}, (64, 64))}) == 4


def test_frames_that_need_the_clip_are_never_stored(tiny_world: Path, tmp_path: Path) -> None:
    frames = _video(tiny_world)
    cache, detector = DetectionCache(tmp_path), CountingDetector(local=False)
    key = detections_key("h", {"name": "counting"}, (64, 64))
    cache.detections(key, detector, frames[:4], [0, 1, 2, 3])
    cache.detections(key, detector, frames[:4], [0, 1, 2, 3])
    assert detector.frames == 8 and not cache.path(key).exists()


def test_corrupt_or_stale_file_is_detected_again(tiny_world: Path, tmp_path: Path) -> None:
    frames = _video(tiny_world)
    cache, detector = DetectionCache(tmp_path), CountingDetector()
    key = detections_key("h", {"name": "motion"}, (64, 64))
    cache.detections(key, detector, frames[:2], [0, 1])
    cache.path(key).write_text('{"v": 1, "frames": {"0": [[')  # truncated
    assert cache.load(key) == {}
    assert cache.detections(key, detector, frames[:2], [0, 1]) == MotionDetector()(frames[:2])
    assert detector.frames == 4 and set(cache.load(key)) == {0, 1}
    cache.path(key).write_text('{"v": 0, "frames": {}}')  # another layout version
    assert cache.load(key) == {}
    assert [p.name for p in cache.path(key).parent.iterdir()] == [cache.path(key).name]  # no temp files left


def test_training_epochs_hit_the_frame_cache_with_unchanged_graphs(tiny_world: Path, tmp_path: Path) -> None:
    """Through the DataModule: random offsets change each epoch, cached frames give the graphs built without
    a cache, and by the third epoch most keyframes come from the cache."""
    from finsta_pl.data_modules import ClipConfig, LoaderConfig, VideoQADataModule
    from finsta_pl.data_modules.graph_builder import GraphConfig
    from finsta_pl.data_modules.synthetic import WorldConfig

    def module(with_cache: bool) -> VideoQADataModule:
        dm = VideoQADataModule(synthetic=WorldConfig(num_train=24, num_val=12, num_test=8),
                               clip=ClipConfig(num_frames=8, frame_size=64),
                               loader=LoaderConfig(batch_size=8, num_workers=0),
                               graphs=GraphConfig(cache=with_cache, cache_dir=str(tmp_path / "c")))
        dm.setup("fit")
        return dm

    plain, cached = module(False), module(True)
    frame_cache = cached._graph_builder.frame_cache
    assert plain._graph_builder.frame_cache is None and frame_cache is not None
    offsets, per_epoch = [], []
    for epoch in range(4):
        for dm in (plain, cached):
            dm.set_epoch(epoch)
        before = (frame_cache.hits, frame_cache.misses)
        samples = [(plain.datasets["train"][i], cached.datasets["train"][i]) for i in range(0, 24, 3)]
        for a, b in samples:
            assert a.dsg.node_label == b.dsg.node_label and a.dsg.edge_index.equal(b.dsg.edge_index)
            assert a.dsg.node_box.equal(b.dsg.node_box)
        offsets.append(samples[0][0].dsg.node_box.sum().item())
        per_epoch.append((frame_cache.hits - before[0], frame_cache.misses - before[1]))
    assert len(set(offsets)) > 1  # the epochs did sample other frames
    hits, misses = per_epoch[-1]  # 16-frame videos sampled 8 at a time: the 4th epoch finds most of its frames
    assert per_epoch[0][0] == 0 and hits > misses


def test_an_unwritable_cache_costs_misses_not_samples(tiny_world: Path, tmp_path: Path) -> None:
    frames = _video(tiny_world)
    (tmp_path / "detections").write_text("a file where the cache folder should be")  # no writes below it, even as root
    cache = DetectionCache(tmp_path)
    key = detections_key("h", {"name": "motion"}, (64, 64))
    with pytest.warns(UserWarning, match="cannot write"):
        assert cache.detections(key, MotionDetector(), frames[:2], [0, 1]) == MotionDetector()(frames[:2])
    assert cache.detections(key, MotionDetector(), frames[:2], [0, 1]) == MotionDetector()(frames[:2])
    assert cache.misses == 4 and cache.hits == 0
