"""The world's long-form (ActivityNet Captions) and compositional files, and the readers that take them:
paragraph retrieval with event-order twins, split lists (MSR-VTT's 9k/1k-A style and the compositional split)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import decord
import pytest

from finsta_pl.data_modules import ClipConfig, LoaderConfig, RetrievalDataModule, VideoQADataModule
from finsta_pl.data_modules.activitynet import read_activitynet_paragraphs
from finsta_pl.data_modules.base import read_video_list
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.data_modules.synthetic.compositional import HELD_OUT_ACTIONS, HELD_OUT_BINDINGS, is_novel
from finsta_pl.errors import BadSampleError, DataNotFoundError

WORLD = WorldConfig(num_train=24, num_val=12, num_test=8)  # the session's tiny world (conftest)
SMALL = dict(clip=ClipConfig(num_frames=4), loader=LoaderConfig(batch_size=4, num_workers=0))


def _graphs(root: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (root / "scene_graphs").glob("*.json")}


def test_paragraph_videos_come_in_both_orders(tiny_world: Path) -> None:
    ann = json.loads((tiny_world / "activitynet" / "val_1.json").read_text())
    graphs = _graphs(tiny_world)
    assert ann and json.loads((tiny_world / "activitynet" / "val_ids.json").read_text()) == list(ann)
    for key, entry in ann.items():
        a, b = key.removeprefix("v_pair").split("_")
        twin = ann[f"v_pair{b}_{a}"]
        assert twin["sentences"][0].strip() == entry["sentences"][1].strip()  # same words, other order
        assert entry["sentences"][1].startswith(" ")  # as in the real files
        assert entry["sentences"][0] == graphs[f"video{a}"]["captions"][0].capitalize() + "."
        first, second = entry["timestamps"]
        assert first[0] == 0 and first[1] == second[0] and second[1] == entry["duration"]
        reader = decord.VideoReader(str(tiny_world / "activitynet" / "videos" / f"{key}.mp4"))
        assert len(reader) == 2 * WORLD.num_frames
    train = json.loads((tiny_world / "activitynet" / "train.json").read_text())
    assert len(train) == WORLD.num_train and not set(train) & set(ann)


def test_activitynet_reader_strips_joins_keeps_times_and_names_bad_entries(tmp_path: Path) -> None:
    entry = {"duration": 10.0, "timestamps": [[0.5, 4.0], [3.0, 12.5], [5, 6]], "sentences": ["A man runs.", " He jumps.", "  "]}
    (tmp_path / "train.json").write_text(json.dumps({"v_ab-c": entry}))
    records = read_activitynet_paragraphs(tmp_path)["train"]
    assert [(r.id, r.video, r.caption) for r in records] == [("v_ab-c", "v_ab-c", "A man runs. He jumps.")]
    assert records[0].segments == ((0.5, 4.0), (3.0, 10.0))  # clipped to the duration; the empty one dropped
    (tmp_path / "val_1.json").write_text(json.dumps({"v_x": {"duration": 3, "timestamps": [[0, 1]], "sentences": []}}))
    with pytest.raises(BadSampleError, match=r"val_1.json: malformed entry 'v_x'"):
        read_activitynet_paragraphs(tmp_path)
    with pytest.raises(DataNotFoundError, match="train.json not found"):
        read_activitynet_paragraphs(tmp_path / "nowhere")


def test_paragraph_retrieval_finds_videos_named_without_the_v_prefix(tiny_world: Path, tmp_path: Path) -> None:
    """CLIP4Clip's layout keeps ``<id>.mp4`` for the JSON's ``v_<id>``; both load through one video map."""
    root = tmp_path / "anet"
    (root / "ann").mkdir(parents=True)
    (root / "videos" / "sub").mkdir(parents=True)
    ann = json.loads((tiny_world / "activitynet" / "train.json").read_text())
    keys = list(ann)[:4]
    for n, key in enumerate(keys):
        name = key[2:] if n % 2 else key
        shutil.copy(tiny_world / "activitynet" / "videos" / f"{key}.mp4", root / "videos" / "sub" / f"{name}.mp4")
    (root / "ann" / "train.json").write_text(json.dumps({k: ann[k] for k in keys}))
    (root / "ann" / "val_1.json").write_text(json.dumps({k: ann[k] for k in keys[:2]}))
    dm = RetrievalDataModule(dataset="activitynet", root=str(root), annotation_dir="ann", **SMALL)
    dm.setup("fit")
    assert [len(dm.datasets[s]) for s in ("train", "val")] == [4, 2]
    sample = dm.datasets["val"][1]
    assert sample is not None and sample.id == keys[1] and len(sample.texts) == 1
    assert sample.texts[0].graphs.tsg.num_nodes > 4  # both sentences parsed into one TSG


def test_synthetic_paragraph_retrieval_builds_a_twin_gallery() -> None:
    dm = RetrievalDataModule(synthetic=WORLD, format="activitynet", annotation_dir="activitynet",
                             video_dir="activitynet/videos", **SMALL)
    dm.setup("fit")
    val = dm.records["val"]
    assert {r.video for r in val} == {f"v_pair{b}_{a}" for a, b in (r.video[6:].split("_") for r in val)}
    assert dm.data_info().baselines["random_ranking_r1"] == pytest.approx(1 / len(val))


def test_compositional_split_holds_out_combinations_seen_only_apart(tiny_world: Path) -> None:
    graphs = _graphs(tiny_world)
    lists = {s: read_video_list(tiny_world / "splits" / f"compositional_{s}.txt") for s in ("train", "val", "test")}
    assert all(lists.values())
    train = [graphs[v] for v in lists["train"]]
    assert not any(is_novel(g) for g in train)
    assert all(is_novel(graphs[v]) for s in ("val", "test") for v in lists[s])
    assert all(WORLD.split_of(int(v[5:])) == s for s, ids in lists.items() for v in ids)
    seen_colors = {o["color"] for g in train for o in g["objects"]}
    seen_shapes = {o["shape"] for g in train for o in g["objects"]}
    for color, shape in HELD_OUT_BINDINGS:  # each part of a held-out binding is seen in training, apart
        assert color in seen_colors and shape in seen_shapes
    seen_bindings = {(o["color"], o["shape"]) for g in train for o in g["objects"]}
    assert not seen_bindings & HELD_OUT_BINDINGS
    assert not {(g["events"][0]["predicate"], g["events"][0].get("speed")) for g in train} & HELD_OUT_ACTIONS


def test_split_lists_regroup_records_by_video(tiny_world: Path, tmp_path: Path) -> None:
    lists = {s: f"splits/compositional_{s}.txt" for s in ("train", "val", "test")}
    dm = VideoQADataModule(synthetic=WORLD, split_lists=lists, **SMALL)
    for split, name in lists.items():
        assert {r.video for r in dm.records[split]} == set(read_video_list(tiny_world / name))
    # MSR-VTT's 1k-A style: a 9k-like one-column CSV for training, the JSFusion CSV (";" copy) for val and test.
    (tmp_path / "train.9k.csv").write_text("video_id\n" + "".join(f"video{v}\n" for v in range(0, 30)))
    (tmp_path / "jsfusion.csv").write_text("key;vid_key;video_id;sentence\n"
                                           "ret30;msr30;video30;a caption\nret31;msr31;video31;another\n")
    assert read_video_list(tmp_path / "jsfusion.csv") == ["video30", "video31"]
    lists = {"train": str(tmp_path / "train.9k.csv"), "val": str(tmp_path / "jsfusion.csv"),
             "test": str(tmp_path / "jsfusion.csv")}
    dm = RetrievalDataModule(synthetic=WORLD, split_lists=lists, eval_captions="first", **SMALL)
    assert {r.video for r in dm.records["train"]} == {f"video{v}" for v in range(30)}  # train and val videos
    assert {r.video for r in dm.records["test"]} == {r.video for r in dm.records["val"]} == {"video30", "video31"}
    (tmp_path / "none.txt").write_text("video9999\n")
    with pytest.raises(DataNotFoundError, match=r"none.txt: none of its 1 video ids has a record"):
        VideoQADataModule(synthetic=WORLD, split_lists={"train": str(tmp_path / "none.txt")}, **SMALL)
    with pytest.raises(DataNotFoundError, match="split list not found"):
        VideoQADataModule(synthetic=WORLD, split_lists={"train": "splits/missing.txt"}, **SMALL)
