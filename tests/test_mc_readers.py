"""Multiple-choice readers beyond the embedded world: TGIF-QA Action/Transition (tab-separated, GIF videos)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from finsta_pl.data_modules import ClipConfig, LoaderConfig, MultipleChoiceDataModule
from finsta_pl.data_modules.multiple_choice import read_jsfusion_mc, read_tgif_mc
from finsta_pl.data_modules.video import decode_clip
from finsta_pl.errors import BadSampleError

HEADER = "gif_name\tquestion\ta1\ta2\ta3\ta4\ta5\tanswer\tvid_id\tkey\n"


def _gif(path: Path, frames: int = 12) -> None:
    images = [Image.fromarray(np.full((40, 56, 3), 15 * i, np.uint8)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=80, loop=0)


def test_gif_frames_decode_with_sorted_indices(tmp_path: Path) -> None:
    _gif(tmp_path / "a.gif")
    frames, indices = decode_clip(tmp_path / "a.gif", 4, 32)
    assert frames.shape == (4, 32, 32, 3) and list(indices) == sorted(indices)
    assert list(frames[:, 5, 5, 0]) == [15 * int(i) for i in indices]  # the frames asked for, in order


def test_tgif_action_reader_and_datamodule(tmp_path: Path) -> None:
    ann, videos = tmp_path / "tgif" / "dataset", tmp_path / "tgif" / "gifs"
    ann.mkdir(parents=True)
    videos.mkdir()
    rows = [("tumblr_abc_250", "what does the man do 3 times ?", "nod head", "FRAMEQAeatedly wave", "jump", "clap",
             "spin", 1, "ACTION1", 7),
            ("tumblr_def_250", 'what does the "girl" do ?', "run", "sit", "sing", "dance", "swim", 3, "ACTION2", 8)]
    text = HEADER + "".join("\t".join(map(str, r)) + "\n" for r in rows)
    for name in ("Train_action_question.csv", "Test_action_question.csv"):
        (ann / name).write_text(text)
    for r in rows:
        _gif(videos / f"{r[0]}.gif")
    records = read_tgif_mc(ann / "Train_action_question.csv")
    assert [(r.id, r.video, r.answer) for r in records] == [("7", "tumblr_abc_250", 1), ("8", "tumblr_def_250", 3)]
    assert records[0].options[1] == "what does the man do 3 times ? repeatedly wave"  # artefact undone
    assert records[1].options[0].startswith('what does the "girl" do ?')  # quotes are text in a TSV
    dm = MultipleChoiceDataModule(dataset="tgif_action", root=str(tmp_path / "tgif"), annotation_dir="dataset",
                                  video_dir="gifs", files={"val": "Test_action_question.csv"},
                                  clip=ClipConfig(num_frames=4), loader=LoaderConfig(batch_size=2, num_workers=0))
    dm.setup("fit")
    assert set(dm.datasets) == {"train", "val", "test"}
    sample = dm.datasets["val"][0]
    assert sample is not None and sample.frames.shape[0] == 4 and len(sample.texts) == 5
    assert sample.texts[1].graphs is not None  # each candidate has its own TSG/HSG


def test_multiple_choice_rows_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "MSR_MC_test.csv"
    path.write_text("key\tvid_key\ta1\ta2\tanswer\nmc1\tmsr7\ta dog runs\ta cat\t1\nmc2\tmsr8\ta dog\t\t0\n")
    with pytest.raises(BadSampleError, match=r"MSR_MC_test.csv:3: malformed multiple-choice row .*empty candidate"):
        read_jsfusion_mc(path)
    path.write_text("key\tvid_key\ta1\ta2\tanswer\nmc1\tmsr7\ta dog runs\ta cat\t5\n")
    with pytest.raises(BadSampleError, match=r":2: .*answer 5 outside 0..1"):
        read_jsfusion_mc(path)
