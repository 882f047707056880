"""Gold object ids on embedded-world batches (data_modules/synthetic/gold.py) and the link scores built on them
(nn/linking.py gold_link_scores): what the alignment diagnostics measure links against (issue 22, point 7)."""

from __future__ import annotations

import json

import torch

from finsta_pl.data_modules import ClipConfig, LoaderConfig, VideoQADataModule
from finsta_pl.data_modules.graph_builder import GraphConfig
from finsta_pl.data_modules.synthetic import WorldConfig
from finsta_pl.data_modules.synthetic.gold import tsg_gold
from finsta_pl.graphs.container import NODE
from finsta_pl.graphs.dsg import DSGConfig
from finsta_pl.graphs.hsg import LinkConfig
from finsta_pl.graphs.parsers import CachedTSGBuilder, make_parser
from tests.helpers import tiny_qa_module
from finsta_pl.nn.linking import gold_link_scores, hsg_link_pairs


def _batch(label_free: bool):  # noqa: ANN202
    dm = tiny_qa_module(label_free)
    return dm, next(iter(dm.val_dataloader()))


def test_every_box_of_the_world_has_its_gold_object(tiny_world) -> None:  # noqa: ANN001
    _, batch = _batch(label_free=True)
    assert batch.gold is not None
    boxes = batch.dsg.node_type == NODE["object"]
    assert (batch.gold.dsg[boxes] >= 0).float().mean() > 0.95  # the motion detector finds the world's shapes
    assert (batch.gold.dsg[~boxes] == -1).all()
    # A track is one object: its boxes carry one gold id.
    for track in torch.unique(batch.dsg.node_track[boxes]).tolist():
        ids = set(batch.gold.dsg[boxes & (batch.dsg.node_track == track)].tolist()) - {-1}
        assert len(ids) == 1
    objects = batch.tsg.node_type == NODE["object"]
    assert (batch.gold.tsg[objects] >= 0).float().mean() > 0.8  # all but "how many objects"
    assert (batch.gold.tsg[~objects] == -1).all()


def test_text_objects_resolve_by_colour_then_unique_shape() -> None:
    objects = [{"id": 0, "color": "red", "shape": "circle"}, {"id": 1, "color": "blue", "shape": "circle"},
               {"id": 2, "color": "green", "shape": "square"}]
    parse = CachedTSGBuilder(make_parser("rule"))

    def gold(text: str) -> list[int]:
        g = parse(text)
        return [int(x) for x, kind in zip(tsg_gold(g, objects), g.node_type.tolist()) if kind == NODE["object"]]

    assert gold("which way does the blue circle move?") == [1]
    assert gold("what color is the square?") == [2]
    assert gold("what color is the circle?") == [-1]  # two circles: the shape names no one object
    assert gold("what shape is the yellow object?") == [-1]  # a colour the clip lacks (a wrong candidate)


def test_label_links_score_perfect_and_shuffled_links_do_not(tiny_world) -> None:  # noqa: ANN001
    _, batch = _batch(label_free=False)
    text_node, dsg_node = hsg_link_pairs(batch.hsg, batch.hsg_source, batch.tsg.num_nodes)
    assert text_node.numel() > 0
    scores = gold_link_scores(text_node, dsg_node, batch.gold, batch.tsg, batch.dsg, batch.text_sample)
    # The labelled detector names the world's colours and shapes: its links are the gold (the oracle arm).
    assert scores["link_precision"] == 1.0 and scores["link_accuracy"] == 1.0 and scores["link_recall"] == 1.0
    # Every link moved to a box of another object of the same clip (where the clip has one): far from the gold.
    boxes = torch.nonzero(batch.dsg.node_type == NODE["object"]).squeeze(1).tolist()
    graph, ids = batch.dsg.node_graph.tolist(), batch.gold.dsg.tolist()

    def elsewhere(d: int) -> int:
        return next((b for b in boxes if graph[b] == graph[d] and ids[b] != ids[d]), d)

    other = torch.tensor([elsewhere(d) for d in dsg_node.tolist()])
    wrong = gold_link_scores(text_node, other, batch.gold, batch.tsg, batch.dsg, batch.text_sample)
    assert wrong["link_precision"] < 0.5 and wrong["link_accuracy"] < 0.5


def test_gold_ids_follow_the_world_files(tiny_world) -> None:  # noqa: ANN001
    dm, batch = _batch(label_free=True)
    first = batch.ids[0]
    video = dm.datasets["val"].specs[0].video
    gold = json.loads((tiny_world / "scene_graphs" / f"{video}.json").read_text())
    ids = set(batch.gold.dsg[(batch.dsg.node_graph == 0) & (batch.gold.dsg >= 0)].tolist())
    assert ids <= {o["id"] for o in gold["objects"]}, first


def test_chance_is_one_over_the_tracks_of_each_clip(tiny_world) -> None:  # noqa: ANN001
    _, batch = _batch(label_free=True)
    text_node, dsg_node = torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    scores = gold_link_scores(text_node, dsg_node, batch.gold, batch.tsg, batch.dsg, batch.text_sample)
    assert scores["link_accuracy"] == 0 and scores["link_recall"] == 0  # no links: nothing right
    tsg, dsg = batch.tsg, batch.dsg
    boxes = (dsg.node_type == NODE["object"]) & (dsg.node_track >= 0)
    expected = []
    for i in torch.nonzero((tsg.node_type == NODE["object"]) & (batch.gold.tsg >= 0)).squeeze(1).tolist():
        clip = int(batch.text_sample[tsg.node_graph[i]])
        in_clip = boxes & (dsg.node_graph == clip)
        if int(batch.gold.tsg[i]) in set(batch.gold.dsg[in_clip].tolist()):
            expected.append(1 / len(set(dsg.node_track[in_clip].tolist())))
    assert abs(float(scores["link_chance"]) - sum(expected) / len(expected)) < 1e-6


def test_grid_cells_on_an_object_are_that_object(tiny_world) -> None:  # noqa: ANN001
    """A tracked 8x8 grid (the other label-free arm) is scored too: a cell whose centre lies on an object is it."""
    dm = VideoQADataModule(synthetic=WorldConfig(num_train=24, num_val=12, num_test=8),
                           clip=ClipConfig(num_frames=4, frame_size=64), loader=LoaderConfig(batch_size=4, num_workers=0),
                           graphs=GraphConfig(detector="grid", detector_args={"grid": 8}, dsg=DSGConfig(class_agnostic=True),
                                              link=LinkConfig(method="embedding")))
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    cells = batch.dsg.node_type == NODE["object"]
    on = batch.gold.dsg[cells] >= 0
    assert 0 < float(on.float().mean()) < 0.5  # a few cells of 64 lie on the 1-3 shapes
