"""``finsta-pl data check``: on every real-dataset config (fed the embedded world laid out as that dataset
ships), and on a copy with a missing and a corrupt video, which it must find and list."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.helpers.video_fixtures import write_ramp

from tests.helpers import REPO, TINY
from finsta_pl.tools.data_check import main

DATASET_CONFIGS = sorted(c for c in (REPO / "experiments").glob("*.yaml") if "FINSTA_PL_DATA_ROOT" in c.read_text())


@pytest.mark.parametrize("config", DATASET_CONFIGS, ids=[c.stem for c in DATASET_CONFIGS])
def test_data_check_finds_everything_in_each_dataset_layout(config: Path, tiny_world: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("FINSTA_PL_DATA_ROOT", str(tiny_world / "datasets"))
    report = tmp_path / "report.tsv"
    assert main(["check", "--config", str(config), "--config", str(TINY), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "no problems" in out
    assert report.read_text() == "split\tsample\tvideo\treason\n"


def test_data_check_lists_missing_and_unreadable_videos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "kinetics400"
    (root / "annotations").mkdir(parents=True)
    (root / "videos" / "abseiling").mkdir(parents=True)
    rows = "".join(f"abseiling,id{k},0,2,train,0\n" for k in range(4))
    for split in ("train", "val"):
        (root / "annotations" / f"kinetics_{split}.csv").write_text("label,youtube_id,time_start,time_end,split,is_cc\n" + rows)
    write_ramp(root / "videos" / "abseiling" / "id0_000000_000002.mp4")
    write_ramp(root / "videos" / "abseiling" / "id1_000000_000002.mp4", frames=25)
    (root / "videos" / "abseiling" / "id2_000000_000002.mp4").write_bytes(b"\x00" * 64)  # corrupt header
    monkeypatch.setenv("FINSTA_PL_DATA_ROOT", str(tmp_path))
    report = tmp_path / "problems.tsv"
    status = main(["check", "--config", str(REPO / "experiments" / "kinetics400_action.yaml"), "--config", str(TINY),
                   "--report", str(report)])
    assert status == 1
    out = capsys.readouterr().out
    assert "train         4       3        1       3           1            0       2.5-4.0" in out
    lines = report.read_text().splitlines()[1:]
    assert sorted((line.split("\t")[0], line.split("\t")[2], line.split("\t")[3][:20]) for line in lines) == [
        ("train", "id2_000000_000002", str(root / "videos" / "abseiling" / "id2")[:20]),
        ("train", "id3_000000_000002", "no video file: tried"),
        ("val", "id2_000000_000002", str(root / "videos" / "abseiling" / "id2")[:20]),
        ("val", "id3_000000_000002", "no video file: tried")]
    shutil.rmtree(root / "annotations")
    with pytest.raises(Exception, match="kinetics_train.csv"):  # no annotations at all: the usual message
        main(["check", "--config", str(REPO / "experiments" / "kinetics400_action.yaml"), "--config", str(TINY)])
