"""Universal Dependencies parses: the one format every text parser backend produces for the TSG rules.

The rules in :mod:`finsta_pl.graphs.tsg` read only UD relations (``nsubj``, ``obj``, ``obl`` + ``case``,
``amod``, ``nummod``, ``advmod``, ``conj``, ``nsubj:pass``, ``obl:agent``, ``compound``), so a stanza, spaCy
or rule-based parse gives the same graph for the same tree.  :class:`RuleParser` is the dependency-free
backend: a lexicon plus phrase rules that cover the short descriptive English of captions and questions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

_TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:'[a-z]+)?|[^\sA-Za-z0-9]")


@dataclass(frozen=True)
class UDToken:
    """One word of a UD parse; ``head`` is 1-based (0 = root), ``start``/``end`` are character offsets."""

    text: str
    lemma: str
    upos: str
    head: int
    deprel: str
    start: int
    end: int


class UDParser(Protocol):
    """Anything that turns text into UD sentences."""

    name: str

    def parse(self, text: str) -> list[list[UDToken]]:
        """Sentences of tokens; heads are indices within the sentence."""
        ...


def tokenize_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """Words and punctuation with character offsets (lower-cased), shared by the rule parser and the host."""
    return [(m.group(0).lower(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


_DET = {"a", "an", "the", "this", "that", "these", "those", "some", "another", "each", "every", "its", "his",
        "her", "their", "my", "your", "our", "any", "no"}
_WH = {"what", "which", "who", "whom", "whose", "how", "where", "when", "why"}
_AUX = {"is", "are", "was", "were", "be", "been", "being", "am", "does", "do", "did", "has", "have", "had",
        "can", "could", "will", "would", "should", "may", "might", "must", "'s"}
_ADP = {"on", "in", "at", "of", "with", "to", "from", "by", "near", "under", "over", "above", "below", "behind",
        "beside", "into", "onto", "toward", "towards", "across", "around", "through", "inside", "outside",
        "along", "past", "between", "against", "off", "out", "about", "after", "before", "while", "for"}
_CCONJ = {"and", "or", "but", "then"}
_PRON = {"it", "they", "he", "she", "them", "him", "there", "here", "someone", "something", "everyone"}
_NUM = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "many", "several"}
_ADJ = {"red", "green", "blue", "yellow", "orange", "purple", "pink", "black", "white", "gray", "grey",
        "brown", "cyan", "small", "large", "big", "little", "tiny", "huge", "tall", "short", "long", "young",
        "old", "new", "round", "bright", "dark", "wooden", "empty", "full", "other", "same",
        "different", "happy", "sad", "beautiful", "funny", "hot", "cold", "first", "last", "left", "right"}
# Words that are adverbs when they follow a verb ("moves left", "goes up") but adjectives/nouns elsewhere.
_DIRECTION = {"left", "right", "up", "down", "away", "back", "forward", "backward", "together", "apart",
              "around", "upward", "downward"}
_ADV = {"quickly", "slowly", "fast", "very", "again", "together", "away", "also", "still", "then", "now",
        "suddenly", "gradually", "steadily", "carefully", "gently", "loudly", "quietly", "rapidly"}
_VERB = {"move", "moves", "moving", "moved", "approach", "approaches", "approaching", "approached", "grow",
         "grows", "growing", "grew", "appear", "appears", "appearing", "appeared", "stay", "stays", "staying",
         "shrink", "shrinks", "go", "goes", "going", "went", "come", "comes", "run", "runs", "running", "ran",
         "walk", "walks", "walking", "sit", "sits", "sitting", "sat", "stand", "stands", "standing", "play",
         "plays", "playing", "hold", "holds", "holding", "ride", "rides", "riding", "talk", "talks", "talking",
         "eat", "eats", "eating", "cook", "cooks", "cooking", "drive", "drives", "driving", "jump", "jumps",
         "throw", "throws", "kick", "kicks", "kicked", "put", "puts", "cut", "cuts", "open", "opens", "pour",
         "pours", "dance", "dances", "dancing", "sing", "sings", "singing", "do", "does", "doing", "done",
         "touch", "touches", "follow", "follows", "chase", "chases", "enter", "enters", "leave", "leaves",
         "wear", "wears", "wearing", "make", "makes", "making", "show", "shows", "showing", "use", "uses"}
_IRREGULAR_LEMMA = {"went": "go", "ran": "run", "sat": "sit", "grew": "grow", "done": "do", "does": "do",
                    "did": "do", "is": "be", "are": "be", "was": "be", "were": "be", "am": "be", "men": "man",
                    "women": "woman", "children": "child", "people": "person", "mice": "mouse", "feet": "foot",
                    "kicked": "kick", "leaves": "leave", "goes": "go", "held": "hold", "ate": "eat", "threw": "throw"}


_ING_IRREGULAR = {"ly": "lie", "dy": "die", "ty": "tie", "be": "be"}


def _ing_lemma(stem: str) -> str:
    """The verb of an ``-ing`` form's stem: running -> run (doubled consonant, but falling -> fall), riding ->
    ride and typing -> type (one vowel then one consonant: the ``e`` was dropped), dancing -> dance."""
    if stem in _ING_IRREGULAR:
        return _ING_IRREGULAR[stem]
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
        return stem[:-1]
    if (stem + "e" in _VERB or re.fullmatch(r"[^aeiouy]*[aeiouy][^aeiouwxy]", stem)
            or stem.endswith(("nc", "rg", "dg", "rv", "lv", "ev", "iv", "av", "ov"))):
        return stem + "e"
    return stem


def _lemma(word: str, upos: str) -> str:
    if word in _IRREGULAR_LEMMA:
        return _IRREGULAR_LEMMA[word]
    if upos == "NOUN" and len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        if word.endswith(("ches", "shes", "xes", "ses", "zes")):
            return word[:-2]
        return word[:-3] + "y" if word.endswith("ies") else word[:-1]
    if upos == "VERB":
        if word.endswith("ing") and len(word) >= 5:
            return _ing_lemma(word[:-3])
        if word.endswith("ed") and len(word) > 4:
            stem = word[:-2]
            return stem if stem + "e" not in _VERB else stem + "e"
        if word.endswith("es") and word[:-2] in _VERB:
            return word[:-2]
        if word.endswith("s") and not word.endswith("ss"):
            return word[:-1]
    return word


class RuleParser:
    """Dependency-free UD parser for short descriptive English (captions, questions, statements).

    It tags words with a lexicon and suffix rules, groups ``DET NUM ADJ* NOUN+`` noun phrases, and attaches
    verbs, prepositions, adverbs and conjunctions with the UD relations the TSG rules read.  It is exact on
    the embedded synthetic world and a reasonable fallback elsewhere; stanza or spaCy are better on real text.
    """

    name = "rule"

    def parse(self, text: str) -> list[list[UDToken]]:
        """Split into sentences at ``.``, ``!``, ``?`` and ``;`` and parse each."""
        sentences, current = [], []
        for tok in tokenize_with_offsets(text):
            if tok[0] in {".", "!", "?", ";"}:
                if current:
                    sentences.append(current)
                current = []
            elif re.match(r"[a-z0-9]", tok[0]):
                current.append(tok)
        if current:
            sentences.append(current)
        return [self._parse_sentence(s) for s in sentences]

    @staticmethod
    def _tag(words: list[str]) -> list[str]:
        tags = []
        for i, w in enumerate(words):
            prev = tags[-1] if tags else None
            if w in _WH:
                # "what colour", "which way": a determiner; a bare "what"/"who" is a pronoun.
                determiner = w in {"which", "whose"} or (w == "what" and i + 1 < len(words) and words[i + 1] not in _AUX)
                tags.append("DET" if determiner else ("PRON" if w in {"what", "who", "whom"} else "ADV"))
            elif w in _DET:
                tags.append("DET")
            elif w in _AUX and not (w in {"do", "does", "did", "has", "have", "had"} and i + 1 == len(words)):
                tags.append("AUX")
            elif w in _CCONJ:
                tags.append("CCONJ")
            elif w in _PRON:
                tags.append("PRON")
            elif w in _NUM or w.isdigit():
                tags.append("NUM")
            elif w in _DIRECTION and prev in {"VERB", "ADV"}:
                tags.append("ADV")
            elif w in _ADP:
                tags.append("ADP")
            elif w in _ADV or (w.endswith("ly") and len(w) > 4 and w not in {"family", "fly", "jelly"}):
                tags.append("ADV")
            elif w in _VERB and prev != "DET":
                tags.append("VERB")
            elif w in _ADJ and i + 1 < len(words) and words[i + 1] not in _AUX | _CCONJ | _ADP:
                tags.append("ADJ")
            elif w in _ADJ and prev in {"AUX"}:
                tags.append("ADJ")
            elif (w.endswith("ing") and len(w) > 5) or (w.endswith("ed") and len(w) > 4 and prev == "AUX"):
                tags.append("VERB")
            elif w.endswith("s") and prev == "NOUN" and (i + 1 == len(words) or words[i + 1] not in _AUX):
                tags.append("VERB")  # "a cat chases a mouse": plural-looking word right after a noun phrase
            else:
                tags.append("NOUN")
        return tags

    def _parse_sentence(self, toks: list[tuple[str, int, int]]) -> list[UDToken]:
        words = [t[0] for t in toks]
        tags = self._tag(words)
        n = len(words)
        head = [0] * n
        rel = ["dep"] * n
        # Noun phrases: the last NOUN of a NOUN run heads its determiners, numbers, adjectives and compounds.
        np_head = [-1] * n
        i = 0
        while i < n:
            j = i
            while j < n and tags[j] in {"DET", "NUM", "ADJ"}:
                j += 1
            k = j
            while k < n and tags[k] == "NOUN":
                k += 1
            if k > j:  # found a noun phrase i..k-1 headed by k-1
                h = k - 1
                for m in range(i, h):
                    np_head[m] = h
                    head[m] = h + 1
                    rel[m] = {"DET": "det", "NUM": "nummod", "ADJ": "amod", "NOUN": "compound"}[tags[m]]
                np_head[h] = h
                i = k
            else:
                i = max(j, i + 1)
        # Wh-pronouns ("what does it do") are never subjects: they stand for the answer, an object at most.
        wh_np = {np_head[m] for m in range(n) if tags[m] == "DET" and words[m] in _WH and np_head[m] >= 0}
        heads_of_np = [m for m in range(n) if (np_head[m] == m and m not in wh_np) or (tags[m] == "PRON" and words[m] not in _WH)]
        verbs = [m for m in range(n) if tags[m] == "VERB"]
        root = verbs[0] if verbs else (heads_of_np[0] if heads_of_np else 0)
        rel[root], head[root] = "root", 0
        passive = any(tags[m] == "AUX" and _lemma(words[m], "AUX") == "be" for m in range(root)) and words[root].endswith(("ed", "en"))
        last_verb, last_subject = None, None
        pending_case = None
        for m in range(n):
            if m == root and tags[m] != "VERB":
                continue
            t = tags[m]
            if t == "VERB":
                if m != root:
                    head[m], rel[m] = root + 1, ("conj" if any(tags[x] == "CCONJ" for x in range(root, m)) else "xcomp")
                subj = [x for x in heads_of_np if x < m and (last_verb is None or x > last_verb)]
                if subj:
                    s = subj[0]
                    head[s], rel[s] = m + 1, ("nsubj:pass" if passive and m == root else "nsubj")
                    last_subject = s
                    for x in subj[1:]:  # "a cat and a dog run": the extra subjects are conjuncts
                        if any(tags[y] == "CCONJ" for y in range(s, x)):
                            head[x], rel[x] = s + 1, "conj"
                elif last_subject is not None and m != root:
                    pass  # shared subject: the TSG rules propagate it through conj
                last_verb = m
                pending_case = None
            elif t == "ADP":
                pending_case = m
            elif t == "ADV":
                target = last_verb if last_verb is not None else root
                head[m], rel[m] = target + 1, "advmod"
            elif t == "AUX":
                head[m], rel[m] = root + 1, ("aux:pass" if passive else ("cop" if not verbs else "aux"))
            elif t == "CCONJ":
                nxt = next((x for x in range(m + 1, n) if np_head[x] == x or tags[x] == "VERB"), None)
                head[m], rel[m] = (nxt + 1 if nxt is not None else root + 1), "cc"
            elif (t == "PRON" and words[m] in _WH) or (m in wh_np and m != root):
                head[m], rel[m] = root + 1, "obj"
            elif np_head[m] == m or t == "PRON":
                if rel[m] not in {"dep"}:
                    continue
                if pending_case is not None:
                    head[pending_case], rel[pending_case] = m + 1, "case"
                    prev_np = [x for x in heads_of_np if x < pending_case]
                    if last_verb is not None and last_verb < pending_case:
                        is_agent = passive and words[pending_case] == "by"
                        head[m], rel[m] = last_verb + 1, ("obl:agent" if is_agent else "obl")
                    elif prev_np:
                        head[m], rel[m] = prev_np[-1] + 1, "nmod"
                    pending_case = None
                elif last_verb is not None and m > last_verb:
                    prev_obj = [x for x in heads_of_np if last_verb < x < m and rel[x] in {"obj", "conj"}]
                    if prev_obj and any(tags[y] == "CCONJ" for y in range(prev_obj[0], m)):
                        head[m], rel[m] = prev_obj[0] + 1, "conj"
                    else:
                        head[m], rel[m] = last_verb + 1, "obj"
                elif m != root:
                    earlier = [x for x in heads_of_np if x < m and rel[x] in {"root", "nsubj", "dep", "conj"}]
                    if earlier and any(tags[y] == "CCONJ" for y in range(earlier[-1], m)):
                        head[m], rel[m] = earlier[-1] + 1, "conj"
                    elif m != root:
                        head[m], rel[m] = root + 1, ("nsubj" if not verbs else "dep")
            elif t == "NUM" and np_head[m] == -1:
                head[m], rel[m] = root + 1, "nummod"
        return [
            UDToken(text=w, lemma=_lemma(w, tags[m]), upos=tags[m], head=head[m], deprel=rel[m],
                    start=toks[m][1], end=toks[m][2])
            for m, w in enumerate(words)
        ]
