"""Precomputed detections: sidecar lookup and filtering, Action Genome / VidVRD converters, DSGs from sidecars."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from finsta_pl.graphs.container import EDGE, NODE
from finsta_pl.graphs.detect import GridDetector
from finsta_pl.graphs.dsg import build_dsg
from finsta_pl.graphs.precomputed import (
    FrameDetectorSource,
    PrecomputedDetection,
    PrecomputedDetector,
    convert_action_genome,
    given_tracks,
    main,
    make_source,
    nearest_frame,
    write_sidecar,
)


def _frames(t: int = 3, side: int = 60) -> np.ndarray:
    return np.zeros((t, side, side, 3), np.uint8)


def _obj_tracks(g) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i in np.flatnonzero(g.node_type.numpy() == NODE["object"]):
        out.setdefault(g.node_label[i], []).append(int(g.node_track[i]))
    return out


def test_nearest_frame_tolerance_and_ties() -> None:
    annotated = np.array([10, 20, 40])
    assert nearest_frame(annotated, 14, 5) == 0
    assert nearest_frame(annotated, 15, 5) == 0  # tie: earlier frame
    assert nearest_frame(annotated, 30, 5) is None
    assert nearest_frame(annotated, 44, 5) == 2
    assert nearest_frame(np.array([], np.int64), 3, 100) is None


def test_detector_rescales_filters_and_keeps_features(tmp_path: Path) -> None:
    objs = [{"box": [0, 0, 300, 150], "label": "cup", "score": 0.9, "attributes": ["red"], "feature": [1, 2]},
            {"box": [300, 150, 600, 300], "label": "dog", "score": 0.5},
            {"box": [0, 0, 10, 10], "label": "noise", "score": 0.1},
            {"box": [700, 400, 800, 500], "label": "outside", "score": 1.0}]
    write_sidecar({"video": "v1", "frame_size": [300, 600], "frames": [{"frame": 10, "objects": objs},
                                                                        {"frame": 50, "objects": []}]}, tmp_path)
    det = PrecomputedDetector(root=str(tmp_path), tolerance=5, min_score=0.3, max_objects=2)
    frames = _frames(4)
    frames[0, :30, :30] = (255, 0, 0)
    out = det.detections("v1", frames, [12, 30, 50, 53])
    assert [d.label for d in out[0]] == ["cup", "dog"]  # noise below min_score, "outside" clipped away
    cup = out[0][0]
    assert isinstance(cup, PrecomputedDetection)
    assert cup.box == (0.0, 0.0, 30.0, 30.0) and cup.feature == (1.0, 2.0) and cup.attributes == ["red"]
    assert cup.color == "red" and cup.track is None
    assert out[1] == [] and out[2] == [] and out[3] == []  # 30: too far; 50/53: annotated as empty
    assert det(frames, [12, 30, 50, 53], "v1")[0][0].label == "cup"
    with pytest.raises(TypeError):
        det(frames)
    with pytest.warns(UserWarning, match="no detection sidecar"):
        assert PrecomputedDetector(root=str(tmp_path)).detections("v9", frames, [0, 1, 2, 3]) == [[]] * 4
    with pytest.raises(FileNotFoundError):
        PrecomputedDetector(root=str(tmp_path), missing="raise").detections("v9", frames, [0])


def test_make_source_adapts_frame_detectors() -> None:
    src = make_source("grid", grid=2)
    assert isinstance(src, FrameDetectorSource) and isinstance(src.detector, GridDetector)
    assert len(src.detections("any", _frames(2), [0, 1])[1]) == 4
    assert isinstance(make_source("precomputed", root="."), PrecomputedDetector)


def _vidvrd(tmp_path: Path) -> Path:
    box = lambda x, y: {"xmin": x, "ymin": y, "xmax": x + 40, "ymax": y + 40}
    # tid 7 (dog) moves right; tid 2 (ball) moves left past it: the boxes cross in frame 2.
    traj = [[{"tid": 7, "bbox": box(20 + 40 * f, 100), "generated": 0},
             {"tid": 2, "bbox": box(180 - 40 * f, 100), "generated": 0}] for f in range(5)] + [[]]
    ann = {"video_id": "ILSVRC_v1", "frame_count": 6, "fps": 30, "width": 400, "height": 200,
           "subject/objects": [{"tid": 7, "category": "dog"}, {"tid": 2, "category": "ball"}],
           "trajectories": traj, "relation_instances": [
               {"subject_tid": 7, "object_tid": 2, "predicate": "chase", "begin_fid": 0, "end_fid": 5}]}
    path = tmp_path / "ann" / "ILSVRC_v1.json"
    path.parent.mkdir()
    path.write_text(json.dumps(ann))
    return path


def _annotated(g, predicate: str) -> list[tuple[str, str]]:  # noqa: ANN001
    """(subject label, object label) of every DSG relation node called ``predicate``."""
    ei, et = g.edge_index.t().tolist(), g.edge_type.tolist()
    subj = {d: s for (s, d), t in zip(ei, et) if t == EDGE["subject"]}
    obj = {s: d for (s, d), t in zip(ei, et) if t == EDGE["object"]}
    return [(g.node_label[subj[r]], g.node_label[obj[r]]) for r, lab in enumerate(g.node_label)
            if lab == predicate and g.node_type[r] == NODE["relation"]]


def test_vidvrd_convert_detect_and_dsg(tmp_path: Path) -> None:
    main(["convert", "--format", "vidvrd", "--input", str(_vidvrd(tmp_path).parent), "--out", str(tmp_path / "sc")])
    side = json.loads((tmp_path / "sc" / "ILSVRC_v1.json").read_text())
    assert side["frame_size"] == [200, 400] and len(side["frames"]) == 6 and side["frames"][5]["objects"] == []
    assert side["frames"][0]["objects"][0] == {"box": [20.0, 100.0, 60.0, 140.0], "label": "dog", "score": 1.0,
                                                "track": 7, "relations": [{"predicate": "chase", "object": 2}]}
    assert "relations" not in side["frames"][0]["objects"][1]  # the ball is chased, it chases nothing
    det = PrecomputedDetector(root=str(tmp_path / "sc"), tolerance=0)
    dets = det.detections("ILSVRC_v1", _frames(5, 100), [0, 1, 2, 3, 4])
    assert dets[1][0].box == (15.0, 50.0, 25.0, 70.0)  # x and y scaled by 100/400 and 100/200
    # Annotated tids survive (remapped in order of appearance), also where the boxes cross.
    assert given_tracks(dets) == [[0, 1]] * 5
    g = build_dsg(dets, [0, 1, 2, 3, 4], (100, 100))
    tracks = _obj_tracks(g)
    assert len(tracks["dog"]) == 5 and len(tracks["ball"]) == 5
    assert len(set(tracks["dog"])) == 1 and len(set(tracks["ball"])) == 1  # one track each across frames
    assert int((g.edge_type == EDGE["temporal"]).sum()) == 8
    assert _annotated(g, "chase") == [("dog", "ball")] * 5  # the relation instance, in each of its frames
    assert given_tracks([[PrecomputedDetection((0, 0, 1, 1), "a", 1.0, "red", (0, 0, 0))]]) is None


def test_action_genome_convert_detect_and_dsg(tmp_path: Path) -> None:
    objects = {
        f"0A8CF.mp4/{f:06d}.png": [
            {"class": "cup", "bbox": (100.0 + 10 * i, 60.0, 40.0, 30.0), "visible": True,
             "attention_relationship": ["looking_at"], "spatial_relationship": ["in_front_of"],
             "contacting_relationship": ["holding"], "metadata": {"tag": f"0A8CF/{f:06d}", "set": "train"}},
            {"class": "book", "bbox": None, "visible": False, "attention_relationship": [],
             "spatial_relationship": [], "contacting_relationship": [], "metadata": {}},
        ] for i, f in enumerate((30, 60, 90))}
    persons = {k: {"bbox": np.array([[300.0, 20.0, 420.0, 260.0]]), "bbox_size": (480, 270)} for k in objects}
    for name, obj in (("obj.pkl", objects), ("person.pkl", persons)):
        (tmp_path / name).write_bytes(pickle.dumps(obj, protocol=2))
    paths = convert_action_genome(tmp_path / "obj.pkl", tmp_path / "sc", tmp_path / "person.pkl", allow_pickle=True)
    assert [p.name for p in paths] == ["0A8CF.json"]
    side = json.loads(paths[0].read_text())
    assert side["frame_size"] == [270, 480] and [f["frame"] for f in side["frames"]] == [30, 60, 90]
    assert side["frames"][0]["objects"][1] == {"box": [100.0, 60.0, 140.0, 90.0], "label": "cup", "score": 1.0,
                                                "track": 1000}
    person = side["frames"][0]["objects"][0]
    assert person["track"] == 0 and [r["predicate"] for r in person["relations"]] == ["looking_at", "in_front_of", "holding"]
    assert [o["label"] for o in side["frames"][1]["objects"]] == ["person", "cup"]  # invisible book skipped
    with pytest.raises(ValueError):
        convert_action_genome(tmp_path / "obj.pkl", tmp_path / "sc2", allow_pickle=True)  # no frame size anywhere
    det = PrecomputedDetector(root=str(tmp_path / "sc"), tolerance=10)
    dets = det.detections("0A8CF", _frames(3, 96), [32, 58, 95])
    assert [[d.label for d in ds] for ds in dets] == [["person", "cup"]] * 3
    np.testing.assert_allclose(dets[0][1].box, (20.0, 60 * 96 / 270, 28.0, 90 * 96 / 270), rtol=1e-6)
    g = build_dsg(dets, [32, 58, 95], (96, 96))
    tracks = _obj_tracks(g)
    assert len(set(tracks["cup"])) == 1 and len(set(tracks["person"])) == 1 and tracks["cup"] != tracks["person"]
    assert _annotated(g, "holding") == [("person", "cup")] * 3 and _annotated(g, "looking at") == [("person", "cup")] * 3


def test_malformed_sidecar_object_names_the_file(tmp_path: Path) -> None:
    from finsta_pl.errors import BadSampleError

    side = {"video": "v1", "frame_size": [100, 100], "frames": [
        {"frame": 0, "objects": [{"box": [0, 0, 10, 10], "label": "cup", "relations": [{"predicate": "on"}]}]}]}
    (tmp_path / "v1.json").write_text(json.dumps(side))
    with pytest.raises(BadSampleError, match=r"v1\.json: malformed object near frame 0 \(KeyError"):
        PrecomputedDetector(root=str(tmp_path)).detections("v1", _frames(1, 100), [0])
