"""The readers against rows in each dataset's real shape (issue 24): the official column names and orders quoted
from the datasets' descriptions (docs DATASETS.md §4-§11), the rows written here.  One test per defect found
when real rows were run through ``data check`` and a one-step fit."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from tests.helpers.video_fixtures import write_ramp

from tests.helpers import REPO, TINY
from finsta_pl.data_modules import (ActionDataModule, ClipConfig, InferenceDataModule, LoaderConfig,
                                    MultipleChoiceDataModule, RetrievalDataModule, VideoQADataModule)
from finsta_pl.data_modules.multiple_choice import read_tgif_mc
from finsta_pl.data_modules.qa_formats import read_tgif_frameqa
from finsta_pl.data_modules.video import index_videos
from finsta_pl.errors import BadSampleError, DataNotFoundError
from finsta_pl.tools.data_check import main as data_check

SMALL = dict(clip=ClipConfig(num_frames=4, frame_size=32), loader=LoaderConfig(batch_size=2, num_workers=0),
             build_graphs=False)
FRAMEQA_HEADER = "gif_name\tquestion\tanswer\ttype\tvid_id\tkey\tdescription\n"
MC_HEADER = "gif_name\tquestion\ta1\ta2\ta3\ta4\ta5\tanswer\tvid_id\tkey\n"


def _tsv(*rows: tuple) -> str:
    return "".join("\t".join(map(str, r)) + "\n" for r in rows)


# 1. TGIF-QA ids: ``key`` numbers the GIF (several questions share it); ``vid_id`` the question.
def test_tgif_record_ids_are_per_question_not_per_gif(tmp_path: Path) -> None:
    frameqa = tmp_path / "Test_frameqa_question.csv"
    frameqa.write_text(FRAMEQA_HEADER + _tsv(
        ("tumblr_nab12xYzQ1abcdefo1_250", "what is the color of the shirt ?", "black", 2, "FRAMEQA4460", 87751,
         "a man in a black shirt is dancing ."),
        ("tumblr_nab12xYzQ1abcdefo1_250", "what is the man doing ?", "dancing", 0, "FRAMEQA4461", 87751,
         "a man in a black shirt is dancing .")))
    assert [r.id for r in read_tgif_frameqa(frameqa)] == ["FRAMEQA4460", "FRAMEQA4461"]
    transition = tmp_path / "Test_transition_question.csv"
    transition.write_text(MC_HEADER + _tsv(
        ("tumblr_abc_250", "what does the man do after nod ?", "jump", "sit", "run", "wave", "clap", 2, "TRANS101", 6022),
        ("tumblr_abc_250", "what does the man do before jump ?", "nod", "sit", "run", "wave", "clap", 0, "TRANS102", 6022)))
    assert [r.id for r in read_tgif_mc(transition)] == ["TRANS101", "TRANS102"]


def test_a_repeated_record_id_is_an_error_naming_the_split(tmp_path: Path) -> None:
    root = tmp_path / "tgif"
    (root / "dataset").mkdir(parents=True)
    (root / "gifs").mkdir()
    row = ("tumblr_abc_250", "what is it ?", "cat", 0, "FRAMEQA1", 5, "a cat .")
    (root / "dataset" / "Train_frameqa_question.csv").write_text(FRAMEQA_HEADER + _tsv(row, row))
    with pytest.raises(BadSampleError, match=r"record id 'FRAMEQA1' repeats in split 'train'"):
        VideoQADataModule(dataset="tgif_frameqa", root=str(root), annotation_dir="dataset", video_dir="gifs", **SMALL)


# 2. Tab-separated rows are checked for their field count.
def test_tgif_rows_with_a_missing_field_name_file_line_and_columns(tmp_path: Path) -> None:
    frameqa = tmp_path / "Train_frameqa_question.csv"
    frameqa.write_text(FRAMEQA_HEADER + _tsv(
        ("tumblr_a_250", "what is it ?", "cat", 0, "FRAMEQA1", 5, "a cat ."),
        ("tumblr_b_250", "how many dogs are there ?", 1, "FRAMEQA26835", 26835, "two dogs run .")))  # no answer
    with pytest.raises(BadSampleError, match=r"Train_frameqa_question.csv:3: 6 fields where 7 are expected "
                                             r"\(tab-separated gif_name, question, answer, type, vid_id, key, description\)"):
        read_tgif_frameqa(frameqa)
    action = tmp_path / "Train_action_question.csv"
    action.write_text(MC_HEADER + _tsv(("tumblr_a_250", "what does he do ?", "a", "b", "c", "d", "e", 1, "ACTION7")))
    with pytest.raises(BadSampleError, match=r"Train_action_question.csv:2: 9 fields where 10 are expected"):
        read_tgif_mc(action)


# 3. DiDeMo's release names: .mts, .3g2, a name ending in "." and one without any extension.
def test_didemo_videos_under_their_release_names_are_found(tmp_path: Path) -> None:
    root = tmp_path / "didemo"
    (root / "data").mkdir(parents=True)
    (root / "videos").mkdir()
    names = ["10096022@N04_3049633016_1a7abc6e6d.mts", "1234@N00_42_abc.3g2", "98765@N01_7_ff00aa.",
             "55555@N02_9_0123ab"]
    records = [{"annotation_id": k, "description": f"a person walks {k}", "video": name, "times": [[0, 1]] * 4,
                "dl_link": "x", "num_segments": 6} for k, name in enumerate(names)]
    for split in ("train", "val"):
        (root / "data" / f"{split}_data.json").write_text(json.dumps(records))
    for name in names:
        write_ramp(tmp_path / "clip.mp4", frames=20)
        shutil.move(tmp_path / "clip.mp4", root / "videos" / name)  # the content decides, not the name
    (root / "videos" / "notes.json").write_text("{}")  # not a video
    assert set(index_videos(root / "videos")) == {"10096022@N04_3049633016_1a7abc6e6d", "1234@N00_42_abc",
                                                  "98765@N01_7_ff00aa", "55555@N02_9_0123ab"}
    dm = RetrievalDataModule(dataset="didemo", root=str(root), annotation_dir="data", **SMALL)
    dm.setup("fit")
    assert [dm.datasets["val"][k].frames.shape for k in range(4)] == [(4, 32, 32, 3)] * 4


# 4. A split that fit needs is checked by data check too, naming the expected file and folder.
@pytest.mark.parametrize("config, dataset, missing", [
    ("how2qa_mcqa.yaml", "how2qa", "how2QA_train_release.csv"),
    ("tgif_mcqa.yaml", "tgif", "Train_action_question.csv")])
def test_data_check_stops_on_a_split_file_fit_needs(config: str, dataset: str, missing: str, tiny_world: Path,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(tiny_world / "datasets" / dataset, tmp_path / dataset, symlinks=True)
    annotation = next((tmp_path / dataset).rglob(missing))
    annotation.unlink()
    monkeypatch.setenv("FINSTA_PL_DATA_ROOT", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=rf"fit needs the train split, but the train split is read from "
                                                rf"{missing} in {annotation.parent}, which is not there"):
        data_check(["check", "--config", str(REPO / "experiments" / config), "--config", str(TINY),
                    "--report", str(tmp_path / "r.tsv")])


# 5. JSON syntax errors keep their position (DiDeMo's files are one line).
def test_json_errors_name_file_line_and_column(tmp_path: Path) -> None:
    root = tmp_path / "didemo"
    (root / "data").mkdir(parents=True)
    (root / "videos").mkdir()
    (root / "data" / "train_data.json").write_text('[{"annotation_id": 1, "description": "a dog runs", "vid')
    with pytest.raises(BadSampleError, match=r"train_data.json:1:52: not valid JSON \(Unterminated string starting "
                                             r"at, character 51"):
        RetrievalDataModule(dataset="didemo", root=str(root), annotation_dir="data", **SMALL)


# 6. Kinetics' official test CSV has no labels: unlabelled, not "outside the training vocabulary".
def test_unlabelled_kinetics_test_rows_are_reported_as_unlabelled(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ann, videos = tmp_path / "k400" / "annotations", tmp_path / "k400" / "videos" / "abseiling"
    ann.mkdir(parents=True)
    videos.mkdir(parents=True)
    body = "label,youtube_id,time_start,time_end,split,is_cc\nabseiling,0wR5jVB-WPk,417,427,train,0\n"
    (ann / "kinetics_train.csv").write_text(body)
    (ann / "kinetics_val.csv").write_text(body.replace("train,0", "val,0"))
    (ann / "kinetics_test.csv").write_text("youtube_id,time_start,time_end,split\n"
                                           "0wR5jVB-WPk,417,427,test\n0wR5jVB-WPk,0,10,test\n")
    write_ramp(videos / "0wR5jVB-WPk_000417_000427.mp4")
    dm = ActionDataModule(dataset="kinetics400", root=str(tmp_path / "k400"), annotation_dir="annotations", **SMALL)
    with caplog.at_level(logging.WARNING):
        dm.setup("test")
    assert "2 of 2 test records carry no class (the release does not label this split)" in caplog.text
    assert "outside the training vocabulary" not in caplog.text


# 7. Paragraphs get a budget long enough for them, and one warning per split gives the share cut.
def test_paragraph_default_length_and_one_truncation_warning_per_split(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "anet"
    (root / "captions").mkdir(parents=True)
    (root / "videos").mkdir()
    sentence = " A man in a red shirt walks across the busy street while talking on his phone and waving."
    def entry(n: int) -> dict:
        return {"duration": 30.0, "timestamps": [[0, 5]] * n, "sentences": [sentence] * n}
    # 5 sentences: 90 tokens, over the old 64 and within 128; 8 sentences: 144 tokens, over 128.
    data = {"v_a": entry(5), "v_b": entry(8), "v_c": entry(1)}
    for name in ("train.json", "val_1.json"):
        (root / "captions" / name).write_text(json.dumps(data))
    for key in data:
        write_ramp(root / "videos" / f"{key}.mp4", frames=12)
    dm = RetrievalDataModule(dataset="activitynet", root=str(root), annotation_dir="captions", **SMALL)
    assert dm.max_text_len == 128
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    warnings = [r.getMessage() for r in caplog.records if "longer than max_text_len" in r.getMessage()]
    assert len(warnings) == 2 and "1 of 3 val texts (33.3%) are longer than max_text_len=128" in warnings[1]


# 8. Missing videos: the folder searched and the names tried, per split and per id.
def test_data_check_names_folder_and_names_tried_for_missing_videos(tiny_world: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    shutil.copytree(tiny_world / "datasets" / "activitynet", tmp_path / "activitynet", symlinks=False)
    gone = sorted((tmp_path / "activitynet" / "videos").glob("v_*.mp4"))[0]
    gone.unlink()
    monkeypatch.setenv("FINSTA_PL_DATA_ROOT", str(tmp_path))
    report = tmp_path / "report.tsv"
    status = data_check(["check", "--config", str(REPO / "experiments" / "activitynet_retrieval.yaml"),
                         "--config", str(TINY), "--report", str(report)])
    out = capsys.readouterr().out
    assert status == 1 and f"videos searched: {tmp_path / 'activitynet' / 'videos'} and every sub-folder" in out
    rows = [line.split("\t") for line in report.read_text().splitlines()[1:]]
    assert rows and all(r[2] == gone.stem for r in rows)
    assert rows[0][3] == f"no video file: tried {gone.stem}[.<ext>], {gone.stem[2:]}[.<ext>]"


# 9. VIOLIN's clips are cut from the source videos by their span (README: "use the span information").
def test_violin_clips_are_cut_from_their_source_video_by_span(tmp_path: Path) -> None:
    root = tmp_path / "violin"
    (root / "videos").mkdir(parents=True)
    annotation = {
        "Hn4Vw2Q_abc_clip_001_003": {"file": "Hn4Vw2Q_abc_clip_001_003", "source": "Hn4Vw2Q_abc", "span": [1.0, 3.0],
                                     "split": "train", "statement": [["The man hugs the girl.", "The man slaps her."]],
                                     "sub": [["You came back.", 1.2, 2.9]]},
        "precut": {"file": "precut", "source": "other", "span": [0, 2], "split": "train",
                   "statement": [["She smiles.", "She yells."]], "sub": []}}
    (root / "violin_annotation.json").write_text(json.dumps(annotation))
    write_ramp(root / "videos" / "Hn4Vw2Q_abc.mp4")  # the source video only, 4 s
    write_ramp(root / "videos" / "precut.mp4", frames=12)  # a clip already cut: decoded whole
    dm = InferenceDataModule(dataset="violin", root=str(root), annotation="violin_annotation.json", **SMALL)
    dm.setup("fit")
    specs = {s.video: s for s in dm.datasets["train"].specs}
    assert specs["Hn4Vw2Q_abc"].window == (1.0, 3.0) and specs["precut"].window is None
    sample = dm.datasets["train"][0]
    assert sample.id == "Hn4Vw2Q_abc@1-3" and 6 * 10 - 8 <= int(sample.frames[0, 16, 16, 0]) <= 6 * 30


def test_every_table_reader_checks_field_counts(tmp_path: Path) -> None:
    """How2QA (no header, quoted) and the MSRVTT-MC table (header) name file:line and their columns."""
    root = tmp_path / "how2qa"
    (root / "ann").mkdir(parents=True)
    (root / "videos").mkdir()
    (root / "ann" / "how2QA_train_release.csv").write_text("NOuQuofjk44,[7.2:18.0],3 bowls,5 bowls,7 bowls,1 bowl\n")
    with pytest.raises(BadSampleError, match=r"how2QA_train_release.csv:1: 6 fields where 7 are expected \(comma-"
                                             r"separated youtube_id, \[start:end\], wrong_1"):
        MultipleChoiceDataModule(dataset="how2qa", root=str(root), annotation_dir="ann", **SMALL)
