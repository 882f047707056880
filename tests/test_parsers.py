"""Parser backends: spaCy (offline model) mapped to UD, stanza via hand-written CoNLL-U, ``auto``, the TSG cache."""

from __future__ import annotations

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
