"""The CLIP4Clip host over a tiny random `transformers` CLIP written to disk (no download): tokenizer offsets,
agreement with CLIP's own features, Finsta on top, a CLI fit, export/load, and the errors users meet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from tests.helpers import REPO, TINY, run_cli, run_cli_here  # noqa: E402

from finsta_pl.data_modules import ClipConfig, LoaderConfig, VideoQADataModule  # noqa: E402
from finsta_pl.data_modules.synthetic import WorldConfig  # noqa: E402
from finsta_pl.errors import FinstaError  # noqa: E402
from finsta_pl.hf_tokenizer import ID_SHIFT, HFTokenizer  # noqa: E402
from finsta_pl.hosts.base import HostConfig  # noqa: E402
from finsta_pl.hosts.io import export_host  # noqa: E402
from finsta_pl.nn.finsta import FinstaConfig  # noqa: E402
from finsta_pl.tasks import VideoQATask  # noqa: E402
from finsta_pl.tools.tiny_clip import write_tiny_clip  # noqa: E402

HOST = dict(name="clip4clip", heads=2, fusion_layers=1, dropout=0.0)


@pytest.fixture(scope="module")
def clip_dir(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLIP checkpoint whose BPE merges know the tiny world's question words."""
    questions = (tiny_world / "msrvtt_qa" / "train_qa.json").read_text()
    return write_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip", [questions], width=32)


@pytest.fixture(scope="module")
def clip_datamodule(tiny_world: Path, clip_dir: Path) -> VideoQADataModule:
    dm = VideoQADataModule(synthetic=WorldConfig(num_train=24, num_val=12, num_test=8), tokenizer=str(clip_dir),
                           clip=ClipConfig(num_frames=4, frame_size=64), loader=LoaderConfig(batch_size=6, num_workers=0))
    dm.setup("fit")
    return dm


def test_tokenizer_offsets_map_scene_graph_spans(clip_dir: Path) -> None:
    tok = HFTokenizer(clip_dir)
    text = "What color is the circle that moves left?"
    ids, spans = tok.encode(text, 32)
    assert spans[0] == (-1, -1) and spans[-1] == (-1, -1)  # <|startoftext|>, <|endoftext|>
    words = [text[s:e].lower() for s, e in spans[1:-1]]
    assert words[:5] == ["what", "color", "is", "the", "circle"]
    raw = tok.tokenizer(text)["input_ids"]
    assert ids == [i + ID_SHIFT for i in raw] and min(ids) > 0  # 0 stays free for padding
    assert tok.encode_label("circle") == [ids[5]]
    with pytest.warns(UserWarning, match="truncated to 4 tokens"):
        short, short_spans = tok.encode(text, 4)
    assert len(short) == 4 and short[-1] == ids[-1] and short_spans[-1] == (-1, -1)  # keeps the end token


def test_frames_and_text_agree_with_clip_itself(clip_datamodule: VideoQADataModule, clip_dir: Path) -> None:
    torch.manual_seed(0)
    model = VideoQATask(data_info=clip_datamodule.info(), host=HostConfig(checkpoint=str(clip_dir), **HOST),
                        finsta=FinstaConfig(enabled=False)).eval()
    host, clip = model.host, model.host.clip
    frames = torch.randint(0, 256, (2, 3, 32, 32, 3), dtype=torch.uint8)  # CLIP's input size: no resize
    with torch.no_grad():
        video = host.encode_video(frames)
        pixels = (frames.reshape(6, 32, 32, 3).permute(0, 3, 1, 2).float() / 255 - host.pixel_mean) / host.pixel_std
        reference = clip.visual_projection(clip.vision_model(pixel_values=pixels).pooler_output)
    torch.testing.assert_close(video.frames.reshape(6, -1), reference, atol=1e-5, rtol=1e-5)
    assert video.maps.shape == (2, 3, 32, 4, 4) and video.pooled.shape == (2, 32)

    tok = clip_datamodule.vocab
    texts = ["what color is the circle?", "how many squares move left quickly in the video?"]
    encoded = [tok.encode(t, 32)[0] for t in texts]
    padded = torch.zeros(2, max(map(len, encoded)), dtype=torch.long)
    for row, ids in enumerate(encoded):
        padded[row, : len(ids)] = torch.tensor(ids)
    with torch.no_grad():
        pooled = host.encode_text(padded).pooled
        alone = [clip.text_projection(clip.text_model(input_ids=torch.tensor([ids]) - ID_SHIFT).pooler_output)
                 for ids in encoded]
    torch.testing.assert_close(pooled, torch.cat(alone), atol=1e-5, rtol=1e-5)  # padding changes nothing


def test_finsta_over_clip_is_identity_at_init_and_trains(clip_datamodule: VideoQADataModule, clip_dir: Path) -> None:
    batch = next(iter(clip_datamodule.train_dataloader()))
    assert batch.has_graphs and int(batch.span_node.numel()) > 0
    torch.manual_seed(0)
    model = VideoQATask(data_info=clip_datamodule.info(), host=HostConfig(checkpoint=str(clip_dir), **HOST),
                        finsta=FinstaConfig(heads=2)).eval()
    with torch.no_grad():
        feats = model.features(batch)
        host_joint = model.host.fuse(model.host.encode_video(batch.frames), model.host.encode_text(batch.text_ids))
    torch.testing.assert_close(feats.joint, host_joint)  # zero-initialised dual-stream-sum
    model.train()
    feats = model.features(batch)
    loss = model.task_step(batch, feats, "train") + model.finsta.total_loss(feats.finsta.losses)
    loss.backward()
    assert torch.isfinite(loss) and set(feats.finsta.losses) == {"osc", "ptc", "distill"}
    clip_grad = model.host.clip.vision_model.embeddings.patch_embedding.weight.grad
    assert clip_grad is not None and clip_grad.abs().sum() > 0


def test_pretrained_weights_get_their_own_learning_rate(clip_datamodule: VideoQADataModule, clip_dir: Path) -> None:
    from finsta_pl.tasks.base import OptimConfig

    model = VideoQATask(data_info=clip_datamodule.info(), host=HostConfig(checkpoint=str(clip_dir), **HOST),
                        finsta=FinstaConfig(enabled=False), optim=OptimConfig(lr=1e-3, pretrained_lr=1e-6))
    model.trainer = type("T", (), {"estimated_stepping_batches": 10})()  # only what configure_optimizers reads
    opt = model.configure_optimizers()["optimizer"]
    by_lr = {}
    for group in opt.param_groups:
        lr = group["initial_lr"]  # before the warm-up factor
        by_lr[lr] = by_lr.get(lr, 0) + sum(p.numel() for p in group["params"])
    # CLIP's logit_scale stays frozen here: QA has no contrastive loss to train it (post-training turns it on).
    assert not model.host.clip.logit_scale.requires_grad
    clip_params = sum(p.numel() for p in model.host.clip.parameters() if p.requires_grad)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert by_lr == {1e-6: clip_params, 1e-3: trainable - clip_params}


def test_export_and_load_an_enhanced_clip_host(clip_datamodule: VideoQADataModule, clip_dir: Path,
                                                tmp_path: Path) -> None:
    info = clip_datamodule.info()
    torch.manual_seed(1)
    source = VideoQATask(data_info=info, host=HostConfig(checkpoint=str(clip_dir), **HOST), finsta=FinstaConfig(heads=2))
    with torch.no_grad():
        source.host.clip.text_projection.weight.add_(1.0)  # "post-trained": differs from the checkpoint
    path = export_host(source.host, info, tmp_path / "enhanced.pt")
    loaded = VideoQATask(data_info=info, host=HostConfig(checkpoint=str(clip_dir), init_from=str(path), **HOST),
                         finsta=FinstaConfig(enabled=False))
    torch.testing.assert_close(loaded.host.clip.text_projection.weight, source.host.clip.text_projection.weight)
    with pytest.raises(FinstaError, match="exported clip4clip host, but this model's host is small_vlm"):
        VideoQATask(data_info={**info, "vocab": ["[PAD]", "[UNK]", "[CLS]"]},
                    host=HostConfig(init_from=str(path)), finsta=FinstaConfig(enabled=False))


@pytest.mark.slow  # ~20 s CLI fit; the default run keeps CLIP4Clip's forward, Finsta on top and posttrain_clip4clip's DDP fit
def test_cli_fit_with_the_clip4clip_config(clip_dir: Path, tmp_path: Path) -> None:
    proc = run_cli("fit", "--config", str(REPO / "experiments" / "videoqa_clip4clip.yaml"), "--config", str(TINY),
                   "--model.init_args.host.heads=2", "--model.init_args.host.fusion_layers=1",
                   "--data.init_args.clip.frame_size=32", f"--trainer.logger.init_args.save_dir={tmp_path}",
                   cwd=tmp_path, env={"FINSTA_PL_CLIP": str(clip_dir)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "videoqa (videoqa_clip4clip):" in proc.stdout and "majority baseline" in proc.stdout
    saved = (tmp_path / "videoqa_clip4clip" / "version_0" / "hparams.yaml").read_text()
    assert "clip4clip" in saved and "vocab:" not in saved  # the tokenizer folder is saved, not a word list


def test_missing_clip_checkpoint_says_where_to_get_one(tmp_path: Path, tiny_world: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    proc = run_cli_here("fit", "--config", str(REPO / "experiments" / "videoqa_clip4clip.yaml"), "--config", str(TINY),
                        cwd=tmp_path, env={"FINSTA_PL_CLIP": str(tmp_path / "nowhere")}, monkeypatch=monkeypatch,
                        capfd=capfd)
    assert proc.returncode == 2
    assert "nowhere" in proc.stderr and "hf download openai/clip-vit-base-patch32" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_tokenizer_bigger_than_the_text_tower_is_refused(clip_datamodule: VideoQADataModule, clip_dir: Path) -> None:
    info = {**clip_datamodule.info(), "tokenizer_size": 10**6}
    with pytest.raises(FinstaError, match="tokenizer has 1000000 tokens"):
        VideoQATask(data_info=info, host=HostConfig(checkpoint=str(clip_dir), **HOST))
    config = json.loads((clip_dir / "config.json").read_text())
    assert config["projection_dim"] == 32


@pytest.mark.slow  # 15-min default budget: the default run's test_posttrain covers export and load with the built-in host
def test_posttrain_clip4clip_exports_a_host_that_videoqa_fine_tunes(clip_dir: Path, tmp_path: Path) -> None:
    host_file = tmp_path / "enhanced_clip.pt"
    shrink = ["--model.init_args.host.heads=2", "--model.init_args.host.fusion_layers=1",
              "--data.init_args.clip.frame_size=32", f"--trainer.logger.init_args.save_dir={tmp_path}"]
    env = {"FINSTA_PL_CLIP": str(clip_dir)}
    proc = run_cli("fit", "--config", str(REPO / "experiments" / "posttrain_clip4clip.yaml"), "--config", str(TINY),
                   *shrink, f"--model.init_args.export_path={host_file}", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "val/t2v_r1" in proc.stdout and host_file.is_file()
    proc = run_cli("fit", "--config", str(REPO / "experiments" / "videoqa_clip4clip.yaml"), "--config", str(TINY),
                   *shrink, f"--model.init_args.host.init_from={host_file}", "--model.init_args.finsta.enabled=false",
                   "--data.init_args.build_graphs=false", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "host initialised from" in proc.stdout + proc.stderr


def test_loaded_clip_starts_in_train_mode(clip_datamodule: VideoQADataModule, clip_dir: Path) -> None:
    model = VideoQATask(data_info=clip_datamodule.info(), host=HostConfig(checkpoint=str(clip_dir), **HOST))
    assert all(m.training for m in model.modules())  # from_pretrained alone would leave CLIP in eval mode


def test_labels_are_embedded_by_clips_text_tower(clip_datamodule: VideoQADataModule, clip_dir: Path) -> None:
    """``embed_labels``: each label encoded as ``[BOS] label [EOS]`` by CLIP's text tower, as CLIP embeds a text."""
    torch.manual_seed(0)
    host = VideoQATask(data_info=clip_datamodule.info(), host=HostConfig(checkpoint=str(clip_dir), **HOST),
                       finsta=FinstaConfig(enabled=False)).eval().host
    tok = clip_datamodule.vocab
    labels = ["circle", "square", "circle"]
    ids = torch.zeros(3, 4, dtype=torch.long)
    for row, label in enumerate(labels):
        words = tok.encode_label(label)
        ids[row, : len(words)] = torch.tensor(words)
    with torch.no_grad():
        out = host.embed_labels(ids)
        alone = [host.encode_text(torch.tensor([tok.encode(label, 8)[0]])).pooled for label in labels]
    torch.testing.assert_close(out, torch.cat(alone), atol=1e-5, rtol=1e-5)
    assert torch.equal(out[0], out[2]) and not torch.allclose(out[0], out[1])


def test_label_embedding_links_through_the_clip_host(tiny_world: Path, clip_dir: Path) -> None:
    from finsta_pl.data_modules.graph_builder import GraphConfig
    from finsta_pl.graphs.hsg import LinkConfig

    dm = VideoQADataModule(synthetic=WorldConfig(num_train=24, num_val=12, num_test=8), tokenizer=str(clip_dir),
                           clip=ClipConfig(num_frames=4, frame_size=64), loader=LoaderConfig(batch_size=4, num_workers=0),
                           graphs=GraphConfig(link=LinkConfig(method="label_embedding")))
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch.embedding_link is not None and bool(batch.embedding_link.by_label.all())
    torch.manual_seed(0)
    model = VideoQATask(data_info=dm.info(), host=HostConfig(checkpoint=str(clip_dir), **HOST), finsta=FinstaConfig(heads=2))
    feats = model.features(batch)
    loss = model.task_step(batch, feats, "train") + model.finsta.total_loss(feats.finsta.losses)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(feats.finsta.losses["osc"])
