"""Safety (issue 11, point 7): checkpoints and exported hosts load with ``weights_only=True``, code-carrying
pickles are refused, pickle annotations need an explicit opt-in, and annotation paths stay in their root."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from finsta_pl.errors import BadSampleError, FinstaError, UnsafePathError
from finsta_pl.graphs.precomputed import PrecomputedDetector, convert_action_genome, write_sidecar
from finsta_pl.hosts.io import export_host, load_host_weights
from finsta_pl.nn.finsta import FinstaConfig
from finsta_pl.safety import inside_root
from finsta_pl.tasks import VideoQATask
from tests.nn.test_model import HOST

FIT = dict(accelerator="cpu", max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=False,
           enable_progress_bar=False, enable_model_summary=False)


class _Payload:
    """What an attacker pickles: unpickling it would run ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def checkpoint(tiny_datamodule, tmp_path_factory) -> Path:  # noqa: ANN001
    """``last.ckpt`` of a real one-step fit (ModelCheckpoint, optimizer and loop state included)."""
    root = tmp_path_factory.mktemp("fit")
    torch.manual_seed(0)
    model = VideoQATask(data_info=tiny_datamodule.info(), host=HOST, finsta=FinstaConfig(heads=2, tsg_layers=1))
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=root, save_last=True)
    L.Trainer(default_root_dir=root, callbacks=[ckpt], **FIT).fit(model, datamodule=tiny_datamodule)
    return root / "last.ckpt"


def test_fit_checkpoint_loads_weights_only(checkpoint: Path) -> None:
    from finsta_pl.hosts.base import HostConfig

    assert HostConfig in torch.serialization.get_safe_globals() and FinstaConfig in torch.serialization.get_safe_globals()
    assert torch.serialization.get_unsafe_globals_in_checkpoint(checkpoint) == []  # nothing left off the list
    ckpt = torch.load(checkpoint, weights_only=True, map_location="cpu")
    assert ckpt["hyper_parameters"]["host"] == HOST and ckpt["optimizer_states"]
    model = VideoQATask.load_from_checkpoint(checkpoint, weights_only=True)
    assert model.host_config == HOST


def test_resume_loads_weights_only(tiny_datamodule, checkpoint: Path, tmp_path: Path) -> None:  # noqa: ANN001
    model = VideoQATask(data_info=tiny_datamodule.info(), host=HOST, finsta=FinstaConfig(heads=2, tsg_layers=1))
    trainer = L.Trainer(default_root_dir=tmp_path, enable_checkpointing=False, **{**FIT, "max_epochs": 2})
    trainer.fit(model, datamodule=tiny_datamodule, ckpt_path=checkpoint, weights_only=True)
    assert trainer.current_epoch == 2 and trainer.global_step == 2  # one step restored, one more taken


def _malicious_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"config": {"name": "small_vlm"}, "state_dict": {}, "payload": _Payload(marker)}, path)
    return path


def test_malicious_checkpoint_is_refused(tiny_datamodule, tmp_path: Path) -> None:  # noqa: ANN001
    marker = tmp_path / "pwned"
    bad = _malicious_checkpoint(tmp_path / "bad.ckpt", marker)
    model = VideoQATask(data_info=tiny_datamodule.info(), host=HOST, finsta=FinstaConfig(heads=2, tsg_layers=1))
    with pytest.raises(FinstaError, match="refused, not a plain weights file"):
        load_host_weights(model.host, tiny_datamodule.info(), bad)  # the exported-host loader
    with pytest.raises(pickle.UnpicklingError):  # Lightning's resume path (its default: torch's weights_only)
        L.Trainer(default_root_dir=tmp_path, **FIT).fit(model, datamodule=tiny_datamodule, ckpt_path=bad)
    with pytest.raises(pickle.UnpicklingError):
        VideoQATask.load_from_checkpoint(bad)
    assert not marker.exists(), "the payload ran"


def test_exported_host_round_trips_weights_only(tiny_datamodule, tmp_path: Path) -> None:  # noqa: ANN001
    info = tiny_datamodule.info()
    src = VideoQATask(data_info=info, host=HOST, finsta=FinstaConfig(enabled=False))
    path = export_host(src.host, info, tmp_path / "host.pt")
    assert torch.load(path, weights_only=True)["config"]["dim"] == HOST.dim
    dst = VideoQATask(data_info=info, host=HOST, finsta=FinstaConfig(enabled=False))
    load_host_weights(dst.host, info, path)
    for (name, a), b in zip(src.host.state_dict().items(), dst.host.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_pickle_annotations_need_the_opt_in(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "obj.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(FinstaError, match="allow_pickle=True"):
        convert_action_genome(tmp_path / "obj.pkl", tmp_path / "out")
    assert not marker.exists()


@pytest.mark.parametrize("value,reason", [("../secret", "climbs out"), ("a/../../b", "climbs out"),
                                          ("/etc/passwd", "is absolute"), ("C:\\x", "is absolute"),
                                          ("..\\up", "climbs out"), ("", "is empty")])
def test_inside_root_rejects_escapes(tmp_path: Path, value: str, reason: str) -> None:
    with pytest.raises(UnsafePathError, match=reason) as info:
        inside_root(tmp_path, value, "train.json: record 3 'file'")
    assert str(info.value).startswith("train.json: record 3 'file': path ") and str(tmp_path) in str(info.value)
    assert isinstance(info.value, BadSampleError)  # a bad sample: skipped and named, or raised with on_bad_sample


def test_inside_root_keeps_relative_paths(tmp_path: Path) -> None:
    assert inside_root(tmp_path, "sub/v1.json", "x") == tmp_path / "sub" / "v1.json"
    assert inside_root(tmp_path, "v..1.json", "x") == tmp_path / "v..1.json"  # dots inside a name are fine


def test_sidecar_lookup_and_writing_stay_in_their_root(tmp_path: Path) -> None:
    (tmp_path / "outside.json").write_text('{"frame_size": [8, 8], "frames": []}')
    det = PrecomputedDetector(root=str(tmp_path / "sidecars"), missing="raise")
    frames = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(UnsafePathError, match=r"video id '\.\./outside'.*climbs out"):
        det.detections("../outside", frames, [0])
    with pytest.raises(UnsafePathError, match="is absolute"):
        det.detections(str(tmp_path / "outside"), frames, [0])
    with pytest.raises(UnsafePathError, match=r"vidvrd\.json: video_id: video '\.\./\.\./x'"):
        write_sidecar({"video": "../../x", "frame_size": [8, 8], "frames": []}, tmp_path / "out", "vidvrd.json: video_id")
    assert not (tmp_path / "x.json").exists()
