"""Cross-modal links by host embedding similarity, for detectors without labels (HSG, issue point 3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from finsta_pl.data_modules import ClipConfig, LoaderConfig, VideoQADataModule
from finsta_pl.data_modules.graph_builder import GraphConfig
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.graphs.container import EDGE, NODE
from finsta_pl.graphs.hsg import LinkConfig
from finsta_pl.hosts.base import HostConfig
from finsta_pl.nn.finsta import FinstaConfig
from finsta_pl.nn.linking import crossmodal_edges, embedding_links
from finsta_pl.tasks import VideoQATask


def _batch(tiny_world, detector: str, **link):  # noqa: ANN001, ANN202
    dm = VideoQADataModule(synthetic=WorldConfig(num_train=24, num_val=12, num_test=8),
                           clip=ClipConfig(num_frames=4, frame_size=64), loader=LoaderConfig(batch_size=6, num_workers=0),
                           graphs=GraphConfig(detector=detector, link=LinkConfig(**link)))
    dm.setup("fit")
    return dm, next(iter(dm.val_dataloader()))


def _reference(tsg, dsg, text_feat, video_feat, threshold: float, top_k: int) -> set:  # noqa: ANN001
    """Per text object, a loop over the tracks of its sample."""
    links = set()
    for i in torch.nonzero(tsg.node_type == NODE["object"]).squeeze(1).tolist():
        g = int(tsg.node_graph[i])
        boxes = (dsg.node_graph == g) & (dsg.node_type == NODE["object"]) & (dsg.node_track >= 0)
        scored = []
        for track in torch.unique(dsg.node_track[boxes]).tolist():
            nodes = torch.nonzero(boxes & (dsg.node_track == track)).squeeze(1)
            sim = float(F.cosine_similarity(text_feat[i], video_feat[nodes].mean(0), dim=0))
            scored.append((sim, track, tuple(nodes.tolist())))
        scored.sort(key=lambda x: -x[0])
        links |= {(i, nodes) for sim, _, nodes in scored[:top_k] if sim >= threshold}
    return links


@pytest.mark.parametrize("threshold,top_k", [(-1.0, 1), (0.0, 2), (2.0, 1)])
def test_vectorised_links_match_a_loop(tiny_world, threshold: float, top_k: int) -> None:  # noqa: ANN001
    _, batch = _batch(tiny_world, "grid")
    gen = torch.Generator().manual_seed(0)
    text = torch.randn(batch.tsg.num_nodes, 16, generator=gen)
    video = torch.randn(batch.dsg.num_nodes, 16, generator=gen)
    everyone = torch.ones(batch.batch_size, dtype=torch.bool)
    links = embedding_links(batch.tsg, batch.dsg, batch.text_sample, text, video, everyone, threshold, top_k)
    got = {(int(links.text_node[k]), tuple(links.dsg_nodes[links.dsg_link == k].tolist())) for k in range(links.num_links)}
    assert got == _reference(batch.tsg, batch.dsg, text, video, threshold, top_k)
    if threshold < 0:
        assert links.num_links == int((batch.tsg.node_type == NODE["object"]).sum())  # every object linked once
    assert (batch.tsg.node_graph[links.text_node] == links.link_graph).all()


def test_label_free_detector_asks_the_model_for_links(tiny_world) -> None:  # noqa: ANN001
    _, labelled = _batch(tiny_world, "motion")
    assert labelled.embedding_link is None  # the motion detector names shapes: label links in the worker
    _, batch = _batch(tiny_world, "grid", embedding_threshold=-1.0)
    assert batch.embedding_link is not None and bool(batch.embedding_link.samples.all())
    _, cross_types = batch.hsg.edges_of(("crossmodal",))
    assert cross_types.numel() == 0  # nothing linked in the worker: "region" says nothing about the text


def test_embedding_links_feed_the_hsg_and_osc(tiny_world) -> None:  # noqa: ANN001
    dm, batch = _batch(tiny_world, "grid", embedding_threshold=-1.0)
    torch.manual_seed(0)
    model = VideoQATask(data_info=dm.info(), host=HostConfig(dim=32, heads=2, video_layers=1, text_layers=1),
                        finsta=FinstaConfig(heads=2)).eval()
    seen = {}
    original = model.finsta._recurrent

    def spy(blocks, g, h, kinds, active, stgd, extra=None):  # noqa: ANN001, ANN202
        if blocks is model.finsta.hsg_blocks:
            seen["extra"] = extra
        return original(blocks, g, h, kinds, active, stgd, extra)

    model.finsta._recurrent = spy
    with torch.no_grad():
        feats = model.features(batch)
    index, types, keep = seen["extra"]
    assert keep is None  # threshold links are selected (learned ones masked: tests/nn/test_learned_links_sync.py)
    objects = int((batch.tsg.node_type == NODE["object"]).sum())
    assert index.shape[1] > 2 * objects and set(types.tolist()) == {EDGE["crossmodal"], EDGE["crossmodal"] + 7}
    # Each edge joins a TSG object to a DSG object node of the same sample (in HSG numbering).
    hsg = batch.hsg
    src, dst = index[:, types == EDGE["crossmodal"]]
    assert (hsg.node_graph[src] == hsg.node_graph[dst]).all()
    assert (hsg.node_type[src] == NODE["object"]).all() and (hsg.node_type[dst] == NODE["object"]).all()
    assert (batch.hsg_source[src] < batch.tsg.num_nodes).all() and (batch.hsg_source[dst] >= batch.tsg.num_nodes).all()
    assert torch.isfinite(feats.finsta.losses["osc"])  # OSC has pairs although the worker linked nothing

    model.finsta._recurrent = original
    off = VideoQATask(data_info=dm.info(), host=HostConfig(dim=32, heads=2, video_layers=1, text_layers=1),
                      finsta=FinstaConfig(heads=2, crossmodal_edges=False)).eval()
    off.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(off.features(batch).finsta.joint, feats.finsta.joint)  # the switch removes them


def test_edges_land_on_the_right_hsg_nodes(tiny_world) -> None:  # noqa: ANN001
    _, batch = _batch(tiny_world, "grid")
    video = torch.randn(batch.dsg.num_nodes, 8)
    text = torch.randn(batch.tsg.num_nodes, 8)
    links = embedding_links(batch.tsg, batch.dsg, batch.text_sample, text, video, torch.ones(batch.batch_size, dtype=torch.bool), -1.0, 1)
    index, _ = crossmodal_edges(links, batch.tsg, batch.dsg, batch.hsg, batch.text_sample)
    n = links.dsg_nodes.numel()
    torch.testing.assert_close(batch.hsg_source[index[0, :n]], links.text_node[links.dsg_link])
    torch.testing.assert_close(batch.hsg_source[index[1, :n]], batch.tsg.num_nodes + links.dsg_nodes)


def test_samples_without_tracks_or_flags_get_no_links(tiny_world) -> None:  # noqa: ANN001
    from dataclasses import replace

    _, batch = _batch(tiny_world, "grid")
    text, video = torch.randn(batch.tsg.num_nodes, 8), torch.randn(batch.dsg.num_nodes, 8)
    none = embedding_links(batch.tsg, batch.dsg, batch.text_sample, text, video, torch.zeros(batch.batch_size, dtype=torch.bool), -1.0, 1)
    assert none.num_links == 0 and none.dsg_nodes.numel() == 0
    # Sample 0 loses its tracks: its objects find nothing, the other samples still link, never across samples.
    dsg = replace(batch.dsg, node_track=torch.where(batch.dsg.node_graph == 0, -1, batch.dsg.node_track))
    links = embedding_links(batch.tsg, dsg, batch.text_sample, text, video, torch.ones(batch.batch_size, dtype=torch.bool), -1.0, 1)
    assert links.num_links > 0 and not (links.link_graph == 0).any()
    assert (dsg.node_graph[links.dsg_nodes] == links.link_graph[links.dsg_link]).all()


def test_label_embedding_links_name_the_same_thing(tiny_world) -> None:  # noqa: ANN001
    """``label_embedding``: caption nouns and detector labels compared as host text embeddings (the built-in
    host: mean word embeddings).  A noun that a track's label spells exactly is linked to such a track."""
    from finsta_pl.nn.finsta import _label_link_features

    _, batch = _batch(tiny_world, "motion", method="label_embedding", embedding_threshold=0.999)
    request = batch.embedding_link
    assert request is not None and bool(request.by_label.all())  # the motion detector names its shapes
    task = VideoQATask(data_info=_batch(tiny_world, "motion")[0].info(), host=HostConfig(dim=32, heads=2, video_layers=1,
                       text_layers=1), finsta=FinstaConfig(heads=2))
    dummy_t = torch.zeros(batch.tsg.num_nodes, 32)
    dummy_v = torch.zeros(batch.dsg.num_nodes, 32)
    text, video = _label_link_features(task.host, batch.tsg, batch.dsg, batch.text_sample, request.by_label, dummy_t, dummy_v)
    links = embedding_links(batch.tsg, batch.dsg, batch.text_sample, text, video, request.samples, 0.999, 1)
    tsg_labels = [label for g in batch.tsg.labels for label in g]
    dsg_labels = [label for g in batch.dsg.labels for label in g]
    assert links.num_links > 0
    for k in range(links.num_links):
        track_labels = {dsg_labels[j] for j in links.dsg_nodes[links.dsg_link == k].tolist()
                        if batch.dsg.node_type[j] == NODE["object"]}
        assert tsg_labels[int(links.text_node[k])] in track_labels
