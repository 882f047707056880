"""Label-free links that train (issue 22, point 2): with ``learned_links`` a label-free run links every text
object from the first step, at the shipped link settings, its match improves with training, and the link loss
reaches the host's own features."""

from __future__ import annotations

import torch

from benchmarks.workload import TINY_CONFIGS, build_task, train_batch

EMBEDDING = ["--data.init_args.graphs.link.method=embedding"]


def _task(learned: bool):  # noqa: ANN202
    extra = ["--model.init_args.finsta.learned_links=true"] if learned else []
    model, dm = build_task(["experiments/videoqa.yaml", *TINY_CONFIGS], EMBEDDING + extra, batch_size=6)
    return model, train_batch(dm)


def test_learned_links_form_from_the_first_step_at_the_shipped_settings(tiny_world) -> None:  # noqa: ANN001
    model, batch = _task(learned=True)
    assert batch.embedding_link is not None and batch.embedding_link.threshold == 0.2  # the shipped threshold
    out = model.features(batch).finsta
    assert float(out.stats["links_per_object"]) > 0 and out.stats["osc_pairs"] > 0
    assert float(out.losses["link"]) > 0


def test_link_loss_reaches_the_host_features(tiny_world) -> None:  # noqa: ANN001
    model, batch = _task(learned=True)
    host, finsta = model.host, model.finsta
    video = host.encode_video(batch.frames)
    text = host.encode_text(batch.text_ids)
    video.maps.retain_grad()
    text.tokens.retain_grad()
    out = finsta(batch, host, video, text, host.fuse(video.select(batch.text_sample), text))
    out.losses["link"].backward()
    assert float(text.tokens.grad.abs().sum()) > 0 and float(video.maps.grad.abs().sum()) > 0


def test_the_match_trains(tiny_world) -> None:  # noqa: ANN001
    """The matcher's own parameters fit the batch (its loss halves on fixed host features).  Whether the links
    it picks are the right tracks is measured against the world's gold on a real fit
    (tests/tasks/test_label_free_fit.py, ``align_link_accuracy``)."""
    torch.manual_seed(0)
    model, batch = _task(learned=True)
    matcher, finsta = model.finsta.link_matcher, model.finsta
    with torch.no_grad():  # fixed host features: only the match trains here
        video = model.host.encode_video(batch.frames)
        text = model.host.encode_text(batch.text_ids)
        span = finsta._tsg_features(batch, model.host, text, None)[1]
        roi = finsta._dsg_features(batch.dsg, model.host, video, None)[1]
    request = batch.embedding_link
    opt = torch.optim.Adam(matcher.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        links, loss = matcher(batch.tsg, batch.dsg, batch.text_sample, span, roi, request.samples, 1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        assert links.num_links == int(((batch.tsg.node_type == 1) & request.samples[batch.tsg.node_graph]).sum())
    assert losses[-1] < 0.5 * losses[0]


def test_class_agnostic_arm_has_no_label_words(tiny_world) -> None:  # noqa: ANN001
    from finsta_pl.graphs.detection import HUE_NAMES

    agnostic = ["--data.init_args.graphs.detector_args={shape_labels: false}",
                "--data.init_args.graphs.dsg.class_agnostic=true", "--model.init_args.finsta.learned_links=true",
                "--model.init_args.finsta.dsg_label_words=false"]
    model, dm = build_task(["experiments/videoqa.yaml", *TINY_CONFIGS], agnostic, batch_size=6)
    batch = train_batch(dm)
    words = {w for labels in batch.dsg.labels for label in labels for w in label.split()}
    assert words <= {"object", "relation", "scene"}, words  # no colour, shape, direction or speed word
    assert not words & {name for _, name in HUE_NAMES}
    assert batch.embedding_link is not None  # nothing to compare labels with: the model links
    out = model.features(batch).finsta
    assert float(out.stats["links_per_object"]) > 0 and "link" in out.losses
    model.eval()  # no dropout between the two calls
    # Node features ignore the DSG's words: scrambling them changes nothing.
    feats = model.finsta._dsg_features(batch.dsg, model.host, model.host.encode_video(batch.frames), None)[0]
    batch.dsg.node_words = torch.randint(1, 50, batch.dsg.node_words.shape)
    again = model.finsta._dsg_features(batch.dsg, model.host, model.host.encode_video(batch.frames), None)[0]
    torch.testing.assert_close(feats, again)


def test_label_free_ptc_pairs_follow_the_models_links(tiny_world) -> None:  # noqa: ANN001
    """PTC runs on label-free data: of the worker's candidate pairs (one per predicate and possible track), the
    ones whose (subject, track) link the model made are positives, and only those."""
    from finsta_pl.nn.finsta import _made_links

    model, dm = build_task(["experiments/videoqa_label_free.yaml", *TINY_CONFIGS], [], batch_size=12)
    batch = train_batch(dm)
    out = model.features(batch).finsta
    ptc = batch.ptc
    assert ptc.num_pairs > 0 and float(out.stats["ptc_pairs"]) > 0
    # Recompute the links the model made and check the count against the candidates' conditions.
    host, finsta = model.host, model.finsta
    with torch.no_grad():
        video, text = host.encode_video(batch.frames), host.encode_text(batch.text_ids)
        span = finsta._tsg_features(batch, host, text, None)[1]
        roi = finsta._dsg_features(batch.dsg, host, video, None)[1]
        links, _ = finsta.link_matcher(batch.tsg, batch.dsg, batch.text_sample, span, roi,
                                          batch.embedding_link.samples, 1)
    linked = {(int(links.text_node[k]), int(links.track[k])) for k in range(links.num_links)}
    made = _made_links(ptc, links, batch.embedding_link.samples, batch.dsg.node_track)
    expected = [(int(o), int(t)) in linked for o, t in zip(ptc.link_object, ptc.link_track)]
    assert made.tolist() == expected
    assert float(out.stats["ptc_pairs"]) == sum(expected) < ptc.num_pairs  # not every candidate


def test_label_free_osc_and_ptc_reach_the_host_features(tiny_world) -> None:  # noqa: ANN001
    """On label-free data both alignment losses are non-zero and send gradient into the host's own text tokens
    and frame features (not only into the graph streams)."""
    model, dm = build_task(["experiments/videoqa_label_free.yaml", *TINY_CONFIGS], [], batch_size=12)
    batch = train_batch(dm)
    host, finsta = model.host, model.finsta
    for name in ("osc", "ptc"):
        video, text = host.encode_video(batch.frames), host.encode_text(batch.text_ids)
        video.maps.retain_grad()
        text.tokens.retain_grad()
        out = finsta(batch, host, video, text, host.fuse(video.select(batch.text_sample), text))
        assert float(out.stats[f"{name}_pairs"]) > 0 and float(out.losses[name]) > 0, name
        out.losses[name].backward()
        assert float(text.tokens.grad.abs().sum()) > 0 and float(video.maps.grad.abs().sum()) > 0, name


def test_regions_from_the_fusion_tokens(tiny_world) -> None:  # noqa: ANN001
    """``finsta.regions: tokens`` pools DSG nodes from the token grid the host's fusion reads: the alignment's
    gradient then reaches those tokens directly.  A host without a token grid is refused by name."""
    import pytest

    from finsta_pl.nn.finsta import FinstaConfig, FinstaStreams, _roi_pool

    model, dm = build_task(["experiments/videoqa_label_free.yaml", *TINY_CONFIGS],
                           ["--model.init_args.finsta.regions=tokens", "--model.init_args.host.patch_grid=8"],
                           batch_size=12)
    batch = train_batch(dm)
    host, finsta = model.host, model.finsta
    video, text = host.encode_video(batch.frames), host.encode_text(batch.text_ids)
    video.tokens.retain_grad()
    roi = finsta._dsg_features(batch.dsg, host, video, None)[1]
    is_obj = (batch.dsg.node_type == 1).to(roi.dtype)
    assert torch.equal(roi, _roi_pool(host.token_grid(video), batch.dsg, is_obj))
    out = finsta(batch, host, video, text, host.fuse(video.select(batch.text_sample), text))
    out.losses["osc"].backward()
    assert float(video.tokens.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="no token grid|has none"):
        FinstaStreams(FinstaConfig(regions="tokens"), _GridlessHost(host.dim))
    with pytest.raises(ValueError, match="maps' or 'tokens"):
        FinstaConfig(regions="stem")


class _GridlessHost(torch.nn.Module):
    """The least a host needs for FinstaStreams' constructor, without a token grid."""

    has_token_grid = False

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
