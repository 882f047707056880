"""Clean alignment pairs (issue 22, point 4): only true texts make OSC/PTC positives, wrong ones stay as
negatives, and anchors of one concept in one clip are never each other's negatives, whichever text they come from."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from finsta_pl.batch import FinstaBatch, Sample, SampleText, TextGraphs, collate_samples
from finsta_pl.graphs.container import SceneGraph
from finsta_pl.graphs.detect import MotionDetector
from finsta_pl.graphs.dsg import build_dsg
from finsta_pl.graphs.hsg import alignment_targets, build_hsg, link_objects
from finsta_pl.graphs.parsers import RuleParser
from finsta_pl.graphs.tsg import build_tsg
from finsta_pl.nn.objectives import _concept_keys
from finsta_pl.nn.losses import info_nce


def _clip() -> tuple[np.ndarray, SceneGraph]:
    frames = np.full((4, 64, 64, 3), 128, np.uint8)
    for t in range(4):
        frames[t, 10:20, 5 + 8 * t:15 + 8 * t] = (220, 40, 40)  # a red square moving right
        frames[t, 40:52, 40:52] = (40, 40, 220)  # a blue square standing still
    return frames, build_dsg(MotionDetector()(frames), np.arange(4) * 2, (64, 64))


def _sample(clip_id: str, texts: list[str]) -> Sample:
    frames, dsg = _clip()
    out = []
    for k, t in enumerate(texts):
        tsg = build_tsg(RuleParser().parse(t))
        links = link_objects(tsg, dsg)
        osc, ptc = alignment_targets(tsg, dsg, links)
        out.append(SampleText([k + 1], TextGraphs(tsg, build_hsg(tsg, dsg, links), osc, ptc)))
    return Sample(clip_id, frames, out, dsg, {"label": 0, "index": 0})


def _vocab(label: str) -> list[int]:
    return [sum(map(ord, w)) % 997 + 1 for w in label.split()]


def _batch() -> FinstaBatch:
    # Two candidates of one question (both name the red square) and a caption of another clip.
    return collate_samples([_sample("clip-a", ["the red square moves right", "the red square moves left"]),
                            _sample("clip-b", ["the red square moves right"])], _vocab)


def test_region_keys_name_the_clip_not_the_text() -> None:
    b = _batch()
    osc = b.osc
    first, second = (osc.pair_graph == 0).nonzero()[0, 0], (osc.pair_graph == 1).nonzero()[0, 0]
    assert osc.region_key[first] == osc.region_key[second]  # one track, seen from two candidates of one clip
    other = (osc.pair_graph == 2).nonzero()[0, 0]
    assert osc.region_key[other] != osc.region_key[first]  # the same words in another clip: another region


def test_concept_keys_are_equal_for_one_concept_in_one_clip_only() -> None:
    b = _batch()
    keys = _concept_keys(b.osc, b.tsg, b.clip_key[b.text_sample])
    by_text = {int(g): int(k) for g, k in zip(b.osc.pair_graph, keys)}
    assert by_text[0] == by_text[1]  # "red square" twice in clip-a
    assert by_text[0] != by_text[2]  # and once in clip-b
    ptc = _concept_keys(b.ptc, b.tsg, b.clip_key[b.text_sample])
    moves = {int(g): int(k) for g, k in zip(b.ptc.pair_graph, ptc)}
    if 0 in moves and 1 in moves:  # "moves right" and "moves left" are different concepts
        assert moves[0] != moves[1]


def test_same_concept_is_not_a_negative() -> None:
    a = torch.eye(4)[:3]
    p = torch.eye(4)[[0, 1, 3]]
    scale = torch.tensor(5.0)
    plain = info_nce(a, p, scale, keys=torch.tensor([1, 2, 3]))
    # Pairs 0 and 2 are the same concept: neither is the other's negative, although their regions differ.
    concept = info_nce(a, p, scale, keys=(torch.tensor([1, 2, 3]), torch.tensor([9, 8, 9])))
    assert concept < plain


def test_false_texts_make_no_positive_but_stay_negatives() -> None:
    g = torch.Generator().manual_seed(0)
    a, p = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    scale = torch.tensor(3.0)
    weights = torch.tensor([True, False, True, False])
    got = info_nce(a, p, scale, weights=weights)
    an, pn = F.normalize(a), F.normalize(p)
    logits = scale.exp() * an @ pn.t()
    rows = weights.nonzero().squeeze(1)
    expected = (F.cross_entropy(logits[rows], rows) + F.cross_entropy(logits.t()[rows], rows)) / 2
    torch.testing.assert_close(got, expected)
    # A false pair's anchor still pushes on the others: change it and the loss moves.
    a2 = a.clone()
    a2[1] = p[0]
    assert not torch.allclose(info_nce(a2, p, scale, weights=weights), got)


def test_tasks_name_their_true_texts() -> None:
    from finsta_pl.tasks.inference import VideoLanguageInferenceTask
    from finsta_pl.tasks.multiple_choice import MultipleChoiceQATask

    b = _batch()
    b.targets["label"] = torch.tensor([1, 0])
    mc = MultipleChoiceQATask.true_texts(None, b)  # the method reads the batch only
    assert mc.tolist() == [False, True, True]
    b.text_targets["label"] = torch.tensor([1, 0, 1])
    assert VideoLanguageInferenceTask.true_texts(None, b).tolist() == [True, False, True]


def test_alignment_stats_show_that_it_runs(tiny_world) -> None:  # noqa: ANN001
    from benchmarks.workload import TINY_CONFIGS, build_task, train_batch

    model, dm = build_task(["experiments/mcqa.yaml", *TINY_CONFIGS], batch_size=6)
    batch = train_batch(dm)
    stats = model.features(batch).finsta.stats
    true = model.true_texts(batch)
    assert int(true.sum()) == batch.batch_size  # one right candidate per clip
    assert 0 < stats["osc_pairs"] <= batch.osc.num_pairs  # only the right candidates' pairs are positives
    assert 0.0 <= float(stats["osc_top1"]) <= 1.0 and float(stats["links_per_object"]) > 0
