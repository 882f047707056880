"""The six tasks on tiny data: contracts (several texts per clip, typed targets checked at construction), metrics
against full-matrix references written here, and every Finsta switch on every task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import REPO, TINY, run_cli, run_cli_here
from finsta_pl.data_info import DataInfo
from finsta_pl.errors import FinstaError
from finsta_pl.hosts.base import HostConfig
from finsta_pl.metrics import ClassAccuracy, RetrievalRecall
from finsta_pl.nn.finsta import FinstaConfig

HOST = HostConfig(dim=32, heads=2, video_layers=1, text_layers=1)
TASKS = {  # task -> (DataModule, task module)
    "videoqa": ("VideoQADataModule", "VideoQATask"),
    "retrieval": ("RetrievalDataModule", "RetrievalTask"),
    "mcqa": ("MultipleChoiceDataModule", "MultipleChoiceQATask"),
    "inference": ("InferenceDataModule", "VideoLanguageInferenceTask"),
    "action": ("ActionDataModule", "ActionRecognitionTask"),
    "captioning": ("CaptioningDataModule", "CaptioningTask"),
}
SWITCHES = ("osc", "ptc", "stgd", "temporal_edges", "adverb_nodes", "crossmodal_edges")


def _datamodule(name: str, **graphs):  # noqa: ANN202
    import finsta_pl.data_modules as dms
    from finsta_pl.data_modules import ClipConfig, GraphConfig, LoaderConfig
    from finsta_pl.data_modules.synthetic import WorldConfig

    dm = getattr(dms, TASKS[name][0])(synthetic=WorldConfig(num_train=24, num_val=12, num_test=8),
                                      clip=ClipConfig(num_frames=4, frame_size=64),
                                      loader=LoaderConfig(batch_size=4, num_workers=0), graphs=GraphConfig(**graphs))
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def batches(tiny_world: Path) -> dict:
    """A set-up DataModule and its first validation batch per task."""
    out = {}
    for name in TASKS:
        dm = _datamodule(name)
        out[name] = (dm, next(iter(dm.val_dataloader())))
    return out


def _task(name: str, dm, **finsta):  # noqa: ANN001, ANN202
    import finsta_pl.tasks as tasks

    torch.manual_seed(0)
    return getattr(tasks, TASKS[name][1])(data_info=dm.info(), host=HOST, finsta=FinstaConfig(heads=2, **finsta))


def test_a_clip_is_decoded_once_with_all_its_texts(batches: dict) -> None:
    dm, batch = batches["mcqa"]
    assert batch.num_texts == 5 * batch.batch_size and batch.text_ids.shape[0] == batch.num_texts
    assert batch.dsg.num_graphs == batch.batch_size and batch.tsg.num_graphs == batch.hsg.num_graphs == batch.num_texts
    assert torch.equal(batch.text_sample, torch.arange(batch.batch_size).repeat_interleave(5))
    # Every HSG holds its text's TSG nodes and a copy of its own clip's DSG nodes.
    source = batch.hsg_source
    dsg_part = source >= batch.tsg.num_nodes
    clip_of_node = batch.dsg.node_graph[source[dsg_part] - batch.tsg.num_nodes]
    assert torch.equal(clip_of_node, batch.text_sample[batch.hsg.node_graph[dsg_part]])
    _, retrieval = batches["retrieval"]
    assert batch.targets["label"].shape == (batch.batch_size,)
    assert retrieval.text_targets["index"].shape == (retrieval.num_texts,) and retrieval.num_texts >= retrieval.batch_size
    _, action = batches["action"]
    assert action.num_texts == 0 and action.tsg is None and action.dsg is not None


def test_embedding_links_of_several_texts_land_on_their_own_hsg(tiny_world: Path) -> None:
    from finsta_pl.nn.linking import crossmodal_edges, embedding_links

    dm = _datamodule("mcqa", detector="grid")
    batch = next(iter(dm.val_dataloader()))
    text = torch.randn(batch.tsg.num_nodes, 8)
    video = torch.randn(batch.dsg.num_nodes, 8)
    flags = torch.ones(batch.num_texts, dtype=torch.bool)
    links = embedding_links(batch.tsg, batch.dsg, batch.text_sample, text, video, flags, -1.0, 1)
    assert links.num_links > 0
    assert torch.equal(batch.dsg.node_graph[links.dsg_nodes], batch.text_sample[links.link_graph[links.dsg_link]])
    index, _ = crossmodal_edges(links, batch.tsg, batch.dsg, batch.hsg, batch.text_sample)
    n = links.dsg_nodes.numel()
    assert torch.equal(batch.hsg_source[index[0, :n]], links.text_node[links.dsg_link])
    assert torch.equal(batch.hsg_source[index[1, :n]], batch.tsg.num_nodes + links.dsg_nodes)
    assert torch.equal(batch.hsg.node_graph[index[0, :n]], batch.hsg.node_graph[index[1, :n]])


@pytest.mark.parametrize("name", list(TASKS))
@pytest.mark.parametrize("switch", [None, *SWITCHES])
def test_every_switch_on_every_task(batches: dict, name: str, switch: str | None) -> None:
    dm, batch = batches[name]
    model = _task(name, dm, **({switch: False} if switch else {}))
    feats = model.features(batch)
    loss = model.task_step(batch, feats, "train") + model.finsta.total_loss(feats.finsta.losses)
    loss.backward()
    assert torch.isfinite(loss)
    expected = {"distill"} | ({"osc", "ptc"} - {switch} if name != "action" else set())
    # Retrieval and captioning fuse no joint feature: there the HSG has its own loss.
    expected |= {"hsg"} if name in {"retrieval", "captioning"} else set()
    assert set(feats.finsta.losses) == expected
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_a_task_on_the_wrong_data_stops_with_one_message(batches: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    from finsta_pl.tasks import VideoQATask

    dm, _ = batches["retrieval"]
    with pytest.raises(FinstaError, match=r"VideoQATask reads the targets \['label', 'index'\].*'retrieval' data"):
        VideoQATask(data_info=dm.info(), host=HOST)
    proc = run_cli_here("fit", "--config", str(REPO / "experiments" / "videoqa.yaml"), "--config", str(TINY),
                        "--data=finsta_pl.data_modules.RetrievalDataModule", cwd=tmp_path, monkeypatch=monkeypatch,
                        capfd=capfd)
    assert proc.returncode == 2 and "reads the targets" in proc.stderr and "Traceback" not in proc.stderr


def test_data_info_round_trips_and_names_what_is_missing() -> None:
    info = DataInfo("videoqa", {"vocab": ["[PAD]", "a"]}, ("label", "index"), labels=("red",), baselines={"majority": 0.5})
    assert DataInfo.from_dict(info.to_dict()) == info
    with pytest.raises(FinstaError, match="lacks"):
        DataInfo.from_dict({"vocab": ["a"]})


def _retrieval_reference(text: torch.Tensor, video: torch.Tensor, vid: torch.Tensor) -> dict[str, float]:
    """Pessimistic ranks from the full matrix, one loop per query."""
    s = torch.nn.functional.normalize(text, dim=-1) @ torch.nn.functional.normalize(video, dim=-1).t()
    t2v = [int((s[i] >= s[i, vid[i]]).sum()) for i in range(len(text))]
    v2t = [min(int((s[:, j] >= s[i, j]).sum()) for i in range(len(text)) if vid[i] == j) for j in range(len(video))]
    out = {f"t2v_r{k}": float(np.mean([r <= k for r in t2v])) for k in (1, 5, 10)}
    out.update({f"v2t_r{k}": float(np.mean([r <= k for r in v2t])) for k in (1, 5, 10)})
    out.update(t2v_medr=float(np.median(t2v)), t2v_mnr=float(np.mean(t2v)), v2t_medr=float(np.median(v2t)),
               v2t_mnr=float(np.mean(v2t)))
    return out


def test_retrieval_ranks_ties_pessimistically() -> None:
    m = RetrievalRecall()
    text, video = torch.ones(6, 4), torch.ones(3, 4)  # every score ties
    vid = torch.tensor([0, 0, 1, 1, 2, 2])
    m.update(text, video[vid], torch.arange(6), vid)
    out = m.compute()
    assert float(out["t2v_r1"]) == 0.0 and float(out["t2v_medr"]) == 3.0  # last among 3 videos, not first
    assert float(out["v2t_r5"]) == 0.0 and float(out["v2t_mnr"]) == 6.0


def test_retrieval_with_several_captions_per_video_matches_the_full_matrix() -> None:
    g = torch.Generator().manual_seed(3)
    video = torch.randn(7, 8, generator=g)
    vid = torch.tensor([0, 0, 0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 6, 6])
    text = video[vid] + 0.8 * torch.randn(len(vid), 8, generator=g)
    text[4] = text[5]  # a duplicate caption: a tie
    m = RetrievalRecall()
    for chunk in (slice(0, 5), slice(5, 14), slice(3, 7)):  # the last repeats samples, as DDP padding does
        m.update(text[chunk], video[vid[chunk]], torch.arange(14)[chunk], vid[chunk])
    out = m.compute()
    for key, value in _retrieval_reference(text, video, vid).items():
        assert float(out[key]) == pytest.approx(value), key


def test_class_accuracy_matches_a_reference() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(20, 7, generator=g)
    label = torch.randint(0, 7, (20,), generator=g)
    label[3] = -1  # a class the model does not know: wrong
    m = ClassAccuracy(7)
    m.update(torch.arange(12), logits[:12], label[:12])
    m.update(torch.arange(8, 20), logits[8:], label[8:])  # 8..11 twice
    out = m.compute()
    top5 = logits.topk(5, -1).indices
    assert float(out["top1"]) == pytest.approx(float((logits.argmax(-1) == label).float().mean()))
    assert float(out["top5"]) == pytest.approx(float((top5 == label[:, None]).any(1).float().mean()))
    known = [c for c in range(7) if (label == c).any()]
    per_class = [float((logits.argmax(-1)[label == c] == c).float().mean()) for c in known]
    assert float(out["mean_class"]) == pytest.approx(float(np.mean(per_class)))


def test_candidate_scores_pad_uneven_candidate_lists() -> None:
    from finsta_pl.tasks.multiple_choice import candidate_scores

    scores = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    out = candidate_scores(scores, torch.tensor([0, 0, 0, 1, 1]), 2)
    assert out.shape == (2, 3) and out[1, 2] == float("-inf") and out[1, :2].tolist() == [4.0, 5.0]


@pytest.fixture(scope="module")
def enhanced_host(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host post-trained (one tiny epoch) with Finsta on the embedded captions, exported."""
    out = tmp_path_factory.mktemp("posttrain")
    host_file = out / "enhanced_host.pt"
    proc = run_cli("fit", "--config", str(REPO / "experiments" / "posttrain_synthetic.yaml"), "--config", str(TINY),
                   f"--trainer.logger.init_args.save_dir={out}", f"--model.init_args.export_path={host_file}", cwd=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return host_file


@pytest.mark.slow  # a whole fit or tool run; make test-slow (CI runs it) keeps it
def test_zero_shot_retrieval_with_an_enhanced_host(enhanced_host: Path, tmp_path: Path) -> None:
    """``finsta-pl test`` straight from a post-trained host: no task training, no scene graphs."""
    proc = run_cli("test", "--config", str(REPO / "experiments" / "retrieval_host_only.yaml"), "--config", str(TINY),
                   f"--model.init_args.host.init_from={enhanced_host}", f"--trainer.logger.init_args.save_dir={tmp_path}",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test/t2v_r1" in proc.stdout and "host initialised from" in proc.stdout + proc.stderr


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_fine_tunes_from_an_enhanced_host(batches: dict, enhanced_host: Path, name: str) -> None:
    import finsta_pl.tasks as tasks

    dm, batch = batches[name]
    saved = torch.load(enhanced_host, weights_only=True)["state_dict"]
    host = HostConfig(dim=32, heads=2, video_layers=1, text_layers=1, fusion_layers=1, init_from=str(enhanced_host))
    model = getattr(tasks, TASKS[name][1])(data_info=dm.info(), host=host, finsta=FinstaConfig(enabled=False))
    torch.testing.assert_close(model.host.stem[0][0].weight, saved["stem.0.0.weight"])
    feats = model.features(batch)
    model.task_step(batch, feats, "train").backward()


def test_beam_search_of_width_one_is_greedy_search() -> None:
    from finsta_pl.nn.decoder import CaptionDecoder

    torch.manual_seed(0)
    decoder = CaptionDecoder(vocab_size=12, dim=16, heads=2, layers=1, max_len=8, dropout=0.0).eval()
    memory = torch.randn(3, 5, 16)
    seqs = torch.full((3, 1), 2, dtype=torch.long)
    finished = torch.zeros(3, dtype=torch.bool)
    for _ in range(8):  # the plain greedy loop, written out
        logits = decoder(seqs, memory)[:, -1]
        logits[:, 0] = float("-inf")  # padding is not a word
        token = logits.argmax(-1)
        token = torch.where(finished, torch.zeros_like(token), token)
        seqs = torch.cat([seqs, token[:, None]], 1)
        finished |= token == decoder.end
    greedy = seqs[:, 1:]
    greedy = torch.where(torch.cumsum(greedy == decoder.end, 1) > 0, torch.zeros_like(greedy), greedy)
    out = decoder.generate(memory, start=2, beam_size=1)
    assert torch.equal(out, greedy[:, : out.shape[1]]) and not greedy[:, out.shape[1]:].any()
    wide = decoder.generate(memory, start=2, beam_size=4, length_penalty=0.0)
    assert wide.shape[0] == 3 and not (wide == decoder.end).any()


def test_padded_memory_slots_change_nothing_in_training_or_search() -> None:
    """The caption decoder reads the DSG nodes padded per clip: padded slots (here random junk) must leave the
    teacher-forcing loss and both searches exactly as without them."""
    from finsta_pl.nn.decoder import CaptionDecoder

    torch.manual_seed(0)
    decoder = CaptionDecoder(vocab_size=12, dim=16, heads=2, layers=1, max_len=8, dropout=0.0).eval()
    memory = torch.randn(3, 5, 16)
    padded = torch.cat([memory, torch.randn(3, 4, 16)], 1)
    pad = torch.zeros(3, 9, dtype=torch.bool)
    pad[:, 5:] = True
    ids = torch.tensor([[2, 5, 6, 0], [2, 7, 0, 0], [2, 3, 4, 8]])
    assert torch.allclose(decoder.teacher_forcing_loss(ids, memory), decoder.teacher_forcing_loss(ids, padded, pad),
                          atol=1e-6)
    for beam in (1, 3):
        assert torch.equal(decoder.generate(memory, 2, beam), decoder.generate(padded, 2, beam, memory_pad=pad))


def test_captioning_attends_to_the_dsg_nodes_of_its_own_clip(batches: dict) -> None:
    """With Finsta the decoder memory holds each clip's DSG node states after the host's slots; a clip's
    padding covers exactly the slots beyond its own active nodes."""
    dm, batch = batches["captioning"]
    task = _task("captioning", dm).eval()
    with torch.no_grad():
        feats = task.features(batch)
        memory, pad = task.memory(feats)
    host_slots = 1 + feats.video.tokens.shape[1]
    counts = torch.bincount(batch.dsg.node_graph, minlength=batch.batch_size)
    assert memory.shape[1] == host_slots + int(counts.max()) and pad is not None
    assert torch.equal((~pad[:, host_slots:]).sum(1), counts)
    host_only = _task("captioning", dm, enabled=False)
    assert host_only.memory(host_only.features(batch))[1] is None


def test_caption_scores_without_java_warn_once_and_skip_meteor(monkeypatch: pytest.MonkeyPatch) -> None:
    import finsta_pl.caption_metrics as cm

    monkeypatch.setattr(cm.shutil, "which", lambda name: None)
    monkeypatch.setattr(cm, "_warned", False)
    refs = {"0": ["a red circle moves left", "the red circle moves left"], "1": ["a blue square grows"]}
    with pytest.warns(UserWarning, match="no Java"):
        out = cm.score_captions({"0": "a red circle moves left", "1": ""}, refs)
    assert "meteor" not in out and out["bleu1"] > 0 and out["cider"] > 0


def test_caption_scores_count_each_clip_and_reference_once() -> None:
    from finsta_pl.caption_metrics import CaptionScores
    from finsta_pl.text import WordVocab

    vocab = WordVocab(["[PAD]", "[UNK]", "[CLS]", "a", "red", "circle", "moves", "blue", "square", "grows"])
    ids = lambda text: torch.nn.functional.pad(torch.tensor([vocab.encode(text, 8)[0][1:]]), (0, 8))[:, :8]  # noqa: E731
    m = CaptionScores(vocab.decode, width=8)
    m.update(torch.tensor([0]), ids("a red circle moves"), torch.tensor([0, 0]), torch.tensor([10, 11]),
             torch.cat([ids("a red circle moves"), ids("a circle moves")]))
    m.update(torch.tensor([0]), ids("a red circle moves"), torch.tensor([0]), torch.tensor([10]), ids("a red circle moves"))
    predictions, references = m.texts()
    assert predictions == {"0": "a red circle moves"} and references == {"0": ["a red circle moves", "a circle moves"]}
