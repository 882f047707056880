"""PTC pairs where the model makes the links (graphs/hsg.py ptc_candidates): one pair per predicate and per
track its subject may link to, each conditioned on that link, so PTC runs on label-free data (issue 22)."""

from __future__ import annotations

import torch

from finsta_pl.graphs.container import NODE
from tests.helpers import tiny_qa_module


def _batch(label_free: bool):  # noqa: ANN202
    return next(iter(tiny_qa_module(label_free).val_dataloader()))


def test_label_free_batches_carry_a_ptc_pair_per_possible_link(tiny_world) -> None:  # noqa: ANN001
    batch = _batch(label_free=True)
    ptc, tsg, dsg = batch.ptc, batch.tsg, batch.dsg
    assert ptc.num_pairs > 0 and batch.osc.num_pairs == 0  # OSC pairs come from the model's links
    assert (ptc.link_object >= 0).all() and (ptc.link_track >= 0).all()
    assert (tsg.node_type[ptc.link_object] == NODE["object"]).all()
    # Each condition's track is one of the text's own clip, and its region is that track's.
    clip = batch.text_sample[ptc.pair_graph]
    boxes = (dsg.node_type == NODE["object"]) & (dsg.node_track >= 0)
    for p in range(ptc.num_pairs):
        track_nodes = boxes & (dsg.node_track == ptc.link_track[p])
        assert bool(track_nodes.any()) and (dsg.node_graph[track_nodes] == clip[p]).all()
        region = set(ptc.region_nodes[ptc.region_seg == p].tolist())
        assert region & set(torch.nonzero(track_nodes).squeeze(1).tolist())
    # Every predicate with a subject gets one candidate per track of its clip.
    per_clip = {int(c): len(set(dsg.node_track[boxes & (dsg.node_graph == c)].tolist())) for c in clip.unique()}
    anchors = ptc.anchor_nodes[torch.cat([torch.ones(1, dtype=torch.bool), ptc.anchor_seg[1:] != ptc.anchor_seg[:-1]])]
    for predicate in anchors.unique().tolist():
        pairs = torch.nonzero(anchors == predicate).squeeze(1)
        assert len(pairs) == per_clip[int(clip[pairs[0]])]
        assert len(set(ptc.link_track[pairs].tolist())) == len(pairs)


def test_label_links_condition_each_pair_on_the_link_it_came_from(tiny_world) -> None:  # noqa: ANN001
    batch = _batch(label_free=False)
    ptc = batch.ptc
    assert ptc.num_pairs > 0
    # The worker's own links: the HSG's cross-modal edges from the subject to its track's boxes.
    hsg_tracks = {(int(o), int(t)) for o, t in zip(ptc.link_object, ptc.link_track)}
    dsg = batch.dsg
    for obj, track in hsg_tracks:
        assert batch.tsg.node_type[obj] == NODE["object"] and bool((dsg.node_track == track).any())
