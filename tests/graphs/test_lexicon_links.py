"""Label linking on real detector classes: caption nouns link to the tracks of the class they name (the shipped
lexicon for COCO, Action Genome and VidVRD labels), and a generic label never links with a high score."""

from __future__ import annotations

import numpy as np
import pytest

from finsta_pl.graphs.detect import Detection
from finsta_pl.graphs.dsg import build_dsg
from finsta_pl.graphs.hsg import link_objects, track_summaries
from finsta_pl.graphs.lexicon import CLASSES, concept, same_concept
from finsta_pl.graphs.tsg import build_tsg
from finsta_pl.graphs.ud import RuleParser


def _dsg(*labels: str):  # noqa: ANN202
    """A 3-frame DSG with one still box per label, side by side (a trained detector's output)."""
    frames = []
    for _ in range(3):
        frames.append([Detection((10 + 30 * k, 10, 30 + 30 * k, 40), label, 0.9, "gray", (128.0, 128.0, 128.0))
                       for k, label in enumerate(labels)])
    return build_dsg(frames, np.arange(3) * 4, (64, 32 * len(labels) + 16))


def _links(text: str, dsg) -> dict[str, tuple[str, float]]:  # noqa: ANN001
    tsg = build_tsg(RuleParser().parse(text))
    tracks = track_summaries(dsg)
    return {tsg.node_label[i]: (tracks[tid][0], score) for i, tid, score in link_objects(tsg, dsg)}


def test_caption_nouns_link_to_the_class_they_name() -> None:
    dsg = _dsg("person", "dog", "couch")
    assert _links("a chef feeds a puppy on the sofa", dsg) == {
        "chef": ("person", 0.9), "puppy": ("dog", 0.9), "sofa": ("couch", 0.9)}
    assert _links("a man and a dog sit on a couch", dsg) == {
        "man": ("person", 0.9), "dog": ("dog", 1.0), "couch": ("couch", 1.0)}


def test_other_datasets_class_names_and_alternatives() -> None:
    dsg = _dsg("domestic_cat", "watercraft", "phone/camera")  # VidVRD, VidVRD, Action Genome
    assert _links("a kitten watches a boat", dsg) == {"kitten": ("domestic_cat", 0.9), "boat": ("watercraft", 0.9)}
    assert _links("a woman takes a phone", dsg) == {"phone": ("phone/camera", 0.9)}


def test_generic_and_unrelated_labels_never_link_high() -> None:
    dsg = _dsg("object", "person")
    assert _links("a rabbit jumps", dsg) == {}  # nothing names a rabbit: no link, least of all to "object"
    assert _links("an object falls", dsg) == {}  # generic on both sides: 0.25, below the threshold
    assert _links("a dog barks", _dsg("cat", "horse")) == {}


@pytest.mark.parametrize("word, expected", [("Puppy", "dog"), ("police officer", "person"), ("swimming pool", None),
                                            ("domestic_cat", "cat"), ("object", None), ("", None)])
def test_concepts(word: str, expected: str | None) -> None:
    assert concept(word) == expected


def test_every_word_names_exactly_one_class() -> None:
    """A word listed under two classes would link to whichever the index saw first: the lists must not overlap."""
    seen: dict[str, str] = {}
    for name, words in CLASSES.items():
        for word in {name, *words}:
            assert seen.setdefault(word, name) == name, f"{word!r} is under {seen[word]!r} and {name!r}"
    assert not same_concept("rabbit", "object") and same_concept("Giant_Panda", "red panda")
