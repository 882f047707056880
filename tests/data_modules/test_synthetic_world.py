"""Tests of the embedded synthetic world: determinism, official formats, answer balance, gold boxes, caching."""
from __future__ import annotations

import collections
import json
import math
import subprocess
import sys
from pathlib import Path

import decord
import numpy as np
import pytest

from finsta_pl.data_modules.synthetic import world
from finsta_pl.data_modules.synthetic.world import (ANSWER_SETS, COLORS, SHAPES, WorldConfig, ensure_world,
                                                     generate_world)

TINY = WorldConfig(num_train=6, num_val=3, num_test=3)
# Moderate world for statistics: enough questions per template for a balance check, still ~1 s to write.
MEDIUM = WorldConfig(num_train=200, num_val=0, num_test=100, seed=3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    generate_world(TINY, out)
    return out


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("medium")
    generate_world(MEDIUM, out)
    return out


def _decode(path: Path) -> np.ndarray:
    reader = decord.VideoReader(str(path))
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def _json_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def _graphs(root: Path, config: WorldConfig) -> list[dict]:
    return [json.loads((root / "scene_graphs" / f"video{v}.json").read_text()) for v in range(config.num_videos)]


def test_generation_is_deterministic(tiny: Path, tmp_path: Path) -> None:
    generate_world(TINY, tmp_path)
    assert _json_files(tiny) == _json_files(tmp_path)
    for vid in range(TINY.num_videos):
        a, b = _decode(tiny / "videos" / f"video{vid}.mp4"), _decode(tmp_path / "videos" / f"video{vid}.mp4")
        assert a.shape == (TINY.num_frames, TINY.frame_size, TINY.frame_size, 3)
        np.testing.assert_array_equal(a, b)


def test_video_does_not_depend_on_earlier_videos(tiny: Path, tmp_path: Path) -> None:
    smaller = WorldConfig(num_train=4, num_val=0, num_test=0)
    generate_world(smaller, tmp_path)
    for vid in range(4):
        name = f"scene_graphs/video{vid}.json"
        assert (tiny / name).read_bytes() == (tmp_path / name).read_bytes()
    other = tmp_path / "other_seed"
    generate_world(WorldConfig(num_train=4, num_val=0, num_test=0, seed=1), other)
    graphs = lambda root: [(root / f"scene_graphs/video{v}.json").read_bytes() for v in range(4)]  # noqa: E731
    assert all(a != b for a, b in zip(graphs(other), graphs(tmp_path)))


def test_msrvtt_qa_format(tiny: Path) -> None:
    ids, split_ranges = set(), {"train": range(0, 6), "val": range(6, 9), "test": range(9, 12)}
    for split, vids in split_ranges.items():
        records = json.loads((tiny / "msrvtt_qa" / f"{split}_qa.json").read_text())
        assert len(records) == len(vids) * TINY.questions_per_video
        for r in records:
            assert set(r) == {"answer", "category_id", "id", "question", "video_id"}
            assert isinstance(r["answer"], str) and isinstance(r["question"], str)
            assert all(type(r[k]) is int for k in ("category_id", "id", "video_id"))
            assert r["video_id"] in vids and (tiny / "videos" / f"video{r['video_id']}.mp4").is_file()
            assert r["answer"] in ANSWER_SETS[r["category_id"]] and r["answer"] == r["answer"].lower()
            assert " " not in r["answer"] and r["question"].endswith("?")
            ids.add(r["id"])
        per_video = collections.Counter(r["video_id"] for r in records)
        assert set(per_video.values()) == {TINY.questions_per_video}
    assert len(ids) == TINY.num_videos * TINY.questions_per_video  # unique across splits


def test_msrvtt_format(tiny: Path) -> None:
    train_val = json.loads((tiny / "msrvtt" / "train_val_videodatainfo.json").read_text())
    test = json.loads((tiny / "msrvtt" / "test_videodatainfo.json").read_text())
    sen_ids = []
    for data, splits in ((train_val, {"train", "validate"}), (test, {"test"})):
        assert set(data) == {"info", "videos", "sentences"}
        assert set(data["info"]) == {"year", "version", "description", "contributor", "data_created"}
        for v in data["videos"]:
            assert set(v) == {"id", "video_id", "category", "url", "start time", "end time", "split"}
            assert v["video_id"] == f"video{v['id']}" and v["split"] in splits
            assert isinstance(v["category"], int) and isinstance(v["start time"], float)
            assert v["end time"] == pytest.approx(TINY.num_frames / TINY.fps)
        captions = collections.Counter(s["video_id"] for s in data["sentences"])
        assert set(captions) == {v["video_id"] for v in data["videos"]}
        assert all(2 <= c <= 3 for c in captions.values())
        for s in data["sentences"]:
            assert set(s) == {"sen_id", "video_id", "caption"} and isinstance(s["caption"], str)
            sen_ids.append(s["sen_id"])
    assert [v["split"] for v in train_val["videos"]] == ["train"] * 6 + ["validate"] * 3
    assert [v["id"] for v in test["videos"]] == [9, 10, 11]
    assert len(sen_ids) == len(set(sen_ids))


def _box_centre(box: list[int]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _check_answer(g: dict, q: dict) -> None:
    """The gold scene graph makes the answer true."""
    objects, events = g["objects"], {e["subject"]: e for e in g["events"]}
    words = q["question"].rstrip("?").split()
    named = [o for o in objects if o["color"] in words and o["shape"] in words]
    t, a = q["category_id"], q["answer"]
    if t == 0:
        (obj,) = [o for o in objects if o["shape"] == words[-1]]  # the shape is unique in the clip
        assert obj["color"] == a
    elif t == 1:
        assert [o["shape"] for o in objects if o["color"] == words[4]] == [a]
    elif t == 4:
        assert len(objects) == ["one", "two", "three"].index(a) + 1
        assert len(g["frames"][-1]["boxes"]) == len(objects)
    else:
        (obj,) = named
        ev = events[obj["id"]]
        if t == 2:
            assert ev["predicate"] == "move" and ev["direction"] == a
            boxes = [b["box"] for f in g["frames"] for b in f["boxes"] if b["object"] == obj["id"]]
            (x0, y0), (x1, y1) = _box_centre(boxes[0]), _box_centre(boxes[-1])
            dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[a]
            assert (x1 - x0) * dx + (y1 - y0) * dy > 0
        elif t == 3:
            assert ev["predicate"] in ("move", "approach") and ev["speed"] == a
        else:
            assert ev["predicate"] == a and obj["id"] == 0


def _iou(a: list[int], b: list[int]) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda x: (x[2] - x[0]) * (x[3] - x[1])  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


def test_gold_scene_graphs_make_every_answer_true(medium: Path) -> None:
    size = MEDIUM.frame_size
    displacement: dict[str, list[float]] = collections.defaultdict(list)
    for g in _graphs(medium, MEDIUM):
        assert 1 <= len(g["objects"]) <= 3 and len({o["color"] for o in g["objects"]}) == len(g["objects"])
        assert len(g["frames"]) == MEDIUM.num_frames and g["frame_size"] == [size, size]
        for q in g["questions"]:
            _check_answer(g, q)
        assert len(g["text_graphs"]) == len(g["captions"]) + len(g["questions"])
        main = g["events"][0]
        approach = {0, 1} if main["predicate"] == "approach" else set()
        track = {o["id"]: {} for o in g["objects"]}
        for f in g["frames"]:
            for b in f["boxes"]:
                assert 0 <= min(b["box"]) and max(b["box"]) <= size
                track[b["object"]][f["t"]] = b["box"]
            for b, c in ((b, c) for b in f["boxes"] for c in f["boxes"] if b["object"] < c["object"]):
                if {b["object"], c["object"]} != approach:
                    assert _iou(b["box"], c["box"]) < 0.3
        if main["predicate"] == "appear":
            assert 4 <= min(track[0]) <= 8
        if main["predicate"] == "approach":
            last = g["frames"][-1]["t"]
            assert {"t": last, "subject": 0, "predicate": "near", "object": 1} in g["relations"]
        if main["predicate"] == "move":
            (x0, y0), (x1, y1) = _box_centre(track[0][main["start"]]), _box_centre(track[0][main["end"]])
            displacement[main["speed"]].append(math.hypot(x1 - x0, y1 - y0) / (main["end"] - main["start"]))
    ratio = np.mean(displacement["quickly"]) / np.mean(displacement["slowly"])
    assert 2.2 < ratio < 2.8


def test_answers_are_balanced_and_question_text_is_no_better_than_prior(medium: Path) -> None:
    records = {s: json.loads((medium / "msrvtt_qa" / f"{s}_qa.json").read_text()) for s in ("train", "test")}
    counts: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in records["train"] + records["test"]:
        counts[r["category_id"]][r["answer"]] += 1
    for template, answers in enumerate(ANSWER_SETS):
        total = sum(counts[template].values())
        assert total > 20, template
        expected, p = total / len(answers), 1 / len(answers)
        for answer in answers:  # within 4 binomial standard deviations of uniform
            assert abs(counts[template][answer] - expected) <= 4 * math.sqrt(total * p * (1 - p)), (template, answer)
    # Best question-only predictors fitted on train: per template, and per exact question string.
    by_template: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    by_text: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in records["train"]:
        by_template[r["category_id"]][r["answer"]] += 1
        by_text[r["question"]][r["answer"]] += 1
    test = records["test"]
    prior = np.mean([by_template[r["category_id"]].most_common(1)[0][0] == r["answer"] for r in test])
    text = np.mean([(by_text.get(r["question"]) or by_template[r["category_id"]]).most_common(1)[0][0] == r["answer"]
                    for r in test])
    assert text <= prior + 0.03, (text, prior)


def test_gold_boxes_match_drawn_pixels(tiny: Path) -> None:
    names = list(COLORS)
    # decord gives RGB; the palette is BGR.  Background joins the palette so blurred edges fall to it.
    palette = np.array([c[::-1] for c in COLORS.values()] + [world.BACKGROUND], float)
    for g in _graphs(tiny, TINY):
        frames = _decode(tiny / "videos" / f"{g['video_id']}.mp4").astype(float)
        dist = np.linalg.norm(frames[..., None, :] - palette, axis=-1)
        label = np.where(dist.min(-1) < 80, dist.argmin(-1), -1)
        for f in g["frames"]:
            boxes = {b["object"]: b["box"] for b in f["boxes"]}
            for obj in g["objects"]:
                ys, xs = np.nonzero(label[f["t"]] == names.index(obj["color"]))
                if obj["id"] not in boxes:  # not yet appeared: no pixels of its colour
                    assert len(xs) == 0
                    continue
                x1, y1, x2, y2 = boxes[obj["id"]]
                assert len(xs) >= 0.3 * (x2 - x1) * (y2 - y1)
                assert xs.min() >= x1 - 2 and ys.min() >= y1 - 2 and xs.max() <= x2 - 1 + 2 and ys.max() <= y2 - 1 + 2


def test_ensure_world_is_idempotent_and_repairs_incomplete_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = ensure_world(TINY, tmp_path)
    assert path == tmp_path / TINY.fingerprint()
    assert json.loads((path / ".complete").read_text())["config"]["num_train"] == 6
    reference = _json_files(path)
    real = world.generate_world

    def refuse(*_: object) -> None:
        raise AssertionError("a complete world must not be regenerated")

    monkeypatch.setattr(world, "generate_world", refuse)
    assert ensure_world(TINY, tmp_path) == path
    (path / ".complete").unlink()  # as if a run crashed half-way
    (path / "junk.txt").write_text("partial")
    monkeypatch.setattr(world, "generate_world", real)
    assert ensure_world(TINY, tmp_path) == path
    assert (path / ".complete").is_file() and not (path / "junk.txt").exists()
    assert _json_files(path) == reference
    assert not list(tmp_path.glob(".*.tmp-*"))


@pytest.mark.slow  # a whole fit or tool run; make test-slow (CI runs it) keeps it
def test_concurrent_ensure_world_builds_one_world(tmp_path: Path) -> None:
    # Each process loads world.py directly (fast: no lightning import) and logs every generation; the slow
    # wrapper keeps the lock held long enough for the second process to arrive while the first is writing.
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import world\n"
        "real = world.generate_world\n"
        "def logged(config, out):\n"
        "    open(sys.argv[3], 'a').write('generated\\n'); time.sleep(1.0); real(config, out)\n"
        "world.generate_world = logged\n"
        "cfg = world.WorldConfig(num_train=6, num_val=3, num_test=3)\n"
        "print(world.ensure_world(cfg, world.Path(sys.argv[2])))\n")
    log = tmp_path / "log.txt"
    root = tmp_path / "cache"
    args = [sys.executable, "-c", code, str(Path(world.__file__).parent), str(root), str(log)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert {out.strip() for out, _ in outputs} == {str(root / TINY.fingerprint())}
    assert log.read_text().count("generated") == 1
    assert sorted(p.name for p in root.iterdir()) == sorted([TINY.fingerprint(), f".{TINY.fingerprint()}.lock"])
    assert (root / TINY.fingerprint() / ".complete").is_file()
    assert len(list((root / TINY.fingerprint() / "videos").glob("*.mp4"))) == TINY.num_videos


def test_config_fingerprint_cache_dir_and_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert TINY.fingerprint() == WorldConfig(num_train=6, num_val=3, num_test=3).fingerprint()
    assert TINY.fingerprint() != WorldConfig(num_train=6, num_val=3, num_test=3, seed=1).fingerprint()
    with pytest.raises(ValueError):
        WorldConfig(questions_per_video=6)
    with pytest.raises(ValueError):
        WorldConfig(frame_size=16)
    monkeypatch.setenv("FINSTA_PL_DATA", str(tmp_path / "data"))
    assert world.default_cache_dir() == tmp_path / "data" / "synthetic"
    world.main(["--out", str(tmp_path / "cli"), "--num-train", "2", "--num-val", "0", "--num-test", "1"])
    assert str(tmp_path / "cli") in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "cli" / "videos").iterdir()) == ["video0.mp4", "video1.mp4",
                                                                               "video2.mp4"]
    assert set(SHAPES) == {"circle", "square", "triangle"}
