"""Scene graphs: TSG rules, DSG from a generated clip, HSG links and the batched container."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from finsta_pl.data_modules.video import decode_clip
from finsta_pl.graphs.container import EDGE, NODE, SceneGraph, collate_graphs
from finsta_pl.graphs.detect import MotionDetector, color_name
from finsta_pl.graphs.dsg import build_dsg
from finsta_pl.graphs.hsg import alignment_targets, build_hsg, link_objects, track_summaries
from finsta_pl.graphs.tsg import build_tsg
from finsta_pl.graphs.ud import RuleParser


def _triples(g: SceneGraph) -> set[tuple[str, str, str]]:
    lab, ei, et = g.node_label, g.edge_index.t().tolist(), g.edge_type.tolist()
    return {(lab[s], next(k for k, v in EDGE.items() if v == t), lab[d]) for (s, d), t in zip(ei, et)}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a small red circle moves left quickly",
         {("circle", "attribute", "small"), ("circle", "attribute", "red"), ("circle", "subject", "move"),
          ("move", "adverb", "left"), ("move", "adverb", "quickly")}),
        ("a blue square approaches a green triangle",
         {("square", "subject", "approach"), ("approach", "object", "triangle"), ("triangle", "attribute", "green")}),
        ("a ball is kicked by a man", {("man", "subject", "kick"), ("kick", "object", "ball")}),
        ("a man is sitting on a couch", {("man", "subject", "sit on"), ("sit on", "object", "couch")}),
        ("two dogs run and jump", {("dog", "attribute", "two"), ("dog", "subject", "run"), ("dog", "subject", "jump")}),
        ("which way does the blue square move?", {("square", "attribute", "blue"), ("square", "subject", "move")}),
        ("a person rides a bike to the left of a car",
         {("person", "subject", "ride"), ("ride", "object", "bike"), ("person", "subject", "ride left of"),
          ("ride left of", "object", "car")}),
        ("the bike to the left of the car is red", {("bike", "subject", "left of"), ("left of", "object", "car")}),
        ("a dog sits in front of the tv", {("dog", "subject", "sit in front of"), ("sit in front of", "object", "tv")}),
        ("a red circle appears on the left", {("circle", "subject", "appear"), ("appear", "adverb", "left")}),
    ],
)
def test_rule_tsg(text: str, expected: set) -> None:
    g = build_tsg(RuleParser().parse(text))
    assert expected <= _triples(g)
    objects = {g.node_label[i] for i, t in enumerate(g.node_type.tolist()) if t == NODE["object"]}
    assert not objects & {"left", "right", "front", "top"}  # place words are relations or directions, not things


def test_tsg_without_nouns_is_one_scene_node() -> None:
    for text in ["", "quickly!", "what is there?"]:
        g = build_tsg(RuleParser().parse(text))
        assert g.num_nodes >= 1
        if g.num_nodes == 1:
            assert g.node_type.tolist() == [NODE["scene"]]


def test_dsg_from_generated_clip_matches_gold(tiny_world: Path) -> None:
    gold = json.loads((tiny_world / "scene_graphs" / "video0.json").read_text())
    frames, idx = decode_clip(tiny_world / "videos" / "video0.mp4", 8)
    dets = MotionDetector()(frames)
    visible = [sum(1 for b in gold["frames"][int(i)]["boxes"]) for i in idx]
    assert [len(d) for d in dets] == visible
    colours = {o["color"] for o in gold["objects"]}
    assert {d.color for frame in dets for d in frame} == colours
    g = build_dsg(dets, idx, frames.shape[1:3])
    assert torch.all(g.node_frame[1:] >= g.node_frame[:-1]), "nodes must be ordered by frame"
    # every track continues along temporal edges: one track per gold object that is visible at the end
    assert len(set(g.node_track[g.node_type == NODE["object"]].tolist())) == len(gold["objects"])


def test_color_names() -> None:
    assert color_name((220, 40, 40)) == "red" and color_name((40, 40, 220)) == "blue"
    assert color_name((128, 128, 128)) == "gray" and color_name((230, 220, 40)) == "yellow"


def test_dsg_empty_and_single_frame() -> None:
    g = build_dsg([[], []], [0, 1], (64, 64))
    assert g.node_type.tolist() == [NODE["scene"], NODE["scene"]]
    frames = np.full((1, 64, 64, 3), 128, np.uint8)
    frames[0, 10:20, 10:20] = (220, 40, 40)
    g1 = build_dsg(MotionDetector()(frames), [0], (64, 64))
    assert (g1.node_type == NODE["object"]).sum() == 1 and g1.num_nodes >= 2


def test_links_and_alignment_targets() -> None:
    tsg = build_tsg(RuleParser().parse("a red square moves left"))
    frames = np.full((4, 64, 64, 3), 128, np.uint8)
    for t in range(4):
        frames[t, 20:30, 40 - 4 * t : 50 - 4 * t] = (220, 40, 40)  # red square moving left
        frames[t, 40:50, 10:20] = (40, 40, 220)  # blue square standing still
    dsg = build_dsg(MotionDetector()(frames), np.arange(4) * 2, (64, 64))
    links = link_objects(tsg, dsg)
    assert len(links) == 1
    tid = links[0][1]
    assert dsg.node_label[(dsg.node_track == tid).nonzero()[0, 0]] == "square"
    osc, ptc = alignment_targets(tsg, dsg, links)
    assert len(osc.anchors) == 1 and len(ptc.anchors) == 1
    assert {dsg.node_label[j] for j in ptc.regions[0]} >= {"square", "move", "left"}
    hsg = build_hsg(tsg, dsg, links)
    assert int((hsg.edge_type == EDGE["crossmodal"]).sum()) == 4  # one per frame of the red track
    # PTC's temporal hard negative: the same track outside the predicate's interval, disjoint from the region.
    frames_of = lambda nodes: {int(dsg.node_frame[j]) for j in nodes}  # noqa: E731
    assert ptc.negatives[0] and not set(ptc.negatives[0]) & set(ptc.regions[0])
    assert not frames_of(ptc.negatives[0]) & frames_of(ptc.regions[0])
    assert {int(dsg.node_track[j]) for j in ptc.negatives[0] if dsg.node_type[j] == NODE["object"]} == {tid}
    assert osc.keys == [f"osc:{tid}"] and osc.negatives == [[]]


def _two_squares():  # noqa: ANN202
    frames = np.full((4, 64, 64, 3), 128, np.uint8)
    for t in range(4):
        frames[t, 20:30, 40 - 4 * t : 50 - 4 * t] = (220, 40, 40)  # red square moving left
        frames[t, 40:50, 10:20] = (40, 40, 220)  # blue square standing still
    return build_dsg(MotionDetector()(frames), np.arange(4) * 2, (64, 64))


def test_generic_nouns_do_not_link_by_guess() -> None:
    dsg = _two_squares()
    parse = lambda text: build_tsg(RuleParser().parse(text))  # noqa: E731
    assert link_objects(parse("an object moves left"), dsg) == []  # was: the lowest track id, score 0.5
    red = link_objects(parse("a red object moves left"), dsg)
    assert len(red) == 1 and "red" in track_summaries(dsg)[red[0][1]][1]  # an agreeing attribute decides


def test_equal_scores_go_to_the_longer_track() -> None:
    frames = np.full((4, 64, 64, 3), 128, np.uint8)
    frames[:, 40:50, 10:20] = (40, 40, 220)  # a blue square all along
    frames[2:, 10:20, 40:50] = (40, 40, 220)  # another blue square, seen in two frames only
    dsg = build_dsg(MotionDetector()(frames), np.arange(4) * 2, (64, 64))
    (_, tid, _), = link_objects(build_tsg(RuleParser().parse("a blue square")), dsg)
    assert int(((dsg.node_track == tid) & (dsg.node_type == NODE["object"])).sum()) == 4


def test_two_text_objects_on_one_track_share_a_region_key() -> None:
    dsg = _two_squares()
    tsg = build_tsg(RuleParser().parse("a red square moves left and the red square grows"))
    links = link_objects(tsg, dsg)
    osc, _ = alignment_targets(tsg, dsg, links)
    assert len(osc.keys) == 2 and osc.keys[0] == osc.keys[1] and osc.regions[0] == osc.regions[1]


def test_previous_in_track_matches_temporal_edges_on_objects() -> None:
    g = collate_graphs([_two_squares(), _two_squares()], lambda s: [len(s)])
    objects = g.node_type == NODE["object"]
    assert torch.equal(g.previous_in_track()[objects], g.previous_node()[objects])
    assert int((g.previous_in_track() >= 0).sum()) == 2 * 2 * 3  # two tracks, three continuations, per graph


def test_collate_offsets_reverse_edges_and_dgl_roundtrip() -> None:
    a = build_tsg(RuleParser().parse("a red circle moves"))
    b = SceneGraph.scene_only(3)
    batch = collate_graphs([a, b], lambda s: [len(s)])
    assert batch.num_nodes == a.num_nodes + 3 and batch.node_graph.tolist() == [0] * a.num_nodes + [1] * 3
    assert batch.edge_index.shape[1] == 2 * (a.edge_index.shape[1] + 2)
    assert batch.previous_node()[a.num_nodes:].tolist() == [-1, a.num_nodes, a.num_nodes + 1]
    back = type(batch).from_dgl(batch.to_dgl())
    assert torch.equal(back.edge_index, batch.edge_index) and torch.equal(back.node_graph, batch.node_graph)


def test_node_drop_keeps_graph_valid() -> None:
    g = build_tsg(RuleParser().parse("a small red circle moves left quickly"))
    dropped = g.drop_nodes(0.5, torch.Generator().manual_seed(0))
    assert 1 <= dropped.num_nodes <= g.num_nodes
    assert dropped.edge_index.numel() == 0 or int(dropped.edge_index.max()) < dropped.num_nodes
    assert g.drop_nodes(1.0).num_nodes == 1
