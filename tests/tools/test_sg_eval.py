"""``finsta-pl sg-eval``: metric functions on hand-made cases, and one small end-to-end run."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

from finsta_pl.errors import BadSampleError
from finsta_pl.graphs.tsg import build_tsg
from finsta_pl.graphs.ud import RuleParser
from finsta_pl.tools import sg_eval
from finsta_pl.tools.sg_eval import Counts, canonical_spatial, count_matches, gold_motion, match_boxes, track_purity


def test_counts_prf() -> None:
    assert Counts(3, 1, 2).prf() == pytest.approx((0.75, 0.6, 2 * 0.75 * 0.6 / 1.35))
    assert Counts(0, 0, 0).prf() == (1.0, 1.0, 1.0)  # nothing expected, nothing predicted
    assert Counts(0, 2, 0).prf() == (0.0, 1.0, 0.0)
    assert Counts(1, 0, 1) + Counts(1, 2, 0) == Counts(2, 2, 1)


def test_count_matches_is_a_multiset_overlap() -> None:
    assert count_matches(["a", "a", "b"], ["a", "c"]) == Counts(1, 2, 1)
    # Allowed predictions ("true but unnamed") are not false positives; they never become true positives.
    assert count_matches(["a", "b", "x"], ["a"], ignore=["x"]) == Counts(1, 1, 0)


def test_match_boxes_hungarian_with_iou_threshold() -> None:
    gold = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    pred = np.array([[21, 21, 31, 31], [0, 0, 10, 9], [40, 40, 50, 50], [0, 0, 4, 4]])
    assert sorted(match_boxes(pred, gold)) == [(0, 1), (1, 0)]  # (3, 0) has IoU 0.16, (2, *) none
    assert match_boxes(np.zeros((0, 4)), gold) == []


def test_canonical_spatial_directions() -> None:
    assert canonical_spatial(1, "right of", 2) == canonical_spatial(2, "left of", 1) == (2, "left of", 1)
    assert canonical_spatial(3, "below", 4) == (4, "above", 3)
    assert canonical_spatial(5, "near", 2) == canonical_spatial(2, "near", 5) == (2, "near", 5)
    assert canonical_spatial(None, "near", 2) == canonical_spatial(2, "near", None)


def test_track_purity() -> None:
    assert track_purity({0: [1, 1, 2], 1: [3]}) == pytest.approx(0.75)
    assert track_purity({}) == 1.0


def test_tsg_scoring_with_locative_and_pro_verb_conventions() -> None:
    parse = RuleParser().parse
    gold = {"objects": [{"id": 0, "name": "circle", "attributes": ["green", "large"]}],
            "relations": [{"subject": 0, "predicate": "appear", "adverbs": ["right"]}]}
    pred = sg_eval.tsg_tuples(build_tsg(parse("a large green circle appears on the right")))
    scores = sg_eval.score_tsg(pred, sg_eval.gold_text_tuples(gold))
    assert all(c.prf()[2] == 1.0 for c in scores.values()), scores  # "on the right" folded into an adverb
    question = sg_eval.tsg_tuples(build_tsg(parse("what does the red square do?")))
    assert not question["relations"] and dict(question["objects"]) == {"square": 1}
    wrong = sg_eval.tsg_tuples(build_tsg(parse("a red square approaches a blue circle")))
    gold2 = {"objects": [{"id": 0, "name": "square", "attributes": ["red"]},
                         {"id": 1, "name": "circle", "attributes": []}],
             "relations": [{"subject": 1, "predicate": "approach", "object": 0, "adverbs": []}]}
    got = sg_eval.score_tsg(wrong, sg_eval.gold_text_tuples(gold2))
    assert got["relations"] == Counts(0, 1, 1) and got["attributes"] == Counts(1, 1, 0)


def test_gold_motion_requires_visible_effects_and_allows_implied_ones() -> None:
    events = [{"subject": 0, "predicate": "approach", "object": 1, "start": 0, "end": 15},
              {"subject": 1, "predicate": "stay", "start": 0, "end": 15},
              {"subject": 2, "predicate": "grow", "start": 0, "end": 15},
              {"subject": 3, "predicate": "appear", "start": 5, "end": 5}]
    before = {0: [0, 0, 10, 10], 1: [40, 0, 50, 10], 2: [20, 30, 30, 40]}
    after = {0: [4, 0, 14, 10], 1: [40, 0, 50, 10], 2: [20, 30, 30, 40], 3: [0, 50, 5, 55]}
    need, allowed = gold_motion(events, 3, 5, before, after)
    assert sorted(need, key=repr) == [(0, "approach", 1), (3, "appear", None)]
    assert (0, "move", "right") in allowed  # the approaching object moves: true, but not what the gold names
    assert (2, "grow", None) in allowed  # growing, but not visibly between these two frames
    assert (1, "move", "right") not in allowed and (1, "move", "left") not in allowed


def test_end_to_end_on_a_tiny_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from finsta_pl.data_modules.synthetic import WorldConfig, ensure_world

    root = ensure_world(WorldConfig(num_train=8, num_val=0, num_test=0), root=tmp_path / "worlds")
    out = tmp_path / "metrics.json"
    assert sg_eval.main(["--root", str(root), "--parser", "rule", "--detector", "motion", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "tsg_relations" in table and "dsg_objects_box" in table and "dsg_track_purity" in table
    result = json.loads(out.read_text())
    assert result["videos"] == 8
    metrics = result["metrics"]
    assert metrics["tsg_relations"]["f1"] >= 0.95
    assert metrics["dsg_objects_box"]["f1"] >= 0.8
    assert 0.0 <= metrics["dsg_relations"]["f1"] <= 1.0 and 0.5 <= result["dsg_track_purity"] <= 1.0


def test_missing_world_is_a_clear_error(tmp_path: Path) -> None:
    from finsta_pl.errors import DataNotFoundError

    with pytest.raises(DataNotFoundError, match="scene_graphs"):
        sg_eval.main(["--root", str(tmp_path)])


def test_text_gold_scores_parsers_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from finsta_pl.tools.text_gold import evaluate_text_gold, read_text_gold, sgp_tuples

    gold = tmp_path / "gold.jsonl"
    lines = [{"id": "a", "style": "msrvtt", "text": "a man is riding a brown horse",
              "objects": [{"id": 0, "name": "man", "attributes": []}, {"id": 1, "name": "horse", "attributes": ["brown"]}],
              "relations": [{"subject": 0, "predicate": "ride", "object": 1, "adverbs": []}]},
             {"id": "b", "style": "qa", "text": "who slowly opens the door?",
              "objects": [{"id": 0, "name": "door", "attributes": []}],
              "relations": [{"subject": None, "predicate": "open", "object": 0, "adverbs": ["slowly"]}]}]
    gold.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = evaluate_text_gold(gold, ["rule"])
    rule = result["scores"]["rule"]
    assert result["sentences"] == 2 and result["styles"] == ["msrvtt", "qa"]
    assert rule["msrvtt"]["relations"]["tp"] == 1 and rule["all"]["objects"]["f1"] == 1.0
    assert sg_eval.main(["--text-gold", str(gold), "--parsers", "rule,spacy"]) == 0
    assert "relations" in capsys.readouterr().out
    converted = sgp_tuples({"entities": [
        {"lemma_head": "Ring", "modifiers": [{"dep": "compound", "lemma_span": "boxing", "span": "boxing"}]},
        {"lemma_head": "man", "modifiers": [{"dep": "nummod", "lemma_span": "two", "span": "two"},
                                            {"dep": "det", "lemma_span": "a", "span": "a"}]}],
        "relations": [{"subject": 1, "object": 0, "lemma_relation": "in"}]})
    assert converted["objects"] == {"boxing ring": 1, "man": 1}
    assert converted["attributes"] == {("man", "two"): 1} and converted["relations"] == {("man", "in", "boxing ring"): 1}
    gold.write_text(json.dumps({**lines[0], "relations": [{"subject": 5, "predicate": "x", "object": None}]}) + "\n")
    with pytest.raises(BadSampleError, match=r"gold.jsonl:1: malformed gold line"):
        read_text_gold(gold)


def test_the_repository_gold_set_is_valid_and_large_enough() -> None:
    from finsta_pl.tools.text_gold import read_text_gold

    gold = read_text_gold(Path(__file__).parents[1] / "data" / "tsg_gold" / "gold.jsonl")
    styles = collections.Counter(item["style"] for item in gold)
    assert len(gold) >= 150 and set(styles) == {"msrvtt", "qa", "activitynet", "lsmdc"}
    assert len({item["id"] for item in gold}) == len(gold)


def test_tsg_quality_on_human_text_meets_its_targets() -> None:
    """The issue's targets on the hand-written gold set: relation F1 >= 0.85 (spaCy) and >= 0.75 (rules),
    adverb F1 >= 0.8, and clearly above SceneGraphParser when it is installed."""
    from finsta_pl.tools.text_gold import SCENE_GRAPH_PARSER, evaluate_text_gold, scene_graph_parser_available

    parsers = ["rule", "spacy"] + ([SCENE_GRAPH_PARSER] if scene_graph_parser_available() else [])
    scores = evaluate_text_gold(Path(__file__).parents[1] / "data" / "tsg_gold" / "gold.jsonl", parsers)["scores"]
    f1 = {p: {m: v["f1"] for m, v in scores[p]["all"].items()} for p in parsers}
    assert f1["spacy"]["relations"] >= 0.85 and f1["rule"]["relations"] >= 0.75, f1
    assert f1["spacy"]["adverbs"] >= 0.8 and f1["rule"]["adverbs"] >= 0.8, f1
    if SCENE_GRAPH_PARSER in f1:
        assert f1["spacy"]["relations"] >= f1[SCENE_GRAPH_PARSER]["relations"] + 0.3, f1


def test_stanza_resources_dir_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from finsta_pl.graphs.parsers import stanza_model_dir

    for processor in ("tokenize", "pos", "lemma", "depparse"):
        (tmp_path / "en" / processor).mkdir(parents=True)
        (tmp_path / "en" / processor / "default.pt").write_bytes(b"")
    (tmp_path / "resources.json").write_text("{}")
    monkeypatch.setenv("STANZA_RESOURCES_DIR", str(tmp_path))
    assert stanza_model_dir("en") == tmp_path
    monkeypatch.setenv("STANZA_RESOURCES_DIR", str(tmp_path / "empty"))
    assert stanza_model_dir("en") is None
