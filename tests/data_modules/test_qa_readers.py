"""Open-ended QA readers beyond the embedded world: MSVD-QA (1-based ``vid<N>`` ids, YouTube clip names
through the mapping file) and TGIF-QA FrameQA (tab-separated, GIFs, the "FRAMEQA" artefact, no val split)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from tests.helpers.video_fixtures import write_ramp

from finsta_pl.data_modules import ClipConfig, LoaderConfig, VideoQADataModule
from finsta_pl.errors import BadSampleError, DataNotFoundError

SMALL = dict(clip=ClipConfig(num_frames=4, frame_size=32), loader=LoaderConfig(batch_size=2, num_workers=0),
             build_graphs=False)


def test_msvd_qa_finds_youtube_named_clips_through_the_mapping(tmp_path: Path) -> None:
    root = tmp_path / "msvd"
    (root / "ann").mkdir(parents=True)
    (root / "YouTubeClips").mkdir()
    qa = [{"answer": "Guitar", "id": 30934, "question": "what is a man playing?", "video_id": 1},
          {"answer": "dog", "id": 30935, "question": "what is running?", "video_id": 2}]
    (root / "ann" / "train_qa.json").write_text(json.dumps(qa))
    (root / "ann" / "val_qa.json").write_text(json.dumps(qa[:1]))
    (root / "ann" / "youtube_mapping.txt").write_text("-4wsuPCjDBc_5_15 vid1\n\nzv2RIbUsnSw_159_168 vid2\n")
    write_ramp(root / "YouTubeClips" / "-4wsuPCjDBc_5_15.avi", fourcc="MJPG")
    write_ramp(root / "YouTubeClips" / "vid2.avi", fourcc="MJPG")  # renamed copies work too
    dm = VideoQADataModule(dataset="msvd_qa", root=str(root), annotation_dir="ann", video_dir="YouTubeClips", **SMALL)
    dm.setup("fit")
    assert [(r.id, r.video, r.answer) for r in dm.records["train"]] == [("30934", "vid1", "guitar"), ("30935", "vid2", "dog")]
    assert all(dm.datasets["train"][k] is not None for k in range(2))
    (root / "ann" / "youtube_mapping.txt").unlink()
    with pytest.raises(DataNotFoundError, match="youtube_mapping.txt: the video-name mapping was not found"):
        VideoQADataModule(dataset="msvd_qa", root=str(root), annotation_dir="ann", video_dir="YouTubeClips",
                          **SMALL).setup("fit")


def test_tgif_frameqa_reads_tsv_gifs_and_undoes_the_artefact(tmp_path: Path) -> None:
    root = tmp_path / "tgif"
    (root / "dataset").mkdir(parents=True)
    (root / "gifs").mkdir()
    header = "gif_name\tquestion\tanswer\ttype\tvid_id\tkey\tdescription\n"
    rows = ["tumblr_nab12_250\twhat is the color of the shirt ?\tblack\t2\tFRAMEQA4460\t87751\ta man in a black shirt .\n",
            "tumblr_nab12_250\twhat does the man FRAMEQAeatedly hit ?\tball\t0\tFRAMEQA4461\t87752\ta man hits a ball .\n",
            'tumblr_zz_250\twhere is the "cat" ?\tsofa\t3\tFRAMEQA1\t5\tüber cat on a sofa .\n']
    (root / "dataset" / "Train_frameqa_question.csv").write_text(header + "".join(rows), encoding="utf-8")
    (root / "dataset" / "Test_frameqa_question.csv").write_text(header + rows[0], encoding="utf-8")
    for name in ("tumblr_nab12_250", "tumblr_zz_250"):
        images = [Image.fromarray(np.full((30, 40, 3), 20 * i, np.uint8)) for i in range(6)]
        images[0].save(root / "gifs" / f"{name}.gif", save_all=True, append_images=images[1:], duration=100)
    dm = VideoQADataModule(dataset="tgif_frameqa", root=str(root), annotation_dir="dataset", video_dir="gifs", **SMALL)
    dm.trainer = SimpleNamespace(limit_val_batches=1.0)  # a fit that validates, as Lightning attaches it
    with pytest.raises(DataNotFoundError, match=r"fit needs the val split.*data.init_args.files.val"):
        dm.setup("fit")  # no val split in TGIF-QA; none invented, and fit says how to name one
    dm.trainer = None
    dm.setup("fit")
    assert set(dm.datasets) == {"train", "test"}
    train = dm.records["train"]
    assert [r.id for r in train] == ["FRAMEQA4460", "FRAMEQA4461", "FRAMEQA1"]  # per question: vid_id, not key
    assert train[1].question == "what does the man repeatedly hit ?"
    assert [r.qtype for r in train] == ["color", "object", "location"] and train[2].question == 'where is the "cat" ?'
    assert dm.baselines["majority"] == 1.0  # measured on test when there is no val
    sample = dm.datasets["train"][2]
    assert sample is not None and sample.frames.shape == (4, 32, 32, 3)
    (root / "dataset" / "Test_frameqa_question.csv").write_text(header + "x\t\tblack\t2\tF\t1\td\n")
    with pytest.raises(BadSampleError, match=r"Test_frameqa_question.csv:2: malformed FrameQA row \(empty"):
        VideoQADataModule(dataset="tgif_frameqa", root=str(root), annotation_dir="dataset", video_dir="gifs", **SMALL)
