"""The DSG tracker on real-detector situations (classes, appearance features, missed frames, crossings) and its
MOTA/IDF1 against the embedded world's gold tracks, next to the tracker of stop 16."""

from __future__ import annotations

from pathlib import Path

import pytest

from finsta_pl.graphs.detect import Detection
from finsta_pl.graphs.dsg import DSGConfig, track
from finsta_pl.graphs.precomputed import PrecomputedDetection

OLD = DSGConfig(class_weight=0.0, appearance_weight=0.0, max_age=0, predict=False)


def _det(x: float, label: str = "person", feature: tuple[float, ...] | None = None) -> Detection:
    box = (x, 20.0, x + 10.0, 30.0)
    if feature is None:
        return Detection(box, label, 0.9, "gray", (128.0, 128.0, 128.0))
    return PrecomputedDetection(box, label, 0.9, "gray", (128.0, 128.0, 128.0), feature=feature)


def test_a_fast_track_survives_a_missed_frame_by_its_velocity() -> None:
    """An object moving 9 px per keyframe is missed once; a second one waits where the first would be without
    prediction.  Predicted forward, the first keeps its id; unpredicted, it swaps with the bystander."""
    frames = [[_det(0)], [_det(9)], [_det(36.0, "dog")], [_det(27), _det(36.0, "dog")]]
    ids = track(frames, 64.0, DSGConfig())
    assert ids[3][0] == ids[0][0] and ids[3][1] == ids[2][0]


def test_class_and_appearance_keep_crossing_objects_apart() -> None:
    a, b = (1.0, 0.0), (0.0, 1.0)
    frames = [[_det(10, "person", a), _det(30, "dog", b)], [_det(18, "person", a), _det(22, "dog", b)],
              [_det(29, "person", a), _det(11, "dog", b)]]
    ids = track(frames, 64.0, DSGConfig())
    assert [f[0] for f in ids] == [ids[0][0]] * 3 and [f[1] for f in ids] == [ids[0][1]] * 3
    old = track(frames, 64.0, OLD)
    assert old[2][0] == old[0][1]  # by position alone the two swap after they cross


def test_lost_tracks_expire_after_max_age() -> None:
    frames = [[_det(0)], [], [], [_det(0)]]
    assert track(frames, 64.0, DSGConfig(max_age=1))[3] != [0]
    assert track(frames, 64.0, DSGConfig())[3] == [0]  # unbounded by default


def test_tracking_quality_on_gold_tracks(tiny_world: Path) -> None:
    pytest.importorskip("motmetrics")
    from finsta_pl.tools.track_eval import evaluate_tracking

    clean = evaluate_tracking(tiny_world, num_frames=8)
    assert clean["current tracker"]["mota"] >= 0.97 and clean["current tracker"]["idf1"] >= 0.97
    missed = evaluate_tracking(tiny_world, num_frames=8, miss_rate=0.3)
    assert missed["current tracker"]["idf1"] >= missed["stop-16 tracker"]["idf1"]
    assert missed["current tracker"]["switches"] <= missed["stop-16 tracker"]["switches"]


def test_spatial_predicates_grow_linearly_with_objects() -> None:
    """Each object relates to its nearest few: the DSG of a crowded frame grows linearly, not with the square,
    and a frame within the neighbour count keeps every pair."""
    from finsta_pl.graphs.container import NODE
    from finsta_pl.graphs.dsg import build_dsg

    def relations(n: int, k: int) -> int:
        dets = [[Detection((float(10 * i), 0.0, float(10 * i + 8), 8.0), "ball", 1.0, "red", (200.0, 0.0, 0.0))
                 for i in range(n)]]
        g = build_dsg(dets, [0], (64, 64 * 4), DSGConfig(spatial_neighbours=k))
        return int((g.node_type == NODE["relation"]).sum())

    assert relations(6, 5) == 15 and relations(6, 2) < 15  # all pairs within the count; fewer past it
    assert relations(32, 5) <= 32 * 5 and relations(32, 5) < 32 * 31 // 2
    assert relations(32, 5) / relations(16, 5) < 2.2  # linear: twice the objects, about twice the relations
