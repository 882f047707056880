"""Textual scene graphs (TSG) from Universal Dependencies parses.

Rules (in the spirit of Schuster et al. 2015, on UD relations only, so every parser backend shares them; the
conventions are those of ``tests/data/tsg_gold/README.md``):

- Objects: nouns (compounds folded into the label, "boxing ring"), entity pronouns in their nominative form
  (him -> he, SOMEONE -> someone).  Quantity heads ("a group of kids", "a pair of scissors") give way to their
  content noun; wh-words and the category nouns of questions ("what colour") are not objects.
- Attributes: ``amod`` / ``nummod`` on a noun, and a predicate adjective after a copula, as written.
- Relations: one per (subject, target) of a verb.  Targets are the direct object ("ride" -> horse) and each
  prepositional argument ("ride on" -> beach), a multi-word preposition being one unit ("walk out of",
  "sit next to", "put on top of"); phrasal-verb particles join the predicate ("pick up").  A verb without a
  target gives (subject, verb, None), and a questioned object or a stranded preposition gives a None target.
  Subjects come from ``nsubj`` or, in a passive, the agent; a verb without one takes it from where it
  attaches: coordinated verbs and open complements share the head's subject, participle and relative clauses
  take the noun they modify.  Light verbs ("begins to dance", "is seen standing") give no relation of their
  own.  ``nmod`` + ``case`` between nouns is a prepositional relation ("man in shirt"); a possessive is an
  "of" relation; a place PP on a verb's object or argument ("slice an onion in the kitchen") is the verb's.
- Adverbs: manner words on a verb become *predicate-attribute* (adverb) nodes of each of its relations, and
  so do the two temporal kinds PTC contrasts (issue 22, point 6; docs/DESIGN-NOTES.md "Temporal content for
  PTC"): the dimension a question asks about ("which way does X move?" -> ``which way``, "how fast" ->
  ``how fast``, "how does X move?" -> ``how``; never "how many"), and order words: "then" and "first" on the
  verb they modify, and the marker of an order clause ("before", "after", "while" + a clause or a gerund) on
  the verb that clause modifies ("does X move before Y grows?" -> ``move`` + ``before``).

Place phrases are relations, not objects: "to the left of the car" gives "left of" (on a noun or after a
copula) or "<verb> left of" (on a verb), "in front of" / "on top of" likewise; "on the left" without an
"of" is a direction of the verb, an adverb like "moves left".
``node_span`` holds **character** offsets here; the dataset maps them to the host's token positions.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from finsta_pl.graphs.container import EDGE, NODE, SceneGraph
from finsta_pl.graphs.ud import UDToken

_WH_WORDS = {"what", "which", "who", "whom", "whose", "how", "where", "when", "why", "that"}
_SKIP_NOUNS = {"what", "which", "who", "whom", "there", "here"}
#: nouns that name the category a question asks for, not a thing in the scene ("what colour", "how many times")
_CATEGORY_NOUNS = {"color", "colour", "shape", "way", "kind", "type", "sort", "size", "time", "direction",
                   "number", "thing", "sport", "game", "activity", "place", "emotion", "day", "season"}
#: quantity and collection heads: "a group of kids" is about the kids ("a pot of water" keeps its pot)
_QUANTITY_NOUNS = {"group", "pair", "bunch", "couple", "piece", "slice", "lot", "lots", "number", "handful",
                   "bit", "set", "series", "variety", "dozen", "kind", "type", "sort"}
#: nouns that are plural in form only; they keep their "-s" ("scissors", not "scissor")
_PLURALIA = {"scissors", "pants", "jeans", "trousers", "shorts", "glasses", "goggles", "clothes", "pliers",
             "tongs", "binoculars", "people", "sunglasses", "headphones"}
#: entity pronouns, named by their nominative form; "someone"/"somebody"/"SOMEONE" are all "someone"
_PRONOUNS = {"he": "he", "him": "he", "she": "she", "her": "she", "it": "it", "they": "they", "them": "they",
             "i": "i", "me": "i", "we": "we", "us": "we", "you": "you", "someone": "someone",
             "somebody": "someone", "something": "something", "everyone": "everyone", "everybody": "everyone"}
_VAGUE_COUNTS = {"many", "several", "much", "some", "other", "few", "more", "most", "all", "both", "each"}
#: direction words that change the verb's meaning: a particle of the predicate ("walk away", "pick up")
_PARTICLES = {"away", "back", "up", "down", "out", "off", "over", "around", "past", "by", "in", "on", "aside",
              "along", "forward", "backward", "backwards", "through", "about"}
#: multi-word prepositions headed by an adverb ("out of the room"); "up to", "back into" are particle + preposition
_MULTIWORD_PREPOSITIONS = {("out", "of"), ("away", "from"), ("next", "to"), ("close", "to"), ("ahead", "of"),
                           ("because", "of"), ("instead", "of"), ("inside", "of"), ("outside", "of"), ("off", "of"),
                           ("out", "from"), ("up", "against")}
#: prepositions that may be stranded at the end of a question ("who is he talking to?")
_PREPOSITIONS = {"to", "at", "with", "from", "for", "into", "onto", "of", "toward", "towards", "like", "about",
                 "on", "in", "under", "behind", "near", "inside"}
#: verbs of pure motion, whose direction word names the path (an adverb: "moves up", "moves left")
_PATH_VERBS = {"move"}
_DIRECTION_WORDS = {"left", "right", "up", "down", "forward", "backward", "backwards", "upward", "downward"}
#: manner words that are not "-ly" adverbs
_MANNER = {"together", "again", "fast", "hard", "well", "apart", "alone", "slow", "quick", "loud", "straight"}
#: "-ly" words that are temporal, discourse or degree words, not manner
_NOT_MANNER = {"only", "early", "really", "finally", "eventually", "actually", "probably", "nearly", "likely",
               "currently", "immediately", "directly", "mostly", "simply", "clearly", "apparently", "briefly",
               "fully", "totally", "completely", "partly", "barely", "hardly", "merely", "truly", "usually",
               "initially", "recently", "repeatedly", "continuously", "constantly", "occasionally", "shortly"}
#: order words that become adverb nodes: advmods of the verb ("then", "first") and the markers of a
#: subordinate clause, put on the verb the clause modifies ("before", "after", "while")
ORDER_WORDS = frozenset({"before", "after", "then", "first", "while"})
_ORDER_ADVMODS = {"then", "first"}
_ORDER_MARKS = {"before", "after", "while"}
#: nouns of a wh-phrase that asks for the path of the verb: "which way", "what direction"
_QUESTION_PATH_NOUNS = {"way", "direction"}
#: "how" before these asks about a noun's quantity, not about the verb ("how many dogs are running?")
_HOW_QUANTITY = {"many", "much"}
#: aspectual and trying verbs: "begins to dance" is the dancing
_LIGHT_VERBS = {"begin", "start", "continue", "proceed", "try", "keep", "attempt", "resume"}
#: "is seen / shown + verb": a description of what the video shows, not an event
_PERCEPTION_PASSIVES = {"see", "show"}
#: prepositions of place, goal and instrument: on a verb's object or argument they belong to the verb
_VERB_PREPOSITIONS = {"in", "at", "on", "into", "onto", "through", "across", "along", "over", "under", "above",
                      "below", "around", "toward", "towards", "near", "behind", "beside", "inside", "to", "from",
                      "against", "down", "up", "past", "off"}
#: prepositions of a place in which things happen (a participle after such a place describes the event)
_PLACE_PREPOSITIONS = {"in", "through", "across", "along", "around", "into", "down", "over", "inside"}
#: prepositions of a supporting or neighbouring thing: a following "in"/"at" phrase is the event's place
_SUPPORT_PREPOSITIONS = {"on", "next", "beside", "near", "under", "behind", "by", "against", "onto", "close"}
#: nouns that, with an "of" phrase, make a spatial preposition ("to the left of", "in front of", "on top of")
_PLACE_NOUNS = {"left", "right", "front", "top", "bottom"}


class _Builder:
    def __init__(self) -> None:
        self.types: list[int] = []
        self.labels: list[str] = []
        self.spans: list[tuple[int, int]] = []
        self.edges: list[tuple[int, int, int]] = []

    def node(self, kind: str, label: str, span: tuple[int, int]) -> int:
        self.types.append(NODE[kind])
        self.labels.append(label)
        self.spans.append(span)
        return len(self.types) - 1

    def edge(self, src: int, dst: int, kind: str) -> None:
        self.edges.append((src, dst, EDGE[kind]))

    def relation(self, label: str, span: tuple[int, int], subj: int | None, obj: int | None,
                 adverbs: list[UDToken] = ()) -> None:
        r = self.node("relation", label, span)
        if subj is not None:
            self.edge(subj, r, "subject")
        if obj is not None:
            self.edge(r, obj, "object")
        for a in adverbs:
            self.edge(r, self.node("adverb", a.text.lower(), (a.start, a.end)), "adverb")

    def graph(self) -> SceneGraph:
        if not self.types:
            return SceneGraph.scene_only()
        edges = torch.tensor(self.edges, dtype=torch.long).reshape(-1, 3)
        return SceneGraph(
            node_type=torch.tensor(self.types, dtype=torch.long),
            node_label=self.labels,
            edge_index=edges[:, :2].t().contiguous(),
            edge_type=edges[:, 2].contiguous(),
            node_span=torch.tensor(self.spans, dtype=torch.long),
        )


def _base(deprel: str) -> str:
    return deprel.split(":")[0]


class _Sentence:
    """One UD sentence with the lookups the rules need (children by relation, conjuncts, object nodes)."""

    def __init__(self, sent: list[UDToken], b: _Builder) -> None:
        self.sent, self.b = sent, b
        self.children: dict[int, list[int]] = defaultdict(list)
        for i, tok in enumerate(sent):
            if tok.head > 0:
                self.children[tok.head - 1].append(i)
        self.objects: dict[int, int] = {}

    # ------------------------------------------------------------------------------------ lookups ----
    def kids(self, i: int, *rels: str) -> list[int]:
        """Children of ``i`` whose relation (or its part before ":") is one of ``rels``."""
        return [c for c in self.children[i] if _base(self.sent[c].deprel) in rels or self.sent[c].deprel in rels]

    def head(self, i: int) -> int | None:
        """The head of ``i`` (0-based), None for the root."""
        return self.sent[i].head - 1 if self.sent[i].head > 0 else None

    def case(self, i: int) -> list[int]:
        """The ``case`` words of a nominal, e.g. "of" in "of the car"."""
        return [c for c in self.kids(i, "case") if self.sent[c].upos in {"ADP", "ADV", "PART", "SCONJ"}
                and self.sent[c].lemma != "'s"]

    def has_of(self, i: int) -> bool:
        """Whether ``i`` is an "of" phrase."""
        return any(self.sent[c].lemma == "of" for c in self.case(i))

    def conjuncts(self, idx: int) -> list[int]:
        """``idx`` and every nominal joined to it by ``conj`` (recursively)."""
        out = [idx]
        for c in self.children[idx]:
            if self.sent[c].deprel == "conj" and self.sent[c].upos in {"NOUN", "PROPN", "PRON"}:
                out.extend(self.conjuncts(c))
        return out

    def content(self, i: int) -> int:
        """The content noun of a quantity head ("kids" of "a group of kids"), else ``i`` itself."""
        if self.sent[i].lemma in _QUANTITY_NOUNS:
            inner = [c for c in self.kids(i, "nmod") if self.has_of(c)]
            if inner:
                return self.content(inner[0])
        return i

    def things(self, i: int | None) -> list[int]:
        """The objects that the nominal ``i`` stands for: its conjuncts, quantity heads resolved."""
        if i is None:
            return []
        return [o for c in self.conjuncts(i) if (o := self.content(c)) in self.objects]

    def is_quantity_head(self, i: int) -> bool:
        """Whether ``i`` is a quantity head with an "of" phrase (not an object itself)."""
        return self.content(i) != i

    def wh_modified(self, i: int) -> bool:
        """Whether a wh-word asks about the noun: "what colour", "which way", "how many times"."""
        for d in self.kids(i, "det", "amod", "nummod", "advmod"):
            if self.sent[d].lemma in _WH_WORDS or any(self.sent[x].lemma == "how" for x in self.children[d]):
                return True
        return False


def _object_name(tok: UDToken, comps: list[UDToken]) -> str:
    """The object label: compounds then the head's lemma ("boxing ring"); pronouns nominative; pluralia as is."""
    text = tok.text.lower()
    if tok.upos == "PRON" or text in _PRONOUNS:
        return _PRONOUNS.get(text, tok.lemma)
    head = text if text in _PLURALIA else tok.lemma
    # a compound's modifier is singular in form already ("news anchor", "sports car"): kept as written
    return " ".join([c.text.lower() for c in comps] + [head])


def _add_objects(s: _Sentence, skip: set[int]) -> None:
    """Object nodes (with their attributes) for nouns and entity pronouns."""
    sent, b = s.sent, s.b
    for i, tok in enumerate(sent):
        text = tok.text.lower()
        if i in skip or _base(tok.deprel) in {"compound", "fixed", "flat"} and tok.upos != "PRON":
            continue
        if tok.upos in {"NOUN", "PROPN"}:
            if tok.lemma in _SKIP_NOUNS or text in _SKIP_NOUNS or s.is_quantity_head(i):
                continue
            if tok.lemma in _CATEGORY_NOUNS and s.wh_modified(i):
                continue  # "what colour", "how many times": the answer's category, not a thing in the scene
        elif not ((tok.upos == "PRON" or text in {"someone", "somebody"}) and text in _PRONOUNS):
            continue
        elif tok.deprel in {"nmod:poss", "det", "det:poss"} and text in {"her", "his", "its", "their"}:
            continue  # a possessive determiner is not an object
        comps = [sent[c] for c in sorted(s.kids(i, "compound")) if c < i and sent[c].upos != "NUM"]
        start = comps[0].start if comps else tok.start
        s.objects[i] = b.node("object", _object_name(tok, comps), (start, tok.end))
        mods = [a for a in s.kids(i, "amod", "nummod")
                if sent[a].upos in {"ADJ", "NUM", "VERB"} and sent[a].lemma not in _VAGUE_COUNTS
                and sent[a].text.lower() not in _VAGUE_COUNTS and not s.wh_modified(i)]
        mods += [c for c in s.kids(i, "compound") if sent[c].upos == "NUM"]
        for a in mods:
            b.edge(s.objects[i], b.node("attribute", sent[a].text.lower(), (sent[a].start, sent[a].end)), "attribute")
    # Copula: "the ball is red" -> attribute of the subject.
    for i, tok in enumerate(sent):
        if tok.upos == "ADJ" and s.kids(i, "cop"):
            for subj in s.kids(i, "nsubj"):
                for o in s.things(subj):
                    b.edge(s.objects[o], b.node("attribute", tok.text.lower(), (tok.start, tok.end)), "attribute")


def _is_manner(s: _Sentence, a: int, verb: int) -> bool:
    """Whether the ``advmod`` ``a`` of ``verb`` is a manner word (the adverbs the TSG keeps)."""
    word = s.sent[a].text.lower()
    if s.children[a] and any(_base(s.sent[c].deprel) in {"obl", "nmod"} for c in s.children[a]):
        return False  # "out" of "out of the box": part of a preposition
    if word == "still":
        return a > verb  # "stays still" (motionless), but "is still sitting" (temporal)
    if word in _DIRECTION_WORDS and s.sent[verb].lemma in _PATH_VERBS:
        return True  # "moves up": the path of a pure motion verb
    return word in _MANNER or (word.endswith("ly") and len(word) > 4 and word not in _NOT_MANNER)


def _heads_multiword(s: _Sentence, a: int) -> bool:
    """Whether ``a`` is the first word of a multi-word preposition with its object: "out" of "out of the box"."""
    word = s.sent[a].text.lower()
    for c in s.children[a]:
        case = s.case(c)
        first = s.sent[case[0]].lemma if case else None
        if _base(s.sent[c].deprel) in {"obl", "nmod"} and (word, first) in _MULTIWORD_PREPOSITIONS:
            return True
    return False


def _is_particle(s: _Sentence, a: int, verb: int) -> bool:
    """Whether the child ``a`` of ``verb`` is a phrasal-verb particle ("pick up", "walk away", "sit down")."""
    tok = s.sent[a]
    if _heads_multiword(s, a):
        return False  # "out of the room": the first word of a multi-word preposition
    if tok.lemma in _DIRECTION_WORDS and s.sent[verb].lemma in _PATH_VERBS:
        return False  # "moves up": a direction (adverb)
    if tok.deprel == "compound:prt":
        return True
    return _base(tok.deprel) == "advmod" and tok.text.lower() in _PARTICLES and a > verb


class _Verbs:
    """Relations of the verbs of one sentence: subjects, targets, particles, adverbs, light verbs."""

    def __init__(self, s: _Sentence, grounds: dict[int, int], directions: set[int]) -> None:
        self.s, self.grounds, self.directions = s, grounds, directions
        self.taken = set(grounds.values())
        self.moved: dict[int, int] = {}  # noun-modifier PPs handed to a verb: PP noun -> verb
        # "putting on top of the pizza" read as the particle "on" + object "top": the particle is the place's
        self.place_prt: dict[int, int] = {}
        for n in grounds:
            h = s.head(n)
            if _base(s.sent[n].deprel) == "obj" and not s.case(n) and h is not None:
                prt = [c for c in s.kids(h, "compound:prt", "advmod") if c < n and s.sent[c].lemma in {"on", "in"}]
                if prt:
                    self.place_prt[n] = prt[-1]

    # ----------------------------------------------------------------------------------- classes ----
    def is_light(self, v: int) -> bool:
        """"begins to dance", "continues shoveling", "is seen standing": the content verb carries the event."""
        s = self.s
        tok = s.sent[v]
        content = [c for c in s.kids(v, "xcomp", "ccomp", "advcl", "dep") if s.sent[c].upos == "VERB"]
        if not content or s.kids(v, "obj"):
            return False
        if tok.lemma in _LIGHT_VERBS:
            return any(s.sent[c].deprel == "xcomp" for c in content)
        passive = any(s.sent[c].deprel in {"aux:pass", "nsubj:pass"} for c in s.children[v])
        return tok.lemma in _PERCEPTION_PASSIVES and passive

    def subjects(self, v: int, depth: int = 0) -> list[int]:
        """Subject tokens of the verb ``v``: its own, else those of the word it attaches to."""
        s = self.s
        own = [c for c in s.kids(v, "nsubj", "csubj") if s.sent[c].deprel not in {"nsubj:pass", "csubj:pass"}]
        agents = [c for c in s.children[v] if s.sent[c].deprel == "obl:agent"]
        relative = [c for c in own if s.sent[c].lemma in {"who", "that", "which"}]
        h = s.head(v)
        if relative and h is not None and _base(s.sent[v].deprel) == "acl":
            return [h]  # "SOMEONE, who is sitting on the couch": the relative pronoun stands for the noun
        if own or agents:
            return own + agents
        passives = [c for c in s.children[v] if s.sent[c].deprel == "nsubj:pass"]
        if passives and not self.is_light(v):
            return []  # an agentless passive has no subject
        if h is None or depth > 8:
            return passives
        rel = _base(s.sent[v].deprel)
        if rel == "acl":
            hh = s.head(h)
            case = [s.sent[c].lemma for c in s.case(h)]
            if (_base(s.sent[h].deprel) == "obl" and hh is not None and s.sent[hh].upos == "VERB" and case
                    and case[0] in _PLACE_PREPOSITIONS):
                return self.subjects(hh, depth + 1)  # "standing in a gym wearing gloves": the gym wears nothing
            return [h]  # "a man sitting on a bench"
        if rel in {"conj", "xcomp", "advcl", "ccomp", "dep"}:
            if s.sent[h].upos in {"NOUN", "PROPN", "PRON"}:
                return [h]  # a clause on a noun (a fragment's head): "a tennis player hitting the ball"
            if rel == "xcomp" and s.kids(h, "obj") and not self.is_light(h):
                return s.kids(h, "obj")  # "helps the boy climb": the object controls
            if self.is_light(h) and not s.kids(h, "nsubj"):
                return [c for c in s.children[h] if s.sent[c].deprel == "nsubj:pass"] or self.subjects(h, depth + 1)
            return self.subjects(h, depth + 1)
        return passives

    def questioned(self, n: int) -> bool:
        """Whether ``n`` is the subject of a copular wh-question root ("what is [the man] ...")."""
        s = self.s
        h = s.head(n)
        return (_base(s.sent[n].deprel) == "nsubj" and h is not None and s.sent[h].lemma in {"what", "who", "which"}
                and bool(s.kids(h, "cop")))

    def particles(self, v: int) -> list[int]:
        """The particles of ``v`` in order ("pick up", "lie down")."""
        used = set(self.place_prt.values())
        return sorted(c for c in self.s.children[v] if _is_particle(self.s, c, v) and c not in used)

    def place(self, n: int) -> str:
        """The preposition a place noun makes: "left of", "in front of", "on top of"."""
        sent = self.s.sent
        case = [sent[c].lemma for c in self.s.case(n)]
        if n in self.place_prt:
            case = [sent[self.place_prt[n]].lemma]
        if sent[n].lemma in {"left", "right"} or not case or case[0] == "to":
            return f"{sent[n].lemma} of"  # "to the left of" -> "left of", as the DSG names it
        return f"{case[0]} {sent[n].lemma} of"  # "in front of", "on top of"

    def preposition(self, n: int) -> str | None:
        """The preposition of the argument ``n``: its case words, or a multi-word one ("out of")."""
        s = self.s
        if n in self.grounds:
            return self.place(n)
        case = s.case(n)
        h = s.head(n)
        words = [s.sent[c].lemma for c in sorted(case)]
        # "out of the box", "next to him", "away from the house": the adverb heads the phrase; a particle ("holds
        # it up to the camera") is part of the verb's label already
        if (h is not None and s.sent[h].upos in {"ADV", "ADP", "ADJ"} and _base(s.sent[n].deprel) in {"obl", "nmod"}
                and not (s.head(h) is not None and _is_particle(s, h, s.head(h)) and s.sent[s.head(h)].upos == "VERB")):
            words = [s.sent[h].text.lower()] + words
        return " ".join(words) if words else None

    def arguments(self, v: int) -> list[int]:
        """Prepositional arguments of ``v``: ``obl`` children, those under a multi-word preposition's first word,
        and noun-modifier PPs handed over to the verb."""
        s = self.s
        out = [c for c in s.kids(v, "obl") if s.sent[c].deprel not in {"obl:agent", "obl:npmod", "obl:tmod"}]
        for a in s.kids(v, "advmod", "compound", "prep", "amod"):
            out += [c for c in s.kids(a, "obl", "nmod") if s.sent[c].deprel != "nmod:poss"]
        out += [n for n, verb in self.moved.items() if verb == v]
        return [c for c in out if c not in self.taken]

    def stranded(self, v: int) -> list[str]:
        """Stranded prepositions of a question: "who is the man talking to?" -> ["to"], "sitting next to?"."""
        s = self.s
        out = []
        for a in s.kids(v, "advmod"):
            word = s.sent[a].text.lower()
            inner = [c for c in s.kids(a, "advmod") if s.sent[c].text.lower() in _PREPOSITIONS]
            if inner and not s.children[inner[0]]:
                out.append(f"{word} {s.sent[inner[0]].text.lower()}")
            elif word in _PREPOSITIONS - _PARTICLES and not s.children[a] and a > v:
                out.append(word)
        return out

    def question_adverbs(self, v: int, manner: list[int]) -> tuple[list[UDToken], list[int]]:
        """The dimension a question asks about ``v`` as adverb tokens ("which way", "how fast", "how"), and
        ``manner`` without the words folded into them ("fast" of "how fast")."""
        s, out, manner = self.s, [], list(manner)
        sent = s.sent
        for c in s.children[v]:
            tok = sent[c]
            if tok.lemma in _QUESTION_PATH_NOUNS and tok.upos in {"NOUN", "PROPN"} and s.wh_modified(c):
                wh = min(d for d in s.kids(c, "det", "amod", "advmod") if sent[d].lemma in _WH_WORDS)
                out.append(_joined(sent[wh], tok))  # "which way", "what direction"
        hows = [c for c in s.kids(v, "advmod") if sent[c].text.lower() == "how"]
        hows += [d for a in manner for d in s.kids(a, "advmod") if sent[d].text.lower() == "how"]
        for h in sorted(set(hows)):
            nxt = sent[h + 1].text.lower() if h + 1 < len(sent) else ""
            if nxt in _HOW_QUANTITY:
                continue  # "how many dogs are running?": the count of a noun
            degree = [a for a in manner if a == h + 1]  # "how fast", "how quickly"
            manner = [a for a in manner if a not in degree]
            out.append(_joined(sent[h], sent[degree[0]]) if degree else sent[h])
        return out, manner

    def order_adverbs(self, v: int) -> list[UDToken]:
        """Order words of ``v``: its "then"/"first" advmods, and the "before"/"after"/"while" marker of each
        clause (or gerund) that modifies it ("does X move before Y grows?": ``move`` + ``before``)."""
        s = self.s
        out = [s.sent[a] for a in s.kids(v, "advmod") if s.sent[a].text.lower() in _ORDER_ADVMODS]
        for c in s.kids(v, "advcl"):
            out += [s.sent[m] for m in s.kids(c, "mark") if s.sent[m].text.lower() in _ORDER_MARKS]
        return out

    # --------------------------------------------------------------------------------- relations ----
    def add(self, v: int) -> None:
        """The relations of the verb ``v``."""
        s, b = self.s, self.s.b
        tok = s.sent[v]
        if self.is_light(v):
            return
        subjects = [o for x in self.subjects(v) for o in s.things(x)]
        base = " ".join([tok.lemma] + [s.sent[p].text.lower() for p in self.particles(v)])
        span = (tok.start, tok.end)
        targets: list[tuple[int | None, str]] = []
        objs = s.kids(v, "obj") + [c for c in s.children[v] if s.sent[c].deprel == "nsubj:pass"]
        rel = s.sent[v].deprel
        h = s.head(v)
        if rel == "acl:relcl" and h is not None and not objs and s.kids(v, "nsubj") and s.head(v) not in subjects:
            own = s.kids(v, "nsubj")
            if not any(s.sent[c].lemma in {"who", "that", "which"} for c in own):
                objs = [h]  # "the dress the woman is wearing": the noun is the relative clause's object
        stranded = self.stranded(v)
        if not objs and not stranded and rel == "acl" and h is not None and self.questioned(h):
            targets.append((None, base))  # "what is the man holding?" parsed as "what is [the man holding]"
        for o in objs:
            if o in self.grounds:  # "putting on top of the pizza"
                targets += [(t, f"{base} {self.place(o)}") for t in s.things(self.grounds[o])]
            elif s.sent[o].lemma in {"what", "which", "who", "whom"} or s.sent[o].text.lower() in {"what", "who"}:
                if not stranded:  # "who is he talking to?": the question is the stranded preposition's object
                    targets.append((None, base))  # "what is the man holding?": a questioned object
            elif s.sent[o].lemma in {"that"} and h is not None:
                targets += [(t, base) for t in s.things(h)]
            else:
                targets += [(t, base) for t in s.things(o)]
        for n in self.arguments(v):
            prep = self.preposition(n)
            label = f"{base} {prep}" if prep else base
            ground = self.grounds.get(n, n)
            found = s.things(ground)
            if not found and s.sent[ground].lemma in {"what", "which", "who", "whom"}:
                targets.append((None, label))
            targets += [(t, label) for t in found]
        targets += [(None, f"{base} {p}") for p in stranded]
        manner = [a for a in s.kids(v, "advmod") if _is_manner(s, a, v)]
        # "moves right quickly" read as right <- quickly: the direction still belongs to the verb
        manner += [d for a in manner for d in s.kids(a, "advmod") if _is_manner(s, d, v)]
        asked, manner = self.question_adverbs(v, manner)
        adverbs = sorted([s.sent[a] for a in manner] + asked + self.order_adverbs(v), key=lambda t: t.start)
        adverbs += [s.sent[d] for d in s.kids(v, "obl") if d in self.directions]
        if not subjects and not targets:
            return
        for subj in subjects or [None]:
            for t, label in targets or [(None, base)]:
                b.relation(label, span, s.objects.get(subj) if subj is not None else None,
                           s.objects[t] if t is not None else None, adverbs)


def _joined(first: UDToken, last: UDToken) -> UDToken:
    """One adverb token for a two-word phrase ("which way", "how fast"), spanning both words."""
    text = f"{first.text.lower()} {last.text.lower()}"
    return UDToken(text, text, "ADV", first.head, "advmod", first.start, last.end)


def _ground_of(s: _Sentence, n: int) -> int | None:
    """The "car" of "to the left of the car": the place noun's ``nmod`` with "of", or, from a parser that
    attaches every phrase to the verb, the next "of" phrase beside it."""
    sent = s.sent
    if sent[n].lemma not in _PLACE_NOUNS or sent[n].upos not in {"NOUN", "ADJ", "ADV"}:
        return None
    inner = [c for c in s.kids(n, "nmod") if s.has_of(c)]
    if inner:
        return inner[0]
    h = s.head(n)
    beside = [c for c in (s.children[h] if h is not None else [])
              if c > n and _base(sent[c].deprel) in {"obl", "nmod"} and s.has_of(c)]
    return beside[0] if beside and _base(sent[n].deprel) in {"obl", "nmod", "obj"} else None


def _hand_over_pps(s: _Sentence, verbs: _Verbs) -> None:
    """A place, goal or instrument PP on a verb's object or argument belongs to the verb: "slicing an onion in
    the kitchen" -> "slice in", "sitting on a swing in a park" -> "sit in" (an "of" phrase stays on its noun)."""
    sent = s.sent
    for n, tok in enumerate(sent):
        h = s.head(n)
        if tok.deprel != "nmod" or h is None or n in verbs.taken or s.has_of(n):
            continue
        case = [sent[c].lemma for c in s.case(n)]
        if not case:
            continue
        v = s.head(h)
        if v is None or sent[v].upos != "VERB" or verbs.is_light(v):
            continue
        hrel = _base(sent[h].deprel)
        if hrel == "obj" and (case[0] in _VERB_PREPOSITIONS or case[0] == "with"):
            verbs.moved[n] = v
        elif (hrel == "obl" and case[0] in {"in", "at", "inside"} and h not in verbs.grounds
              and (verbs.preposition(h) or "").split(" ")[0] in _SUPPORT_PREPOSITIONS):
            verbs.moved[n] = v


def build_tsg(sentences: list[list[UDToken]]) -> SceneGraph:
    """The TSG of a text given as UD sentences (an empty or noun-less text gives a single scene node)."""
    b = _Builder()
    for sent in sentences:
        s = _Sentence(sent, b)

        grounds = {n: g for n in range(len(sent)) if (g := _ground_of(s, n)) is not None}
        # "appears on the left", "moves to the right": a direction of the verb, like "moves left" (an adverb).
        directions = {n for n, t in enumerate(sent) if t.lemma in {"left", "right"} and n not in grounds
                      and _base(t.deprel) == "obl" and t.head > 0 and sent[t.head - 1].upos == "VERB"}
        _add_objects(s, set(grounds) | directions)
        verbs = _Verbs(s, grounds, directions)
        _hand_over_pps(s, verbs)
        for v, tok in enumerate(sent):
            if tok.upos == "VERB":
                verbs.add(v)
        # Place phrases on a noun or after a copula: "the bike to the left of the car", "the cup is on top of it".
        for n, g in grounds.items():
            h = s.head(n)
            heads = [h] if _base(sent[n].deprel) == "nmod" and h is not None else []
            if s.kids(n, "cop"):
                heads = s.kids(n, "nsubj")
            case = s.case(n)
            span = (sent[case[0]].start if case else sent[n].start, sent[n].end)
            for x in (x for hd in heads for x in s.things(hd)):
                for o in s.things(g):
                    b.relation(verbs.place(n), span, s.objects[x], s.objects[o])
        # Prepositional relations between nouns: "a cat on a mat"; possessives: "SOMEONE's eyes" -> eye of someone.
        for i, tok in enumerate(sent):
            h = s.head(i)
            if h is None or i in verbs.taken or i in verbs.moved or i not in s.objects:
                continue
            if tok.deprel == "nmod:poss" and h in s.objects:
                b.relation("of", (tok.start, tok.end), s.objects[h], s.objects[i])
                continue
            if _base(tok.deprel) not in {"nmod", "obl"}:
                continue
            label = verbs.preposition(i)
            if label is None:
                continue
            owner = h
            if sent[h].upos in {"ADV", "ADJ", "ADP"} and s.head(h) is not None and _base(sent[h].deprel) != "obl":
                owner = s.head(h)  # "a man next to a car": "next" hangs on the noun
            elif sent[h].upos in {"ADV", "ADJ", "ADP"}:
                continue
            if sent[owner].upos == "AUX" or s.kids(owner, "cop") and sent[owner].upos not in {"NOUN", "PROPN"}:
                owners = s.kids(owner, "nsubj")  # "the cat is on the table"
            elif _base(tok.deprel) == "nmod" or sent[owner].upos in {"NOUN", "PROPN", "PRON"}:
                owners = [owner]
            else:
                continue
            if tok.deprel == "nmod" and sent[owner].lemma in _QUANTITY_NOUNS and s.has_of(i):
                continue  # "a group of kids": no relation, the kids stand for the group
            case = s.case(i)
            span = (sent[case[0]].start, sent[case[0]].end) if case else (tok.start, tok.end)
            for x in (x for o in owners for x in s.things(o)):
                for o in s.things(i):
                    if x != o:
                        b.relation(label, span, s.objects[x], s.objects[o])
    return b.graph()
