"""Textual scene graphs (TSG) from Universal Dependencies parses.

Rules (in the spirit of Schuster et al. 2015, on UD relations only, so every parser backend shares them):
nouns become objects (compounds folded into the label), ``amod``/``nummod`` become attributes, a verb becomes
one predicate node per (subject, object) pair with ``obl`` prepositions folded into its label ("sit on"),
passives swap agent and patient, conjuncts share their head's role, ``nmod`` + ``case`` between nouns is a
prepositional relation, and ``advmod`` adverbs of a verb become *predicate-attribute* (adverb) nodes.
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

        objects: dict[int, int] = {}
        for i, tok in enumerate(sent):
            if tok.upos not in {"NOUN", "PROPN"} or tok.deprel == "compound" or tok.lemma in _SKIP_NOUNS:
                continue
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
                if sent[obl].deprel == "obl:agent":
                    continue
                case = kids(obl, "case")
                label = f"{tok.lemma} {sent[case[0]].lemma}" if case else tok.lemma
                targets += [(o, label, (tok.start, tok.end)) for o in _conjuncts(obl, children, sent) if o in objects]
            adverbs = [a for a in kids(v, "advmod") if sent[a].lemma not in _SKIP_ADVERBS]
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
        # Prepositional relations between nouns: "a cat on a mat".
        for i, tok in enumerate(sent):
            if tok.deprel == "nmod" and i in objects and tok.head - 1 in objects:
                case = kids(i, "case")
                if case:
                    r = b.node("relation", sent[case[0]].lemma, (sent[case[0]].start, sent[case[0]].end))
                    b.edge(objects[tok.head - 1], r, "subject")
                    b.edge(r, objects[i], "object")
    return b.graph()
