"""Textual scene graphs (TSG) from Universal Dependencies parses.

Rules (in the spirit of Schuster et al. 2015, on UD relations only, so every parser backend shares them):
nouns become objects (compounds folded into the label), ``amod``/``nummod`` become attributes, a verb becomes
one predicate node per (subject, object) pair with ``obl`` prepositions folded into its label ("sit on"),
passives swap agent and patient, conjuncts share their head's role, ``nmod`` + ``case`` between nouns is a
prepositional relation, and ``advmod`` adverbs of a verb become *predicate-attribute* (adverb) nodes.
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

_SKIP_NOUNS = {"what", "which", "who", "whom", "way", "kind", "type", "thing", "there"}
_SKIP_ADVERBS = {"how", "where", "when", "why", "not", "also", "then", "there", "here", "very"}
_VAGUE_COUNTS = {"many", "several", "much"}
_WH_DETERMINERS = {"what", "which", "whose"}
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


def _conjuncts(idx: int, children: dict[int, list[int]], sent: list[UDToken]) -> list[int]:
    """``idx`` and every word joined to it by ``conj`` (recursively)."""
    out = [idx]
    for c in children[idx]:
        if sent[c].deprel == "conj" and sent[c].upos in {"NOUN", "PROPN", "PRON"}:
            out.extend(_conjuncts(c, children, sent))
    return out


def build_tsg(sentences: list[list[UDToken]]) -> SceneGraph:
    """The TSG of a text given as UD sentences (an empty or noun-less text gives a single scene node)."""
    b = _Builder()
    for sent in sentences:
        children: dict[int, list[int]] = defaultdict(list)
        for i, tok in enumerate(sent):
            if tok.head > 0:
                children[tok.head - 1].append(i)

        def kids(i: int, *rels: str) -> list[int]:
            return [c for c in children[i] if sent[c].deprel.split(":")[0] in rels or sent[c].deprel in rels]

        def has_of(i: int) -> bool:
            return any(sent[c].lemma == "of" for c in kids(i, "case"))

        def ground_of(n: int) -> int | None:
            """The "car" of "to the left of the car": the place noun's ``nmod`` with "of", or, from a parser that
            attaches every phrase to the verb, the next "of" phrase beside it."""
            if sent[n].lemma not in _PLACE_NOUNS or sent[n].upos not in {"NOUN", "ADJ", "ADV"}:
                return None
            inner = [c for c in kids(n, "nmod") if has_of(c)]
            if inner:
                return inner[0]
            beside = [c for c in (children[sent[n].head - 1] if sent[n].head > 0 else [])
                      if c > n and sent[c].deprel.split(":")[0] in {"obl", "nmod"} and has_of(c)]
            return beside[0] if beside and sent[n].deprel.split(":")[0] in {"obl", "nmod"} else None

        def place_label(n: int) -> str:
            case = [sent[c].lemma for c in kids(n, "case")]
            if sent[n].lemma in {"left", "right"} or not case or case[0] == "to":
                return f"{sent[n].lemma} of"  # "to the left of" -> "left of", as the DSG names it
            return f"{case[0]} {sent[n].lemma} of"  # "in front of", "on top of"

        grounds = {n: g for n in range(len(sent)) if (g := ground_of(n)) is not None}
        taken = set(grounds.values())  # grounds belong to their place phrase, not to the verb as "<verb> of"
        # "appears on the left", "moves to the right": a direction of the verb, like "moves left" (an adverb).
        directions = {n for n, t in enumerate(sent) if t.lemma in {"left", "right"} and n not in grounds
                      and t.deprel.split(":")[0] == "obl" and t.head > 0 and sent[t.head - 1].upos == "VERB"}

        objects: dict[int, int] = {}
        for i, tok in enumerate(sent):
            if tok.upos not in {"NOUN", "PROPN"} or tok.deprel == "compound" or tok.lemma in _SKIP_NOUNS:
                continue
            if i in grounds or i in directions:
                continue  # "left" in "to the left of" / "on the left": a relation or a direction, not a thing
            if any(sent[d].lemma in _WH_DETERMINERS for d in kids(i, "det")):
                continue  # "what colour", "which way": the answer's category, not a thing in the scene
            comps = sorted(kids(i, "compound") + [i])
            label = " ".join(sent[c].lemma for c in comps)
            objects[i] = b.node("object", label, (sent[comps[0]].start, tok.end))
            for a in kids(i, "amod"):
                if sent[a].upos == "ADJ" and sent[a].lemma not in _VAGUE_COUNTS:  # "how many objects"
                    b.edge(objects[i], b.node("attribute", sent[a].lemma, (sent[a].start, sent[a].end)), "attribute")
            for a in kids(i, "nummod"):
                if sent[a].lemma not in _VAGUE_COUNTS:
                    b.edge(objects[i], b.node("attribute", sent[a].lemma, (sent[a].start, sent[a].end)), "attribute")
        # Copula: "the ball is red" -> attribute of the subject.
        for i, tok in enumerate(sent):
            if tok.upos == "ADJ" and kids(i, "cop"):
                for s in kids(i, "nsubj"):
                    if s in objects:
                        b.edge(objects[s], b.node("attribute", tok.lemma, (tok.start, tok.end)), "attribute")

        def subjects_of(v: int) -> list[int]:
            subj = [c for c in kids(v, "nsubj") if sent[c].deprel != "nsubj:pass"]
            agents = [c for c in children[v] if sent[c].deprel == "obl:agent"]
            found = [x for s in subj + agents for x in _conjuncts(s, children, sent)]
            if not found and sent[v].deprel in {"conj", "xcomp"} and sent[v].head > 0:
                return subjects_of(sent[v].head - 1)  # "a cat sits and sleeps": share the first verb's subject
            return found

        for v, tok in enumerate(sent):
            if tok.upos != "VERB":
                continue
            subjects = [s for s in subjects_of(v) if s in objects]
            patients = [c for c in children[v] if sent[c].deprel == "nsubj:pass"]
            targets = [(o, tok.lemma, (tok.start, tok.end)) for p in kids(v, "obj") + patients
                       for o in _conjuncts(p, children, sent) if o in objects]
            for obl in kids(v, "obl"):
                if sent[obl].deprel == "obl:agent" or obl in taken:
                    continue
                if obl in grounds:  # "rides to the left of a car" -> (rider, "ride left of", car)
                    label = f"{tok.lemma} {place_label(obl)}"
                    targets += [(o, label, (tok.start, tok.end)) for o in _conjuncts(grounds[obl], children, sent)
                                if o in objects]
                    continue
                case = kids(obl, "case")
                label = f"{tok.lemma} {sent[case[0]].lemma}" if case else tok.lemma
                targets += [(o, label, (tok.start, tok.end)) for o in _conjuncts(obl, children, sent) if o in objects]
            adverbs = [a for a in kids(v, "advmod") if sent[a].lemma not in _SKIP_ADVERBS]
            adverbs += [d for d in kids(v, "obl") if d in directions]
            if not subjects and not targets:
                continue
            pairs = [(s, t) for s in subjects or [None] for t in targets or [None]]
            for s, t in pairs:
                label, span = (t[1], t[2]) if t is not None else (tok.lemma, (tok.start, tok.end))
                r = b.node("relation", label, span)
                if s is not None:
                    b.edge(objects[s], r, "subject")
                if t is not None:
                    b.edge(r, objects[t[0]], "object")
                for a in adverbs:
                    b.edge(r, b.node("adverb", sent[a].lemma, (sent[a].start, sent[a].end)), "adverb")
        # Place phrases on a noun or after a copula: "the bike to the left of the car", "the cup is on top of it".
        for n, g in grounds.items():
            heads = [sent[n].head - 1] if sent[n].deprel.split(":")[0] == "nmod" and sent[n].head > 0 else []
            if kids(n, "cop"):
                heads = kids(n, "nsubj")
            case = kids(n, "case")
            span = (sent[case[0]].start if case else sent[n].start, sent[n].end)
            for h in (x for hd in heads for x in _conjuncts(hd, children, sent) if x in objects):
                for o in (x for x in _conjuncts(g, children, sent) if x in objects):
                    r = b.node("relation", place_label(n), span)
                    b.edge(objects[h], r, "subject")
                    b.edge(r, objects[o], "object")
        # Prepositional relations between nouns: "a cat on a mat".
        for i, tok in enumerate(sent):
            if tok.deprel == "nmod" and i in objects and tok.head - 1 in objects and i not in taken:
                case = kids(i, "case")
                if case:
                    r = b.node("relation", sent[case[0]].lemma, (sent[case[0]].start, sent[case[0]].end))
                    b.edge(objects[tok.head - 1], r, "subject")
                    b.edge(r, objects[i], "object")
    return b.graph()
