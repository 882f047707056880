"""Parser backends: spaCy (offline model) mapped to UD, stanza via hand-written CoNLL-U, ``auto``, the TSG cache."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from finsta_pl.graphs import parsers
from finsta_pl.graphs.parsers import CachedTSGBuilder, StanzaParser, make_parser, stanza_document_to_ud
from finsta_pl.graphs.tsg import build_tsg
from finsta_pl.graphs.ud import RuleParser, UDToken
from finsta_pl.tools.sg_eval import tsg_tuples

# Sentences both backends get right: passive, prepositions (obl and nmod), conjunctions, adverbs, do-questions.
AGREED = [
    "the red ball was pushed by a tall man",
    "a cat sits on a mat",
    "a dog with a red collar jumps over the fence",
    "a cat and a dog run quickly",
    "a girl holds a cup and a plate",
    "a small red circle moves left slowly",
    "the yellow square approaches the blue circle quickly",
    "a large green circle appears on the right",
    "which way does the red circle move?",
    "a man stands to the left of a car",
    "a dog sits in front of the tv",
]


@pytest.fixture(scope="module")
def spacy_parser() -> parsers.SpacyParser:
    """The spaCy backend on the offline English model (skipped where none is installed)."""
    try:
        return parsers.SpacyParser()
    except (ImportError, RuntimeError) as exc:
        pytest.skip(f"no spaCy model: {exc}")


def _triples(ud: list[list[UDToken]]) -> dict[str, dict]:
    return {k: dict(v) for k, v in tsg_tuples(build_tsg(ud)).items()}


@pytest.mark.parametrize("text", AGREED)
def test_spacy_gives_the_rule_backends_triples(spacy_parser: parsers.SpacyParser, text: str) -> None:
    assert _triples(spacy_parser.parse(text)) == _triples(RuleParser().parse(text))


def test_spacy_ud_structure(spacy_parser: parsers.SpacyParser) -> None:
    text = "The ball was kicked by a boy. A cat on a mat is red."
    first, second = spacy_parser.parse(text)
    for sent in (first, second):  # offsets index the whole text, heads stay inside the sentence
        assert all(text[t.start : t.end] == t.text and 0 <= t.head <= len(sent) for t in sent)
    rel = {t.text: (t.deprel, t.head) for t in first}
    assert rel["ball"][0] == "nsubj:pass" and rel["was"][0] == "aux:pass"
    assert rel["boy"] == ("obl:agent", 4) and rel["by"] == ("case", 7)
    rel2 = {t.text: (t.deprel, t.head) for t in second}
    assert rel2["mat"][0] == "nmod" and rel2["on"][0] == "case"  # prep + pobj under a noun
    assert rel2["red"][0] == "root" and rel2["is"] == ("cop", 7)  # UD copula: the adjective heads
    graph = _triples([second])
    assert ("cat", "red") in graph["attributes"] and ("cat", "on", "mat") in graph["relations"]


def test_spacy_repairs_noun_verb_confusions(spacy_parser: parsers.SpacyParser) -> None:
    # The small model reads "moves" as a noun and "square" as an adjective here; the repair restores the verb.
    for text in ("a large blue square moves down slowly", "how does the blue square move?", "a green square moves up"):
        assert ("square", "move", None) in _triples(spacy_parser.parse(text))["relations"], text


CONLLU = """# text = The ball was kicked by a boy.
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tball\tball\tNOUN\tNN\t_\t4\tnsubj:pass\t_\t_
3\twas\tbe\tAUX\tVBD\t_\t4\taux:pass\t_\t_
4\tkicked\tkick\tVERB\tVBN\t_\t0\troot\t_\t_
5\tby\tby\tADP\tIN\t_\t7\tcase\t_\t_
6\ta\ta\tDET\tDT\t_\t7\tdet\t_\t_
7\tboy\tboy\tNOUN\tNN\t_\t4\tobl:agent\t_\tSpaceAfter=No
8\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

# text = A red cat sits on a mat quickly.
1\tA\ta\tDET\tDT\t_\t3\tdet\t_\t_
2\tred\tred\tADJ\tJJ\t_\t3\tamod\t_\t_
3\tcat\tcat\tNOUN\tNN\t_\t4\tnsubj\t_\t_
4\tsits\tsit\tVERB\tVBZ\t_\t0\troot\t_\t_
5\ton\ton\tADP\tIN\t_\t7\tcase\t_\t_
6\ta\ta\tDET\tDT\t_\t7\tdet\t_\t_
7\tmat\tmat\tNOUN\tNN\t_\t4\tobl\t_\t_
8\tquickly\tquickly\tADV\tRB\t_\t4\tadvmod\t_\tSpaceAfter=No
9\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

"""
TEXT = "The ball was kicked by a boy. A red cat sits on a mat quickly."


@pytest.mark.parametrize("reconstruct", [False, True])
def test_stanza_document_from_conllu(reconstruct: bool) -> None:
    from stanza.utils.conll import CoNLL

    doc = CoNLL.conll2doc(input_str=CONLLU, reconstruct_text=reconstruct)  # no offsets unless reconstructed
    sentences = stanza_document_to_ud(doc, TEXT)
    assert [len(s) for s in sentences] == [8, 9]
    for tok in sentences[0] + sentences[1]:
        assert TEXT[tok.start : tok.end] == tok.text
    assert sentences[1][6].start == TEXT.index("mat") and sentences[0][0].lemma == "the"
    graph = _triples(sentences)
    assert graph["relations"] == {("boy", "kick", "ball"): 1, ("cat", "sit on", "mat"): 1}
    assert graph["attributes"] == {("cat", "red"): 1} and graph["adverbs"] == {("sit on", "quickly"): 1}
    assert _triples(sentences) == _triples(RuleParser().parse(TEXT.lower()))


def test_stanza_parser_with_a_given_pipeline_and_without_models(tmp_path: Path) -> None:
    from stanza.utils.conll import CoNLL

    doc = CoNLL.conll2doc(input_str=CONLLU)
    parser = StanzaParser(pipeline=lambda text: doc)
    assert parser.parse(TEXT)[0][6].text == "boy"
    with pytest.raises(RuntimeError, match=str(tmp_path)):
        StanzaParser(model_dir=tmp_path)  # no models there: a clear error naming the folder, no download


def test_auto_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    import stanza
    import stanza.resources.common as resources

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("make_parser('auto') must not download anything")

    monkeypatch.setattr(stanza, "download", no_network)
    monkeypatch.setattr(resources, "download_resources_json", no_network)
    monkeypatch.setattr(resources, "download_models", no_network, raising=False)
    parser = make_parser("auto")
    assert parser.name in {"stanza", "spacy", "rule"}
    assert parser.parse("a cat sits on a mat")
    # Without stanza models and without spaCy, auto falls back to the rule backend.
    monkeypatch.setattr(parsers, "stanza_model_dir", lambda *a, **k: None)
    monkeypatch.setattr(parsers, "SpacyParser", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no spaCy")))
    assert isinstance(make_parser("auto"), RuleParser)
    with pytest.raises(ValueError, match="unknown parser"):
        make_parser("nltk")


def test_cache_parses_each_text_once() -> None:
    calls: list[str] = []

    class Counting(RuleParser):
        def parse(self, text: str) -> list[list[UDToken]]:
            calls.append(text)
            return super().parse(text)

    build = CachedTSGBuilder(Counting(), maxsize=2)
    first = build("a cat sits on a mat")
    assert build("a cat sits on a mat") is first and calls == ["a cat sits on a mat"]
    assert (build.hits, build.misses) == (1, 1)
    build("a dog runs")
    build("a bird sings")  # evicts the least recently used text
    build("a cat sits on a mat")
    assert len(calls) == 4 and len(build._cache) == 2


# Human-written captions (tests/data/tsg_gold/README.md conventions): one sentence per error class, with the
# objects and relations both backends must give.
HUMAN = [
    # "-ing" verb lemmas: riding -> ride, typing -> type
    ("a woman is riding a bicycle", ["bicycle", "woman"], [("woman", "ride", "bicycle")]),
    ("a man is typing on a keyboard", ["keyboard", "man"], [("man", "type on", "keyboard")]),
    # "-ing" nouns and compounds: "party" after a participle, "boxing ring"
    ("people dancing at a party", ["party", "people"], [("people", "dance at", "party")]),
    ("two boxers fight in a boxing ring", ["boxer", "boxing ring"], [("boxer", "fight in", "boxing ring")]),
    # multi-word prepositions
    ("a cat jumps out of a basket", ["basket", "cat"], [("cat", "jump out of", "basket")]),
    ("a boy sits next to a dog", ["boy", "dog"], [("boy", "sit next to", "dog")]),
    ("a girl runs away from a goose", ["girl", "goose"], [("girl", "run away from", "goose")]),
    ("a cat sits on top of a fridge", ["cat", "fridge"], [("cat", "sit on top of", "fridge")]),
    # quantity heads give way to the content noun
    ("a group of girls sing on stage", ["girl", "stage"], [("girl", "sing on", "stage")]),
    ("a man holds a pair of scissors", ["man", "scissors"], [("man", "hold", "scissors")]),
    # SOMEONE and pronouns, named in the nominative
    ("SOMEONE looks at him", ["he", "someone"], [("someone", "look at", "he")]),
    ("she hugs them", ["she", "they"], [("she", "hug", "they")]),
    # coordinated verbs share the subject; particles join the predicate
    ("a woman opens the fridge and takes out a bottle", ["bottle", "fridge", "woman"],
     [("woman", "open", "fridge"), ("woman", "take out", "bottle")]),
    ("a boy walks out", ["boy"], [("boy", "walk out", None)]),
    # passives: the agent is the subject; an agentless passive has none
    ("a vase is broken by a cat", ["cat", "vase"], [("cat", "break", "vase")]),
    ("a car is parked in front of a house", ["car", "house"],
     [(None, "park", "car"), (None, "park in front of", "house")]),
    # light verbs and "is seen": only the content verb, with the subject
    ("a woman begins to sing", ["woman"], [("woman", "sing", None)]),
    ("a woman is seen sitting on a sofa", ["sofa", "woman"], [("woman", "sit on", "sofa")]),
    # a participle clause takes the noun it modifies as subject
    ("a dog sitting on a couch", ["couch", "dog"], [("dog", "sit on", "couch")]),
    # a place PP after the object belongs to the verb; the adverb goes on every relation of the verb
    ("a man slices bread in the kitchen carefully", ["bread", "kitchen", "man"],
     [("man", "slice", "bread"), ("man", "slice in", "kitchen")]),
    # wh-questions: the wh-word is no object, a stranded preposition keeps a null object, pro-verb "do" no relation
    ("who is the girl waving to ?", ["girl"], [("girl", "wave to", None)]),
    ("what does the man do ?", ["man"], []),
]


@pytest.fixture(scope="module", params=["rule", "spacy"])
def backend(request: pytest.FixtureRequest) -> object:
    """Each parser backend (spaCy skipped where no model is installed)."""
    if request.param == "rule":
        return RuleParser()
    return request.getfixturevalue("spacy_parser")


@pytest.mark.parametrize("text,objects,relations", HUMAN)
def test_human_caption_tuples(backend: object, text: str, objects: list[str],
                              relations: list[tuple]) -> None:
    got = _triples(backend.parse(text))
    assert Counter(got["objects"]) == Counter({o: objects.count(o) for o in objects}), text
    assert Counter(got["relations"]) == Counter({r: relations.count(r) for r in relations}), text


def test_adverbs_on_every_relation_of_the_verb(backend: object) -> None:
    got = _triples(backend.parse("a man slices bread in the kitchen carefully"))
    assert got["adverbs"] == {("slice", "carefully"): 1, ("slice in", "carefully"): 1}


def test_rule_backend_possessive_and_questioned_object() -> None:
    # "SOMEONE's hand" is linked like an "of" phrase; "what is X eating?" has a null object
    got = _triples(RuleParser().parse("SOMEONE's hand shakes"))
    assert ("hand", "of", "someone") in got["relations"] and ("hand", "shake", None) in got["relations"]
    assert _triples(RuleParser().parse("what is the boy eating ?"))["relations"] == {("boy", "eat", None): 1}


def test_world_direction_and_still_stay_adverbs(backend: object) -> None:
    # the synthetic world's conventions: "moves up" is a path adverb of "move", "stays still" a manner adverb,
    # while "is still sitting" is temporal (not annotated)
    moves = _triples(backend.parse("a red square moves up slowly"))["adverbs"]
    assert moves == {("move", "up"): 1, ("move", "slowly"): 1}
    assert _triples(backend.parse("a small red circle stays still"))["adverbs"] == {("stay", "still"): 1}
    assert _triples(backend.parse("a man is still sitting on a bench"))["adverbs"] == {}


def test_spacy_repairs_verbs_read_as_nouns(spacy_parser: parsers.SpacyParser) -> None:
    # "-ing" lemma ("riding" -> "rid" in the lookup tables) and a second verb read as a conjoined noun
    assert ("man", "ride", "horse") in _triples(spacy_parser.parse("a man is riding a horse"))["relations"]
    got = _triples(spacy_parser.parse("She grabs the cup and drinks quickly."))  # "drinks/NNS/conj" of "cup"
    assert got["relations"] == {("she", "grab", "cup"): 1, ("she", "drink", None): 1}
    assert got["adverbs"] == {("drink", "quickly"): 1} and "drink" not in got["objects"]
    got = _triples(spacy_parser.parse("She lifts the bag and waves to her mother."))
    assert ("she", "wave to", "mother") in got["relations"]
