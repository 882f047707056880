"""Data pipeline: frame sampling, decoding, the MSRVTT-QA reader, bad samples, baselines, collation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from finsta_pl.data_modules.msrvtt_qa import AnswerVocab, QARecord, prior_baselines, read_qa_file
from finsta_pl.data_modules.video import decode_clip, sample_indices
from finsta_pl.errors import BadSampleError
from finsta_pl.text import WordVocab, char_to_token_spans


def test_sample_indices_sorted_in_range_and_seeded() -> None:
    idx = sample_indices(16, 8)
    assert idx.tolist() == [1, 3, 5, 7, 9, 11, 13, 15]
    r1 = sample_indices(100, 8, np.random.default_rng([0, 1, 5]))
    r2 = sample_indices(100, 8, np.random.default_rng([0, 1, 5]))
    assert np.array_equal(r1, r2) and np.all(np.diff(r1) > 0) and r1.max() < 100
    assert sample_indices(3, 8).tolist() == sorted(sample_indices(3, 8).tolist())  # short video repeats frames


def test_decode_generated_clip(tiny_world: Path) -> None:
    frames, idx = decode_clip(tiny_world / "videos" / "video0.mp4", 4, size=32)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8 and len(idx) == 4


def test_decode_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(BadSampleError, match="missing.mp4: video file not found"):
        decode_clip(tmp_path / "missing.mp4", 4)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(BadSampleError, match="broken.mp4: cannot decode"):
        decode_clip(bad, 4)


def test_read_qa_file_and_vocab(tmp_path: Path) -> None:
    f = tmp_path / "train_qa.json"
    f.write_text(json.dumps([{"answer": "Couch", "category_id": 1, "id": 7, "question": "what is it on?", "video_id": 3},
                             {"answer": "cat", "id": 8, "question": "who runs?", "video_id": 4}]))
    recs = read_qa_file(f)
    assert recs[0] == QARecord("7", "video3", "what is it on?", "couch", "1") and recs[1].qtype == "who"
    vocab = AnswerVocab.build(recs, 1)
    assert len(vocab) == 1 and vocab.label("zebra") == -1
    with pytest.raises(BadSampleError, match="not valid JSON"):
        f.write_text("[{")
        read_qa_file(f)


def test_prior_baselines() -> None:
    mk = lambda a, t: QARecord("0", "v", "q", a, t)  # noqa: E731
    train = [mk("red", "0"), mk("red", "0"), mk("blue", "0"), mk("one", "4"), mk("two", "4"), mk("two", "4")]
    val = [mk("red", "0"), mk("two", "4"), mk("one", "4"), mk("blue", "0")]
    b = prior_baselines(train, val)
    assert b == {"majority": 0.25, "question_type_prior": 0.5}


def test_vocab_spans_map_characters_to_tokens() -> None:
    vocab = WordVocab.build(["a red circle moves"])
    ids, offsets = vocab.encode("a red circle moves", 16)
    assert ids[0] == vocab.index["[CLS]"] and len(ids) == 5
    assert char_to_token_spans([(2, 12), (13, 18)], offsets) == [(2, 4), (4, 5)]


def test_synthetic_questions_need_the_video(tiny_datamodule) -> None:  # noqa: ANN001
    b = tiny_datamodule.baselines
    assert b["majority"] <= b["question_type_prior"] < 0.7


def test_bad_video_is_skipped_and_counted(tiny_world: Path, tmp_path: Path) -> None:
    from finsta_pl.data_modules import ClipConfig, LoaderConfig, VideoQADataModule
    from finsta_pl.data_modules.synthetic import WorldConfig

    root = tmp_path / "copy"
    shutil.copytree(tiny_world, root)
    records = json.loads((root / "msrvtt_qa" / "train_qa.json").read_text())
    (root / "videos" / f"video{records[0]['video_id']}.mp4").write_bytes(b"garbage")
    kwargs = dict(dataset="msrvtt_qa", root=str(root), clip=ClipConfig(num_frames=4),
                  loader=LoaderConfig(batch_size=len(records), num_workers=0))
    dm = VideoQADataModule(**kwargs)
    dm.setup()
    dm.datasets["train"].train = False
    with pytest.warns(UserWarning, match="cannot decode"):
        batch = next(iter(torch.utils.data.DataLoader(dm.datasets["train"], batch_size=len(records),
                                                      collate_fn=dm._collate())))
    assert batch.num_skipped == sum(r["video_id"] == records[0]["video_id"] for r in records)
    strict = VideoQADataModule(**kwargs, on_bad_sample="raise")
    strict.setup()
    with pytest.raises(BadSampleError, match="garbage|cannot decode"):
        strict.datasets["train"][0]
    assert WorldConfig  # the synthetic module stays importable next to real data
