"""Time windows decoded by seeking, and the action readers: Kinetics-400 (trimmed clips and full videos with a
window, the unlabelled test CSV) and Something-Something v2 (templates, label map, webm)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.video_fixtures import write_ramp

from finsta_pl.data_modules import ActionDataModule, ClipConfig, LoaderConfig
from finsta_pl.data_modules.action import read_kinetics_csv
from finsta_pl.data_modules.video import decode_clip
from finsta_pl.errors import BadSampleError

SMALL = dict(clip=ClipConfig(num_frames=4, frame_size=32), loader=LoaderConfig(batch_size=2, num_workers=0),
             build_graphs=False)


def test_a_window_is_decoded_inside_its_seconds(tmp_path: Path) -> None:
    write_ramp(tmp_path / "long.mp4")
    frames, indices = decode_clip(tmp_path / "long.mp4", 4, 32, window=(1.0, 2.0))
    assert list(indices) == [11, 13, 16, 18]  # segment centres of frames 10..19
    assert np.abs(frames[:, 16, 16, 0].astype(int) - 6 * indices).max() <= 8  # those frames, not others
    _, tail = decode_clip(tmp_path / "long.mp4", 4, 32, window=(3.5, 9.0))  # clipped at the end
    assert tail.min() >= 35 and tail.max() == 39
    rng = np.random.default_rng(0)
    _, random = decode_clip(tmp_path / "long.mp4", 4, 32, rng=rng, window=(1.0, 2.0))
    assert 10 <= random.min() and random.max() < 20 and list(random) == sorted(random)
    with pytest.raises(BadSampleError, match=r"long.mp4: window \[5.0, 6.0\] s starts after the video's end"):
        decode_clip(tmp_path / "long.mp4", 4, 32, window=(5.0, 6.0))


def test_kinetics_trimmed_clips_full_videos_and_unlabelled_test(tmp_path: Path) -> None:
    ann, videos = tmp_path / "k400" / "annotations", tmp_path / "k400" / "videos"
    ann.mkdir(parents=True)
    rows = [("abseiling", "0wR5jVB-WPk", 0, 2), ("air drumming", "0wR5jVB-WPk", 2, 4),
            ("passing American football (in game)", "x'Y_z-1", 1, 3)]
    body = "label,youtube_id,time_start,time_end,split,is_cc\n" + "".join(
        f'"{label}",{yid},{a},{b},train,0\n' for label, yid, a, b in rows)
    (ann / "kinetics_train.csv").write_text(body)
    (ann / "kinetics_val.csv").write_text(body)
    (ann / "kinetics_test.csv").write_text("youtube_id,time_start,time_end,split\n0wR5jVB-WPk,0,2,test\n")
    for label, yid, a, b in rows:  # mmaction2's layout: <label folder>/<id>_<start>_<end>.mp4
        (videos / label.replace(" ", "_")).mkdir(parents=True, exist_ok=True)
        write_ramp(videos / label.replace(" ", "_") / f"{yid}_{a:06d}_{b:06d}.mp4", frames=20)
    dm = ActionDataModule(dataset="kinetics400", root=str(tmp_path / "k400"), annotation_dir="annotations", **SMALL)
    dm.setup("fit")
    assert dm.classes == ["abseiling", "air drumming", "passing American football (in game)"]
    assert [dm.datasets["val"][k].targets["label"] for k in range(3)] == [0, 1, 2]
    assert [r.label for r in dm.records["test"]] == [""]  # kept for predict, never scored as right
    # The same CSV over full videos: one file per YouTube id, each sample seeks to its window.
    full = tmp_path / "full"
    (full / "videos").mkdir(parents=True)
    (full / "annotations").mkdir()
    (full / "annotations" / "kinetics_train.csv").write_text(body)
    write_ramp(full / "videos" / "0wR5jVB-WPk.mp4")
    write_ramp(full / "videos" / "x'Y_z-1.mp4")
    dm = ActionDataModule(dataset="kinetics400", root=str(full), annotation_dir="annotations", windows=True, **SMALL)
    dm.setup("fit")
    windows = [s.window for s in dm.datasets["train"].specs]
    assert windows == [(0.0, 2.0), (2.0, 4.0), (1.0, 3.0)]
    dm.datasets["train"].train = False
    second = dm.datasets["train"][1]
    assert second is not None and second.id == "0wR5jVB-WPk_2_4"
    assert 6 * 20 - 8 <= int(second.frames[0, 16, 16, 0]) <= 6 * 40  # frames from seconds 2..4, not from 0


def test_kinetics_rows_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "kinetics_train.csv"
    path.write_text("label,youtube_id,time_start,time_end\nabseiling,a,0,10\nabseiling,b,10,4\n")
    with pytest.raises(BadSampleError, match=r"kinetics_train.csv:3: malformed Kinetics row .*time_end 4"):
        read_kinetics_csv(path)


def test_ssv2_classes_follow_the_label_map_and_ids_stay_strings(tmp_path: Path) -> None:
    root = tmp_path / "ssv2"
    (root / "labels").mkdir(parents=True)
    (root / "videos").mkdir()
    labels = {"Holding something next to something": "1", "Pushing something from left to right": "0",
              "Putting something on a surface": "2"}
    train = [{"id": "78687", "label": "holding potato next to vicks vaporub bottle",
              "template": "Holding [something] next to [something]", "placeholders": ["potato", "vicks"]},
             {"id": "00042", "label": "pushing a pen from left to right",
              "template": "Pushing [something] from left to right", "placeholders": ["a pen"]}]
    (root / "labels" / "something-something-v2-labels.json").write_text(json.dumps(labels))
    (root / "labels" / "something-something-v2-train.json").write_text(json.dumps(train))
    (root / "labels" / "something-something-v2-validation.json").write_text(json.dumps(train[::-1]))
    for item in train:
        write_ramp(root / "videos" / f"{item['id']}.webm", frames=12, fourcc="VP80")
    dm = ActionDataModule(dataset="ssv2", root=str(root), annotation_dir="labels", **SMALL)
    dm.setup("fit")
    assert dm.classes == ["Pushing something from left to right", "Holding something next to something",
                          "Putting something on a surface"]
    assert [(r.id, r.video) for r in dm.records["val"]] == [("00042", "00042"), ("78687", "78687")]  # no int()
    sample = dm.datasets["val"][0]
    assert sample is not None and sample.targets["label"] == 0 and sample.frames.shape == (4, 32, 32, 3)
    assert dm.datasets["val"][1].targets["label"] == 1
