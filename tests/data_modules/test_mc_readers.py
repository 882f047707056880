"""Multiple-choice readers beyond the embedded world: TGIF-QA Action/Transition (tab-separated, GIF videos)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.helpers.video_fixtures import write_ramp

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
    assert [(r.id, r.video, r.answer) for r in records] == [("ACTION1", "tumblr_abc_250", 1), ("ACTION2", "tumblr_def_250", 3)]
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
    header = "key\tvid_key\ta1\ta2\ta3\ta4\ta5\tanswer\n"
    path.write_text(header + "mc1\tmsr7\ta dog runs\ta cat\tb\tc\td\t1\nmc2\tmsr8\ta dog\t\tb\tc\td\t0\n")
    with pytest.raises(BadSampleError, match=r"MSR_MC_test.csv:3: malformed multiple-choice row .*empty candidate"):
        read_jsfusion_mc(path)
    path.write_text(header + "mc1\tmsr7\ta dog runs\ta cat\tb\tc\td\t5\n")
    with pytest.raises(BadSampleError, match=r":2: .*answer 5 outside 0..4"):
        read_jsfusion_mc(path)


def test_how2qa_csv_shuffles_the_last_column_answer_and_keeps_the_window(tmp_path: Path) -> None:
    root = tmp_path / "how2qa"
    (root / "ann").mkdir(parents=True)
    (root / "videos").mkdir()
    rows = ['NOuQuofjk44,[1.0:3.0],3 bowls,5 bowls,7 bowls,how many bowls are on the table?,1 bowl\n',
            'NOuQuofjk44,[0:2.5],"red, mostly",blue,green,"what colour is the ""big"" bowl?",white\n']
    (root / "ann" / "how2QA_train_release.csv").write_text("".join(rows))
    (root / "ann" / "how2QA_val_release.csv").write_text("".join(rows[::-1]))
    write_ramp(root / "videos" / "NOuQuofjk44.mp4")
    dm = MultipleChoiceDataModule(dataset="how2qa", root=str(root), annotation_dir="ann",
                                  clip=ClipConfig(num_frames=4, frame_size=32),
                                  loader=LoaderConfig(batch_size=2, num_workers=0), build_graphs=False)
    first, second = dm.records["train"]
    assert first.options[first.answer] == "how many bowls are on the table? 1 bowl"
    assert second.options[second.answer] == 'what colour is the "big" bowl? white'
    assert 'what colour is the "big" bowl? red, mostly' in second.options  # quoted commas stay in the text
    assert (first.window, second.window) == ((1.0, 3.0), (0.0, 2.5))
    assert dm.records["val"][1].options == first.options  # the same record shuffles the same way anywhere
    positions = {r.answer for r in read_how2qa_many(tmp_path)}
    assert len(positions) > 1  # the answer is not always where the file puts it
    dm.setup("fit")
    sample = dm.datasets["train"][0]
    assert sample is not None and len(sample.texts) == 4 and sample.id == "how2QA_train_release:1"
    (root / "ann" / "how2QA_val_release.csv").write_text("NOuQuofjk44,[3:1],a,b,c,q?,d\n")
    with pytest.raises(BadSampleError, match=r"how2QA_val_release.csv:1: malformed How2QA row .*ends before"):
        MultipleChoiceDataModule(dataset="how2qa", root=str(root), annotation_dir="ann")


def read_how2qa_many(tmp_path: Path) -> list:
    from finsta_pl.data_modules.multiple_choice import read_how2qa_csv

    path = tmp_path / "many.csv"
    path.write_text("".join(f"vid{k},[0:1],w1,w2,w3,question {k}?,right\n" for k in range(12)))
    return read_how2qa_csv(path)
