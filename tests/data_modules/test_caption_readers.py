"""Retrieval and captioning readers beyond the embedded world, each loaded through its DataModule from a fixture
in the official schema: DiDeMo (paragraphs, 5-second moments, original extensions, missing videos), LSMDC
(no header, no quoting, repeated clip ids, dotted times) and YouCook2 (segments of full videos or pre-cut clips)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.video_fixtures import write_ramp

from finsta_pl.batch import BadSample
from finsta_pl.data_modules import CaptioningDataModule, ClipConfig, LoaderConfig, RetrievalDataModule
from finsta_pl.data_modules.caption_formats import lsmdc_seconds, read_lsmdc
from finsta_pl.errors import BadSampleError

SMALL = dict(clip=ClipConfig(num_frames=4, frame_size=32), loader=LoaderConfig(batch_size=2, num_workers=0),
             build_graphs=False)


def test_didemo_paragraphs_moments_and_original_extensions(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "didemo"
    (root / "data").mkdir(parents=True)
    (root / "videos" / "all").mkdir(parents=True)
    a, b, gone = "12345678@N02_4253489686_265c3c8051.mov", "999@N00_1_abc.m4v", "1@N01_2_x.avi"
    train = [{"annotation_id": 1, "description": "the dog jumps into the water", "video": a,
              "times": [[1, 2], [1, 1], [1, 2], [2, 2]], "dl_link": "x", "num_segments": 6},
             {"annotation_id": 2, "description": "  ", "video": a, "times": [[0, 0]], "num_segments": 6},
             {"annotation_id": 3, "description": "café owner waves", "video": a, "times": [[5, 5]], "num_segments": 6},
             {"annotation_id": 4, "description": "a kid runs", "video": b, "times": [[0, 3], [0, 3]], "num_segments": 5},
             {"annotation_id": 5, "description": "a car", "video": gone, "times": [[0, 1]], "num_segments": 5}]
    (root / "data" / "train_data.json").write_text(json.dumps(train))
    (root / "data" / "val_data.json").write_text(json.dumps(train[3:]))
    write_ramp(root / "videos" / "all" / a)  # the original extension, as CLIP4Clip expects
    write_ramp(root / "videos" / "all" / "999@N00_1_abc.mp4")  # a transcode that kept the name's stem
    dm = RetrievalDataModule(dataset="didemo", root=str(root), annotation_dir="data", **SMALL)
    records = {r.video: r for r in dm.records["train"]}
    assert records[a].caption == "the dog jumps into the water café owner waves"  # empty one left out
    assert records[a].segments == ((5.0, 15.0), (25.0, 30.0))  # most common span; clipped at 30 s
    assert records[b].segments == ((0.0, 20.0),)
    with caplog.at_level("WARNING"):
        dm.setup("fit")
    # the missing video is counted, not fatal, and the message names the split, its file, the folder and names
    assert "1 of 2 records of the val split (val_data.json) have no video file under" in caplog.text
    assert "it tried 1@N01_2_x.avi[.<ext>], 1@N01_2_x[.<ext>]" in caplog.text
    assert dm.datasets["val"][0] is not None and dm.datasets["val"][0].id == b
    bad = dm.datasets["val"][1]  # skipped as a bad sample (on_bad_sample: skip), named with its reason
    assert isinstance(bad, BadSample) and bad.id == "1@N01_2_x.avi" and "no video file" in bad.reason


def test_lsmdc_lines_without_header_or_quoting(tmp_path: Path) -> None:
    root = tmp_path / "lsmdc"
    (root / "ann").mkdir(parents=True)
    clip = "1012_Unbreakable_00.05.41.120-00.05.44.090"
    lines = [f'{clip}\t00.05.41.120\t00.05.44.090\t00.05.40.980\t00.05.44.210\tSOMEONE looks out of the "train" window.',
             f"{clip}\t00.05.41.120\t00.05.44.090\t00.05.40.980\t00.05.44.210\tHe turns.",
             "3009_BATTLE_LOS_ANGELES_00.03.07.170-00.03.09.675\t00.03.07.170\t00.03.09.675\t0.0.0.0\t0.0.0.0\tSOMEONE runs."]
    (root / "ann" / "LSMDC16_annos_training.csv").write_text("\n".join(lines) + "\n")
    (root / "ann" / "LSMDC16_challenge_1000_publictect.csv").write_text(lines[2] + "\n")
    (root / "videos" / "1012_Unbreakable").mkdir(parents=True)
    (root / "videos" / "3009_BATTLE_LOS_ANGELES").mkdir(parents=True)
    write_ramp(root / "videos" / "1012_Unbreakable" / f"{clip}.avi", fourcc="MJPG")
    write_ramp(root / "videos" / "3009_BATTLE_LOS_ANGELES" / "3009_BATTLE_LOS_ANGELES_00.03.07.170-00.03.09.675.avi",
               fourcc="MJPG")
    dm = RetrievalDataModule(dataset="lsmdc", root=str(root), annotation_dir="ann", **SMALL)
    train = dm.records["train"]
    assert len(train) == 3 and train[0].caption == 'SOMEONE looks out of the "train" window.'  # first row kept
    assert train[0].video == train[1].video and train[0].id != train[1].id  # clip ids repeat in train
    assert train[0].segments == ((341.12, 344.09),) and lsmdc_seconds("01.00.00.500") == 3600.5
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 3 and len(dm.datasets["test"]) == 1
    assert dm.datasets["test"][0] is not None
    (root / "ann" / "LSMDC16_annos_val.csv").write_text(lines[0] + "\nbroken\tline\n")
    with pytest.raises(BadSampleError, match=r"LSMDC16_annos_val.csv:2: 2 fields where 6 are expected \(tab-separated clip_id, "):
        read_lsmdc(root / "ann")


def test_youcook2_segments_of_full_videos_or_precut_clips(tmp_path: Path) -> None:
    root = tmp_path / "youcook2"
    (root / "ann").mkdir(parents=True)
    (root / "raw_videos" / "validation" / "212").mkdir(parents=True)
    database = {
        "9GX8f5EwwE4": {"annotations": [{"id": 0, "segment": [0, 1], "sentence": "cut the onion in half and dice"},
                                        {"id": 1, "segment": [2, 3], "sentence": "fry the onion"}],
                        "duration": 4.0, "recipe_type": "212", "subset": "validation", "video_url": "u"},
        "iuQjb1-WAzs": {"annotations": [{"id": 0, "segment": [1, 9], "sentence": "add salt"}],
                        "duration": 3.0, "recipe_type": "101", "subset": "training", "video_url": "u"},
        "hidden": {"annotations": [], "duration": 9.0, "recipe_type": "1", "subset": "testing", "video_url": "u"}}
    (root / "ann" / "youcookii_annotations_trainval.json").write_text(json.dumps({"database": database}))
    write_ramp(root / "raw_videos" / "validation" / "212" / "9GX8f5EwwE4.mp4")
    write_ramp(root / "raw_videos" / "iuQjb1-WAzs_0.mp4", frames=12)  # a pre-cut clip (VALUE's naming)
    dm = CaptioningDataModule(dataset="youcook2", root=str(root), annotation_dir="ann", video_dir="raw_videos",
                              **SMALL)
    assert [r.id for r in dm.records["val"]] == ["9GX8f5EwwE4_0", "9GX8f5EwwE4_1"]
    assert dm.records["train"][0].window == (1.0, 3.0)  # clipped to the duration
    assert dm.records["test"] == dm.records["val"]  # validation serves as test
    dm.setup("fit")
    val = dm.datasets["val"]
    assert [(s.id, s.video, s.window) for s in val.specs] == [("9GX8f5EwwE4_0", "9GX8f5EwwE4", (0.0, 1.0)),
                                                             ("9GX8f5EwwE4_1", "9GX8f5EwwE4", (2.0, 3.0))]
    assert dm.datasets["train"].specs[0].video == "iuQjb1-WAzs_0" and dm.datasets["train"].specs[0].window is None
    first, second = val[0], val[1]
    assert first is not None and second is not None
    assert int(first.frames[:, 16, 16, 0].max()) < int(second.frames[:, 16, 16, 0].min())  # seconds 0-1 vs 2-3


def test_msrvtt_1ka_uses_the_training_list_and_the_jsfusion_captions(tmp_path: Path) -> None:
    root = tmp_path / "msrvtt"
    (root / "msrvtt_data").mkdir(parents=True)
    (root / "videos" / "all").mkdir(parents=True)
    videos = [{"video_id": f"video{v}", "split": "train" if v < 3 else "test"} for v in range(5)]
    sentences = [{"sen_id": k, "video_id": f"video{k % 5}", "caption": f"caption {k}"} for k in range(10)]
    (root / "msrvtt_data" / "MSRVTT_data.json").write_text(json.dumps({"videos": videos, "sentences": sentences}))
    (root / "msrvtt_data" / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\nvideo3\n")
    (root / "msrvtt_data" / "MSRVTT_JSFUSION_test.csv").write_text(
        "key;vid_key;video_id;sentence\nret4;msr4;video4;a child runs across a grassy field\nret2;msr2;video2;x\n")
    for v in range(5):
        write_ramp(root / "videos" / "all" / f"video{v}.mp4", frames=12)
    dm = RetrievalDataModule(dataset="msrvtt", format="msrvtt_1ka_9k", root=str(root), annotation_dir="msrvtt_data",
                             **SMALL)
    assert {r.video for r in dm.records["train"]} == {"video0", "video1", "video3"}  # a test video in 9k: as listed
    assert [(r.id, r.video, r.caption) for r in dm.records["test"]] == [
        ("ret4", "video4", "a child runs across a grassy field"), ("ret2", "video2", "x")]
    dm.setup("fit")
    assert [len(s.texts) for s in dm.datasets["val"].specs] == [1, 1]  # one caption per test video
