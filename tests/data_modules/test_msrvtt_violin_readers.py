"""MSR-VTT (official JSON), MSRVTT-QA, MSRVTT-MC and VIOLIN through their DataModules, from fixtures written
here in the official schema, with their traps: ``validate`` split names, Unicode, empty captions, ids with
prefixes, answers outside the vocabulary, statements grouped per clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers.video_fixtures import write_ramp

from finsta_pl.data_modules import (ClipConfig, InferenceDataModule, LoaderConfig, MultipleChoiceDataModule,
                                    RetrievalDataModule, VideoQADataModule)
from finsta_pl.errors import BadSampleError

SMALL = dict(clip=ClipConfig(num_frames=4, frame_size=32), loader=LoaderConfig(batch_size=2, num_workers=0),
             build_graphs=False)


def _videos(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_ramp(folder / f"{name}.mp4", frames=12)


def test_msrvtt_official_split_names_unicode_and_empty_captions(tmp_path: Path) -> None:
    root = tmp_path / "msrvtt"
    (root / "annotation").mkdir(parents=True)
    videos = [{"id": v, "video_id": f"video{v}", "category": 0, "url": "u", "start time": 0.0, "end time": 1.0,
               "split": split} for v, split in ((0, "train"), (1, "train"), (2, "validate"))]
    sentences = [{"sen_id": 0, "video_id": "video0", "caption": "a man is driving a red car"},
                 {"sen_id": 1, "video_id": "video1", "caption": "a man is driving a red car"},  # duplicate text
                 {"sen_id": 2, "video_id": "video2", "caption": "une crêpe is flipped — café style"}]
    (root / "annotation" / "train_val_videodatainfo.json").write_text(json.dumps({"videos": videos, "sentences": sentences}))
    _videos(root / "videos", ["video0", "video1", "video2"])
    dm = RetrievalDataModule(dataset="msrvtt", root=str(root), annotation_dir="annotation", **SMALL)
    assert set(dm.records) == {"train", "val"}  # "validate" mapped explicitly
    assert dm.records["val"][0].caption == "une crêpe is flipped — café style"
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 2 and len(dm.datasets["val"][0].texts[0].ids) > 0
    sentences.append({"sen_id": 7, "video_id": "video0", "caption": "   "})
    (root / "annotation" / "train_val_videodatainfo.json").write_text(json.dumps({"videos": videos, "sentences": sentences}))
    with pytest.raises(BadSampleError, match=r"train_val_videodatainfo.json: .*empty caption \(sentence 7 of video0\)"):
        RetrievalDataModule(dataset="msrvtt", root=str(root), annotation_dir="annotation", **SMALL)


def test_msrvtt_qa_ids_and_answers_outside_the_vocabulary(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "msrvtt"
    (root / "msrvtt_qa").mkdir(parents=True)
    train = [{"answer": "Couch", "category_id": 14, "id": 158581, "question": "what are three people sitting on?",
              "video_id": 0}, {"answer": "dog", "category_id": 0, "id": 3, "question": "what runs?", "video_id": 1}]
    val = [{"answer": "zebra", "category_id": 0, "id": 9, "question": "what is striped?", "video_id": 1}]
    (root / "msrvtt_qa" / "train_qa.json").write_text(json.dumps(train))
    (root / "msrvtt_qa" / "val_qa.json").write_text(json.dumps(val))
    _videos(root / "videos", ["video0", "video1"])
    dm = VideoQADataModule(dataset="msrvtt_qa", root=str(root), max_answers=1, **SMALL)
    assert [(r.id, r.video, r.answer) for r in dm.records["train"]] == [("158581", "video0", "couch"), ("3", "video1", "dog")]
    with caplog.at_level("WARNING"):
        dm.setup("fit")
    assert "1 of 2 train records have their answer outside the training vocabulary; they are left out of training" in caplog.text
    assert "1 of 1 val records have their answer outside the training vocabulary; they are counted wrong" in caplog.text
    assert len(dm.datasets["train"]) == 1 and dm.datasets["val"][0].targets["label"] == -1


def test_msrvtt_mc_through_its_datamodule(tmp_path: Path) -> None:
    root = tmp_path / "msrvtt"
    (root / "msrvtt_mc").mkdir(parents=True)
    (root / "msrvtt_mc" / "MSR_MC_test.csv").write_text(
        "key\tvid_key\ta1\ta2\ta3\ta4\ta5\tanswer\n"
        "mc12\tmsr7021\ta cat sleeps on a sofa\ta chef slices onions\ta man plays tennis\ta band plays\ta car drives\t2\n")
    _videos(root / "videos", ["video7021"])
    dm = MultipleChoiceDataModule(dataset="msrvtt_mc", root=str(root), **SMALL)
    dm.setup("test")
    assert set(dm.datasets) == {"test"}  # the release is test-only
    sample = dm.datasets["test"][0]
    assert sample.id == "mc12" and sample.targets == {"label": 2, "index": 0} and len(sample.texts) == 5


def test_violin_statements_grouped_per_clip(tmp_path: Path) -> None:
    root = tmp_path / "violin"
    root.mkdir()
    annotation = {
        "Hn4Vw2Q_abc_clip_000_040": {"file": "Hn4Vw2Q_abc_clip_000_040", "source": "Hn4Vw2Q_abc", "split": "train",
                                     "statement": [["The man hugs the girl.", "The man slaps the girl."],
                                                   ["She smiles at him.", "She yells at him."]],
                                     "sub": [["You came back.", 1.2, 2.9], ["Yes.", 3.0, 3.5]]},
        "x_clip_001": {"file": "x_clip_001", "source": "x", "split": "validate",
                       "statement": [["They leave together.", "They leave separately."]], "sub": []}}
    (root / "violin_annotation.json").write_text(json.dumps(annotation))
    _videos(root / "videos", ["Hn4Vw2Q_abc_clip_000_040", "x_clip_001"])
    dm = InferenceDataModule(dataset="violin", root=str(root), annotation="violin_annotation.json", **SMALL)
    dm.setup("fit")
    assert set(dm.datasets) == {"train", "val"}
    sample = dm.datasets["train"][0]
    assert sample.id == "Hn4Vw2Q_abc_clip_000_040" and len(sample.texts) == 4  # decoded once for its statements
    assert [t.targets["label"] for t in sample.texts] == [1, 0, 1, 0]
    assert dm.records["train"][0].subtitle_text == "You came back. Yes."
    assert [(s.start, s.end) for s in dm.records["train"][0].subtitles] == [(1.2, 2.9), (3.0, 3.5)]  # times kept
    annotation["x_clip_001"]["statement"] = [["", "x"]]
    (root / "violin_annotation.json").write_text(json.dumps(annotation))
    with pytest.raises(BadSampleError, match=r"violin_annotation.json: clip 'x_clip_001' is malformed .*empty statement"):
        InferenceDataModule(dataset="violin", root=str(root), annotation="violin_annotation.json", **SMALL)


def test_violin_subtitles_in_time_order_and_lavis_spans_decoded_as_windows(tmp_path: Path) -> None:
    """Subtitle entries keep their times and are read in time order; LAVIS's list gives each clip its span
    in a longer video, decoded as a window (one sample per (video, span), one decode for its statements)."""
    root = tmp_path / "violin"
    root.mkdir()
    annotation = {"c1": {"file": "c1", "split": "train", "statement": [["A man sits.", "A man runs."]],
                         "sub": [["Later.", 5.0, 6.0], ["First.", 0.5, 1.0], ["", 2.0, 3.0]]}}
    (root / "violin_annotation.json").write_text(json.dumps(annotation))
    _videos(root / "videos", ["c1"])
    dm = InferenceDataModule(dataset="violin", root=str(root), annotation="violin_annotation.json", **SMALL)
    assert dm.records["train"][0].subtitle_text == "First. Later."  # blank cue dropped, time order
    assert dm.records["train"][0].span is None
    lavis = [{"video_path": "clips/src1.mp4", "start_time": 0.0, "end_time": 1.5, "statement": "A man sits.",
              "label": "correct", "source": "s", "instance_id": "i0"},
             {"video_path": "clips/src1.mp4", "start_time": 0.0, "end_time": 1.5, "statement": "A man runs.",
              "label": "wrong", "source": "s", "instance_id": "i1"},
             {"video_path": "clips/src1.mp4", "start_time": 2.0, "end_time": 3.5, "statement": "Ça tourne.",
              "label": "correct", "source": "s", "instance_id": "i2"}]
    (root / "violin_train.json").write_text(json.dumps(lavis), encoding="utf-8")
    (root / "violin_val.json").write_text(json.dumps(lavis[:1]))
    write_ramp(root / "videos" / "src1.mp4", frames=40)
    dm = InferenceDataModule(dataset="violin", root=str(root), format="lavis",
                             annotation=["violin_train.json", "violin_val.json"], **SMALL)
    dm.setup("fit")
    assert [r.label for r in dm.records["train"]] == [1, 0, 1] and len(dm.records["val"]) == 1
    train = dm.datasets["train"]
    assert [train[i].id for i in range(len(train))] == ["src1@0-1.5", "src1@2-3.5"]
    assert [len(train[i].texts) for i in range(len(train))] == [2, 1]
    # The ramp's grey level tells the source frame: the second clip is decoded from 2 s on (frame 20 at 10 fps).
    assert train[1].frames.mean() > train[0].frames.mean() + 60
    lavis[0]["end_time"] = 0.0
    (root / "violin_train.json").write_text(json.dumps(lavis))
    with pytest.raises(BadSampleError, match=r"violin_train.json: record 0 is malformed .*positive length"):
        InferenceDataModule(dataset="violin", root=str(root), format="lavis", annotation="violin_train.json", **SMALL)
