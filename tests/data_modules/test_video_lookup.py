"""The one video lookup every reader uses: any sub-folder, the shipped extensions, an ``{id}`` file-name
pattern (given once to any DataModule), repeated ids kept deterministically and reported."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from tests.helpers.video_fixtures import write_ramp

from finsta_pl.data_modules import ClipConfig, InferenceDataModule, LoaderConfig
from finsta_pl.data_modules.video import index_videos


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")


def test_pattern_reads_the_id_out_of_the_file_name(tmp_path: Path) -> None:
    _touch(tmp_path, "a/video12.mp4", "b/c/video7.webm", "video3.txt", "notes.mp4", "x/video9.MKV")
    assert {k: p.name for k, p in index_videos(tmp_path, "video{id}").items()} == {
        "12": "video12.mp4", "7": "video7.webm", "9": "video9.MKV"}
    assert set(index_videos(tmp_path)) == {"video12", "video7", "notes", "video9"}  # default: the stem
    assert set(index_videos(tmp_path, "video{id}.webm")) == {"7"}  # an extension in the pattern narrows it
    _touch(tmp_path, "clips/abc_360p.mp4", "clips/abc.mp4")
    assert index_videos(tmp_path, "{id}_360p")["abc"].name == "abc_360p.mp4"


@pytest.mark.parametrize("pattern", ["video", "{id}/{id}", "dir/{id}"])
def test_a_pattern_without_exactly_one_id_in_a_file_name_is_refused(tmp_path: Path, pattern: str) -> None:
    with pytest.raises(ValueError, match="video_pattern must be a file name"):
        index_videos(tmp_path, pattern)


def test_repeated_ids_keep_the_first_path_and_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _touch(tmp_path, "a/v1.mp4", "b/v1.webm", "b/v2.mp4")
    with caplog.at_level(logging.WARNING):
        found = index_videos(tmp_path)
    assert found["v1"] == tmp_path / "a" / "v1.mp4"
    assert "1 video files repeat an id" in caplog.text and "b/v1.webm" in caplog.text


def test_any_datamodule_takes_the_pattern(tmp_path: Path) -> None:
    """A reader that knows nothing of the pattern (VIOLIN's clip files) finds ``clip_<file>.mp4`` through it."""
    root = tmp_path / "violin"
    root.mkdir()
    annotation = {"c1": {"file": "c1", "split": "train", "statement": [["A man sits.", "A man runs."]], "sub": []}}
    (root / "violin_annotation.json").write_text(json.dumps(annotation))
    (root / "videos" / "tv").mkdir(parents=True)
    write_ramp(root / "videos" / "tv" / "clip_c1.mp4", frames=12)
    dm = InferenceDataModule(dataset="violin", root=str(root), annotation="violin_annotation.json",
                             video_pattern="clip_{id}", clip=ClipConfig(num_frames=4, frame_size=32),
                             loader=LoaderConfig(batch_size=2, num_workers=0), build_graphs=False)
    dm.setup("fit")
    assert dm.datasets["train"][0].frames.shape == (4, 32, 32, 3)
