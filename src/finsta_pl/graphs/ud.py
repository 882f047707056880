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
_DO_HAVE = {"do", "does", "did", "has", "have", "had"}
_ADP = {"on", "in", "at", "of", "with", "to", "from", "by", "near", "under", "over", "above", "below", "behind",
        "beside", "into", "onto", "toward", "towards", "across", "around", "through", "inside", "outside",
        "along", "past", "between", "against", "off", "out", "about", "after", "before", "for", "like",
        "down", "up", "during", "without", "beneath", "underneath", "upon", "within", "among"}
_CCONJ = {"and", "or", "but"}
#: subordinators that open a clause with its own subject ("while a barber cuts his hair")
_SCONJ = {"while", "as", "when", "because", "although", "though", "if", "whereas", "once"}
#: prepositions that are subordinators before a subject pronoun ("after she turns off the stove")
_TIME_SCONJ = {"after", "before", "until", "since"}
#: words after a question's pro-verb "do" that show it is the clause's verb ("what does X do after Y moves?")
_ORDER_NEXT = {"after", "before", "while", "when", "until", "then", "first"}
_PRON = {"it", "they", "he", "she", "them", "him", "there", "here", "someone", "something", "everyone",
         "somebody", "everybody", "i", "me", "we", "us", "you", "itself", "himself", "herself", "themselves"}
_SUBJECT_PRON = {"it", "they", "he", "she", "someone", "somebody", "everyone", "everybody", "i", "we", "you"}
_NUM = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "many", "several"}
_ADJ = {"red", "green", "blue", "yellow", "orange", "purple", "pink", "black", "white", "gray", "grey",
        "brown", "cyan", "small", "large", "big", "little", "tiny", "huge", "tall", "short", "long", "young",
        "old", "new", "round", "bright", "dark", "wooden", "empty", "full", "other", "same",
        "different", "happy", "sad", "beautiful", "funny", "hot", "cold", "first", "last", "left", "right",
        # general English adjectives of captions: age, size, colour, material, texture, temperature, mood
        "older", "younger", "elderly", "bigger", "smaller", "heavy", "light", "thick", "thin", "wide", "narrow",
        "fat", "giant", "golden", "silver", "blond", "blonde", "dirty", "clean", "wet", "dry", "sunny", "snowy",
        "rainy", "cloudy", "muddy", "sandy", "rocky", "grassy", "shirtless", "naked", "bald", "pretty", "ugly",
        "cute", "angry", "scared", "tired", "busy", "crowded", "quiet", "loud", "soft", "hard", "smooth",
        "rough", "sharp", "fresh", "raw", "warm", "cool", "frozen", "electric", "plastic", "metal", "glass",
        "leather", "paper", "open", "closed", "broken", "fake", "real", "huge", "famous", "professional",
        "asian", "african", "american", "male", "female", "teenage", "adult", "baby", "various", "several",
        "friendly", "lovely", "lonely", "silly", "curly", "hairy", "furry", "fluffy", "striped", "colorful",
        "colourful", "whole", "entire", "front", "back", "middle", "dead", "alive", "serious", "strange",
        "careful", "nervous", "excited", "dangerous", "favorite", "favourite", "simple", "fancy", "delicious"}
#: "-ly" words that are adjectives
_LY_ADJ = {"elderly", "friendly", "lovely", "lonely", "silly", "curly", "ugly", "holy", "chilly", "hilly",
           "oily", "smelly", "family", "fly", "jelly", "belly", "bully", "lily", "early", "daily", "only"}
# Words that are adverbs when they follow a verb ("moves left", "goes up") but adjectives/nouns elsewhere.
_DIRECTION = {"left", "right", "up", "down", "away", "back", "forward", "backward", "together", "apart",
              "around", "upward", "downward"}
#: phrasal-verb particles: an adverb before a preposition or at the end ("holds it up to", "walks out")
_PARTICLE = {"up", "down", "out", "off", "away", "back", "over", "around", "by", "past", "in", "on", "along",
             "aside", "forward"}
#: multi-word prepositions headed by an adverb: both words are the noun's ``case``
_MULTIWORD_ADP = {("out", "of"), ("away", "from"), ("next", "to"), ("close", "to"), ("ahead", "of"),
                  ("because", "of"), ("instead", "of"), ("inside", "of"), ("outside", "of"), ("off", "of"),
                  ("out", "from")}
_ADV = {"quickly", "slowly", "fast", "very", "again", "together", "away", "also", "still", "then", "now",
        "suddenly", "gradually", "steadily", "carefully", "gently", "loudly", "quietly", "rapidly", "just",
        "later", "outside", "inside", "home", "too", "even", "already", "almost", "downstairs", "upstairs"}
_VERB = {"move", "moves", "moving", "moved", "approach", "approaches", "approaching", "approached", "grow",
         "grows", "growing", "grew", "appear", "appears", "appearing", "appeared", "stay", "stays", "staying",
         "shrink", "shrinks", "go", "goes", "going", "went", "come", "comes", "run", "runs", "running", "ran",
         "walk", "walks", "walking", "sit", "sits", "sitting", "sat", "stand", "stands", "standing", "play",
         "plays", "playing", "hold", "holds", "holding", "ride", "rides", "riding", "talk", "talks", "talking",
         "eat", "eats", "eating", "cook", "cooks", "cooking", "drive", "drives", "driving", "jump", "jumps",
         "throw", "throws", "kick", "kicks", "kicked", "put", "puts", "cut", "cuts", "open", "opens", "pour",
         "pours", "dance", "dances", "dancing", "sing", "sings", "singing", "do", "does", "doing", "done",
         "touch", "touches", "follow", "follows", "chase", "chases", "enter", "enters", "leave", "leaves",
         "wear", "wears", "wearing", "make", "makes", "making", "show", "shows", "showing", "use", "uses",
         "seen", "shown", "held", "taken", "given", "thrown", "worn", "ridden", "eaten", "driven", "broken",
         "hidden", "fallen", "stood", "took", "gave", "saw", "fell", "got", "came", "made"}
_IRREGULAR_LEMMA = {"went": "go", "ran": "run", "sat": "sit", "grew": "grow", "done": "do", "does": "do",
                    "did": "do", "is": "be", "are": "be", "was": "be", "were": "be", "am": "be", "men": "man",
                    "women": "woman", "children": "child", "mice": "mouse", "feet": "foot", "teeth": "tooth",
                    "geese": "goose", "kicked": "kick", "leaves": "leave", "goes": "go", "held": "hold",
                    "ate": "eat", "threw": "throw", "seen": "see", "shown": "show", "taken": "take",
                    "given": "give", "thrown": "throw", "worn": "wear", "ridden": "ride", "eaten": "eat",
                    "driven": "drive", "broken": "break", "hidden": "hide", "fallen": "fall", "stood": "stand",
                    "took": "take", "gave": "give", "saw": "see", "fell": "fall", "got": "get", "came": "come",
                    "made": "make", "has": "have", "had": "have", "'s": "be"}
#: plural pronouns and plural nouns without "-s": a bare verb may follow them ("they kiss", "people wave")
_PLURAL_WORDS = {"they", "we", "you", "i", "people", "men", "women", "children", "police"}


_ING_IRREGULAR = {"ly": "lie", "dy": "die", "ty": "tie", "be": "be"}


def _ing_lemma(stem: str) -> str:
    """The verb of an ``-ing`` (or ``-ed``) form's stem: running -> run (doubled consonant, but falling -> fall),
    riding -> ride and typing -> type (one vowel then one consonant: the ``e`` was dropped), dancing -> dance."""
    if stem in _ING_IRREGULAR:
        return _ING_IRREGULAR[stem]
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
        return stem[:-1]
    if (stem + "e" in _VERB or re.fullmatch(r"[^aeiouy]*[aeiouy][^aeiouwxy]", stem)
            or stem.endswith(("nc", "rg", "dg", "rv", "lv", "ev", "iv", "av", "ov", "uc", "os", "us", "rs", "ps",
                              "ys", "iz"))):
        return stem + "e"
    return stem


def _lemma(word: str, upos: str) -> str:
    if word in _IRREGULAR_LEMMA and (upos in {"VERB", "AUX"} or word not in {"leaves", "saw", "fell"}):
        return _IRREGULAR_LEMMA[word]
    if upos == "NOUN" and len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "ous")):
        if word.endswith(("ches", "shes", "xes", "sses", "zzes")):
            return word[:-2]
        return word[:-3] + "y" if word.endswith("ies") else word[:-1]
    if upos == "VERB":
        if word.endswith("ing") and len(word) >= 5:
            return _ing_lemma(word[:-3])
        if word.endswith("ied") and len(word) > 4:
            return word[:-3] + "y"
        if word.endswith("ed") and len(word) > 4:
            return _ing_lemma(word[:-2]) if not word[:-1] in _VERB else word[:-1]
        if word.endswith("ies") and len(word) > 4:
            return word[:-3] + ("ie" if len(word) == 4 else "y")
        if word.endswith("ies"):
            return word[:-1]  # ties -> tie, lies -> lie
        if word.endswith(("ches", "shes", "xes", "sses", "zzes")) or (word.endswith("es") and word[:-2] in _VERB):
            return word[:-2]
        if word.endswith("s") and not word.endswith("ss"):
            return word[:-1]
    return word


def _is_ing(w: str) -> bool:
    """An ``-ing`` form of a verb (the stem has a vowel: "lying", but not "thing", "ring")."""
    return w.endswith("ing") and len(w) >= 5 and bool(re.search(r"[aeiouy]", w[:-3]))


def _opens_clause(words: list[str], i: int) -> bool:
    """Whether the time word ``words[i]`` ("after", "before") opens a clause with its own subject noun phrase
    and verb ("after the blue square moves", "before the kids leave"), not a noun phrase ("after the bus")."""
    j = i + 1
    while j < len(words) and j <= i + 5 and (words[j] in _DET | _NUM | _ADJ or words[j] not in (
            _ADP | _AUX | _CCONJ | _SCONJ | _VERB | _PRON | _ADV | _WH) and not _is_ing(words[j])):
        if j > i + 1 and words[j - 1] not in _DET | _NUM | _ADJ and (words[j].endswith("s") or words[j] in _VERB):
            break  # an "-s" word right after the subject's noun: the clause's verb
        j += 1
    if j >= len(words) or j == i + 1 or words[j - 1] in _DET | _NUM | _ADJ:
        return False
    return words[j] in _VERB or (words[j].endswith("s") and not words[j].endswith(("ss", "us", "is")))


def _plural_like(w: str) -> bool:
    """A plural noun or pronoun that a bare present verb agrees with ("kids pick", "they kiss")."""
    return w in _PLURAL_WORDS or (w.endswith("s") and not w.endswith(("ss", "us", "is", "'s")) and len(w) > 3)


class RuleParser:
    """Dependency-free UD parser for short descriptive English (captions, questions, statements).

    It tags words with a lexicon, suffix and position rules, groups ``DET NUM ADJ* NOUN+`` noun phrases, and
    attaches verbs, prepositions, adverbs and conjunctions with the UD relations the TSG rules read.  It is
    exact on the embedded synthetic world and a reasonable fallback elsewhere; stanza or spaCy are better on
    real text.
    """

    name = "rule"

    def parse(self, text: str) -> list[list[UDToken]]:
        """Split into sentences at ``.``, ``!``, ``?`` and ``;`` and parse each."""
        sentences, current, commas = [], [], []
        for word, start, end in tokenize_with_offsets(text):
            if word in {".", "!", "?", ";"}:
                if current:
                    sentences.append((current, commas))
                current, commas = [], []
            elif word == ",":
                commas.append(len(current))
            elif re.match(r"[a-z0-9]", word):
                if word.endswith("'s") and len(word) > 2:  # "someone's": the possessive or "is" is its own word
                    current += [(word[:-2], start, end - 2), ("'s", end - 2, end)]
                else:
                    current.append((word, start, end))
        if current:
            sentences.append((current, commas))
        return [self._parse_sentence(s, set(c)) for s, c in sentences]

    @staticmethod
    def _tag(words: list[str], commas: set[int] = frozenset()) -> list[str]:
        tags: list[str] = []
        n = len(words)
        clause_verb = False  # a verb seen since the last clause boundary
        for i, w in enumerate(words):
            prev = tags[-1] if tags else None
            pw = words[i - 1] if i > 0 else None
            nx = words[i + 1] if i + 1 < n else None
            if i in commas or prev in {"SCONJ", "CCONJ"}:
                clause_verb = False if prev == "SCONJ" or i in commas else clause_verb
            if w in _WH:
                # "what colour", "which way": a determiner; a bare "what"/"who" is a pronoun.
                determiner = w in {"which", "whose"} or (w == "what" and nx is not None and nx not in _AUX)
                tags.append("DET" if determiner else ("PRON" if w in {"what", "who", "whom"} else "ADV"))
                if i > 0 and w in {"who", "which"}:
                    clause_verb = False  # a relative clause
            elif w == "'s":
                # "SOMEONE's eyes": a possessive before a noun phrase; "he's running": "is"
                poss = nx is not None and nx not in _ADV and not _is_ing(nx) and nx not in _DET | _ADP | _AUX
                tags.append("PART" if poss else "AUX")
            elif w == "her" and (nx is None or nx in _ADP | _CCONJ | _DET | _AUX | _PRON | _ADV | _PARTICLE
                                 or nx.endswith("ly")):
                tags.append("PRON")  # "pushes her gently" (but "her teeth": a determiner)
            elif w in _DET:
                tags.append("DET")
            elif w in _DO_HAVE and (not (i == 0 or (pw in _WH) or (prev == "NOUN" and i > 1 and words[0] in _WH
                                                                  and not clause_verb)
                                         or (i >= 2 and words[i - 2] == "how" and prev == "ADV"))  # "how fast does"
                                    or (w == "do" and i > 0 and (nx is None or nx in {"?", "."} | _ORDER_NEXT))):
                # A clause-final "do" ("what does the square do?") is the pro-verb of the asked action: a relation
                # of its subject, which PTC aligns with the track's predicates (sg-eval does not score it).
                tags.append("VERB")  # "doing tricks", "what does the girl do after ...": lexical do/have
                clause_verb = True
            elif w in _AUX:
                tags.append("AUX")
            elif w in _CCONJ:
                tags.append("CCONJ")
            elif w in _SCONJ or (w in _TIME_SCONJ and (nx in _SUBJECT_PRON or _opens_clause(words, i))):
                tags.append("SCONJ")
                clause_verb = False
            elif w in _PRON:
                tags.append("PRON")
            elif w in _NUM or w.isdigit():
                tags.append("NUM")
            elif nx is not None and (w, nx) in _MULTIWORD_ADP:
                tags.append("ADP")  # "out of", "next to": the first word of a multi-word preposition
            elif pw is not None and (pw, w) in _MULTIWORD_ADP and prev == "ADP":
                tags.append("ADP")
            elif w in _DIRECTION and prev in {"VERB", "ADV"} and not (
                    nx in _DET and w in _ADP and w not in {"up", "down", "away", "back", "off", "out"}):
                # "moves left", "picks up the box" (but "walks around the room": a preposition)
                tags.append("ADV")
            elif w in _PARTICLE and clause_verb and prev in {"PRON", "NOUN", "VERB", "ADV"} and (
                    nx is None or nx in _ADP | _CCONJ | _SCONJ or nx.endswith("ly") or _is_ing(nx)):
                tags.append("ADV")  # "holds it up to the camera", "walks out", "slams the phone down"
            elif w in _ADP:
                tags.append("ADP")
            elif w == "first" and prev in {"VERB", "ADV", "PRON", "NOUN"} and clause_verb and (
                    nx is None or nx in _ADP | _CCONJ | _SCONJ | _TIME_SCONJ):
                tags.append("ADV")  # "which object moves first?" (but "the first man": an adjective)
            elif w in {"hard", "fast"} and prev not in {"DET", "ADJ", "AUX"} and (
                    nx is None or nx in _ADP | _CCONJ | _ADV):
                tags.append("ADV")  # "hitting the ball hard"
            elif w in _ADV or (w.endswith("ly") and len(w) > 4 and w not in _LY_ADJ):
                tags.append("ADV")
            elif w in _VERB and prev not in {"DET", "ADJ", "NUM", "PART"}:
                tags.append("VERB")
                clause_verb = True
            elif ((w in _ADJ or (len(w) > 4 and w.endswith(("ful", "ous", "less", "ish", "ic")))) and nx is not None
                  and nx not in _AUX | _CCONJ | _ADP and not _is_ing(nx)) or (w in _ADJ and prev == "AUX"):
                tags.append("ADJ")
            elif _is_ing(w):
                # "the wedding", "a swimming pool", "wearing boxing gloves": a noun or a noun's modifier
                nominal = prev in {"DET", "ADJ", "NUM", "PART"} or (
                    prev == "VERB" and nx is not None and nx not in _DET | _ADP | _PRON | _ADV | _CCONJ
                    and not nx.endswith("ly") and nx not in _PARTICLE)
                tags.append("NOUN" if nominal else "VERB")
                clause_verb = clause_verb or not nominal
            elif w.endswith("ed") and len(w) > 4 and prev in {"AUX", "ADV"}:
                tags.append("VERB")
                clause_verb = True
            elif (w.endswith("s") and not w.endswith(("ss", "us", "is", "ous")) and not clause_verb
                  and prev in {"NOUN", "PRON", "ADV", "PROPN"} and pw not in _WH and (nx is None or nx not in _AUX)):
                tags.append("VERB")  # "a cat chases a mouse": an "-s" word after the subject noun phrase
                clause_verb = True
            elif (w.endswith("s") and not w.endswith(("ss", "us", "is")) and prev == "CCONJ" and clause_verb
                  and pw is not None and i > 1 and not _plural_like(words[i - 2]) and tags[i - 2] != "VERB"):
                tags.append("VERB")  # "opens the door and walks out": a second verb of the same subject
            elif (prev in {"NOUN", "PRON"} and not clause_verb and pw is not None and _plural_like(pw)
                  and pw not in _WH and (nx is None or nx in _DET | _ADP | _PRON | _CCONJ | _ADV
                                         or nx.endswith("ly"))):
                tags.append("VERB")  # "they kiss", "kids pick up": a bare verb after a plural subject
                clause_verb = True
            elif pw == "to" and (i > 1 and tags[i - 2] in {"VERB", "ADV"}) and nx not in _AUX:
                tags.append("VERB")  # "begins to dance", "stops to wipe"
                clause_verb = True
            elif prev == "NOUN" and not clause_verb and any(t == "AUX" and words[k] in _DO_HAVE for k, t in
                                                            enumerate(tags)) and (
                    nx is None or nx in _DET | _ADP | _PRON | _PARTICLE):
                tags.append("VERB")  # "what does the girl pet?": the verb after a do-question's subject
                clause_verb = True
            else:
                tags.append("NOUN")
        return tags

    def _parse_sentence(self, toks: list[tuple[str, int, int]], commas: set[int] = frozenset()) -> list[UDToken]:
        words = [t[0] for t in toks]
        tags = self._tag(words, commas)
        n = len(words)
        head = [0] * n
        rel = ["dep"] * n
        # Noun phrases: the last NOUN of a NOUN run heads its determiners, numbers, adjectives and compounds.
        np_head = [-1] * n
        np_start: dict[int, int] = {}
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
                np_head[h], np_start[h] = h, i
                i = k
            else:
                i = max(j, i + 1)
        # Wh-pronouns ("what does it do") are never subjects: they stand for the answer, an object at most.
        wh_np = {np_head[m] for m in range(n) if tags[m] == "DET" and words[m] in _WH and np_head[m] >= 0}

        def nominal(m: int) -> bool:
            return np_head[m] == m or tags[m] == "PRON"

        # Possessives: "SOMEONE's eyes" -> nmod:poss(eyes, SOMEONE) + case(SOMEONE, 's).
        for k in range(1, n - 1):
            if tags[k] == "PART" and nominal(k - 1):
                owned = next((x for x in range(k + 1, n) if np_head[x] == x), None)
                if owned is not None:
                    head[k - 1], rel[k - 1], head[k], rel[k] = owned + 1, "nmod:poss", k, "case"
        boundaries = [m for m in range(n) if tags[m] in {"SCONJ", "CCONJ"} or m in commas
                      or (tags[m] == "PRON" and words[m] in {"who", "which", "that"} and m > 0)]
        verbs = [m for m in range(n) if tags[m] == "VERB"]

        def subjects_of(m: int) -> list[int]:
            """The subject noun phrase heads before the verb ``m`` (several when coordinated), if it opens a clause."""
            k = m - 1
            while k >= 0 and tags[k] in {"AUX", "ADV"}:
                k -= 1
            if k < 0 or not (nominal(k) or k in wh_np) or rel[k] == "nmod:poss":
                return []
            bound = max([b for b in boundaries if b <= k] + [-1])
            if bound == k:  # "who is sitting": the relative pronoun itself
                return [k]
            x = k
            bare_ing = _is_ing(words[m]) and not any(tags[y] == "AUX" for y in range(k, m))
            while True:  # climb over noun-modifier PPs: "a man in a red shirt picks ..."
                p = np_start.get(x, x) - 1
                while p >= 0 and tags[p] == "PART":
                    p = np_start.get(p - 1, p - 1) - 1 if p - 1 >= 0 and nominal(p - 1) else -1
                q = p
                while q >= 0 and tags[q] == "ADP":
                    q -= 1
                if p >= 0 and tags[p] == "ADP" and q >= 0 and q < p and nominal(q) and q > bound and not (
                        bare_ing and words[p] == "of"):
                    x = q
                else:
                    break
            if any(tags[y] == "VERB" for y in range(bound + 1, x)):
                return []  # an object of an earlier verb of the clause, not a new subject
            out = [x]
            start = np_start.get(x, x)
            while start >= 2 and tags[start - 1] == "CCONJ" and nominal(start - 2):
                outer = max([b for b in boundaries if b < start - 1] + [-1])
                if any(tags[y] == "VERB" for y in range(outer + 1, start - 2)):
                    break  # "kicks the ball and the boy laughs": the ball is the first clause's object
                out.append(start - 2)  # "a cat and a dog run"
                start = np_start.get(start - 2, start - 2)
            return out

        subj = {m: subjects_of(m) for m in verbs}
        is_subject = {x for xs in subj.values() for x in xs}
        root = next((m for m in verbs if not (subj[m] and words[subj[m][0]] in {"who", "which", "that"}
                                               and subj[m][0] > 0)), verbs[0] if verbs else None)
        if root is None:
            root = next((m for m in range(n) if nominal(m) and m not in wh_np and rel[m] == "dep"), 0)
        rel[root], head[root] = "root", 0

        def passive(m: int) -> bool:
            before = [y for y in range(max(0, m - 3), m) if tags[y] == "AUX"]
            participle = words[m].endswith(("ed", "en")) or words[m] in {"shown", "held", "thrown", "worn", "cut",
                                                                         "put", "hit", "sat", "stood", "made"}
            return participle and any(_lemma(words[y], "AUX") == "be" for y in before)

        last_verb = None
        pending: list[int] = []
        for m in range(n):
            t = tags[m]
            if t == "VERB":
                xs = subj[m]
                for idx, x in enumerate(xs):
                    if idx == 0:
                        head[x], rel[x] = m + 1, ("nsubj:pass" if passive(m) else "nsubj")
                    else:
                        head[x], rel[x] = xs[0] + 1, "conj"
                if m != root:
                    k = m - 1
                    while k >= 0 and tags[k] in {"AUX", "ADV"}:
                        k -= 1
                    rel_pron = xs and words[xs[0]] in {"who", "which", "that"} and xs[0] > 0
                    if rel_pron:
                        noun = max((y for y in range(xs[0]) if nominal(y)), default=None)
                        head[m], rel[m] = (noun + 1 if noun is not None else root + 1), "acl:relcl"
                    elif xs:
                        mark = any(tags[y] == "SCONJ" for y in range(xs[-1]))
                        head[m], rel[m] = root + 1, ("advcl" if mark else "conj")
                    elif k >= 0 and tags[k] == "CCONJ":
                        head[m], rel[m] = root + 1, "conj"
                    elif k >= 0 and tags[k] == "ADP" and last_verb is not None:
                        head[k], rel[k] = m + 1, "mark"  # "to wipe", "after falling"
                        head[m], rel[m] = last_verb + 1, ("xcomp" if words[k] == "to" else "advcl")
                        pending = []
                    else:
                        head[m], rel[m] = (last_verb if last_verb is not None else root) + 1, "xcomp"
                last_verb = m
                pending = []
            elif t == "ADP":
                pending.append(m)
            elif t == "SCONJ":
                nxt = next((x for x in range(m + 1, n) if tags[x] == "VERB"), None)
                head[m], rel[m] = (nxt if nxt is not None else root) + 1, "mark"
            elif t == "ADV":
                nxt = next((x for x in range(m + 1, n) if tags[x] not in {"ADV", "AUX"}), None)
                if words[m] == "then":  # "and then a square moves up": the next verb is the later event
                    nxt = next((x for x in range(m + 1, n) if tags[x] == "VERB"), nxt)
                fallback = last_verb if last_verb is not None else root
                target = nxt if nxt is not None and tags[nxt] == "VERB" else fallback
                head[m], rel[m] = target + 1, "advmod"  # "slowly lifts": the adverb before its verb
            elif t == "AUX":
                nxt = next((x for x in range(m + 1, n) if tags[x] == "VERB"), None)
                same_clause = nxt is not None and not any(tags[y] in {"CCONJ", "SCONJ"} for y in range(m, nxt))
                target = nxt if same_clause else root
                if target != m:
                    head[m] = target + 1
                    rel[m] = "aux:pass" if tags[target] == "VERB" and passive(target) else (
                        "aux" if tags[target] == "VERB" else "cop")
            elif t == "CCONJ":
                nxt = next((x for x in range(m + 1, n) if np_head[x] == x or tags[x] == "VERB"), None)
                head[m], rel[m] = (nxt + 1 if nxt is not None else root + 1), "cc"
            elif (t == "PRON" and words[m] in _WH) or (m in wh_np and m != root):
                if m in is_subject or m == root:
                    continue
                nxt = next((x for x in range(m + 1, n) if tags[x] == "VERB"), root)
                head[m], rel[m] = nxt + 1, "obj"
            elif nominal(m):
                if rel[m] != "dep" or m in is_subject or m == root:
                    pending = [] if m in is_subject else pending
                    continue
                if pending:
                    for c in pending:
                        head[c], rel[c] = m + 1, "case"
                    prev_np = [x for x in range(pending[0]) if nominal(x) and rel[x] != "nmod:poss"]
                    of = words[pending[-1]] == "of" and len(pending) == 1
                    noun_of = of and prev_np and last_verb is not None and prev_np[-1] > last_verb
                    if last_verb is not None and last_verb < pending[0] and not noun_of:  # "of" stays on its noun
                        is_agent = passive(last_verb) and words[pending[-1]] == "by"
                        head[m], rel[m] = last_verb + 1, ("obl:agent" if is_agent else "obl")
                    elif prev_np:
                        head[m], rel[m] = prev_np[-1] + 1, "nmod"
                    pending = []
                elif last_verb is not None and m > last_verb:
                    prev_obj = [x for x in range(last_verb + 1, m) if nominal(x) and rel[x] in {"obj", "conj"}]
                    if prev_obj and any(tags[y] == "CCONJ" for y in range(prev_obj[0], m)):
                        head[m], rel[m] = prev_obj[0] + 1, "conj"
                    else:
                        head[m], rel[m] = last_verb + 1, "obj"
                else:
                    earlier = [x for x in range(m) if nominal(x) and rel[x] in {"root", "nsubj", "dep", "conj"}]
                    if earlier and any(tags[y] == "CCONJ" for y in range(earlier[-1], m)):
                        head[m], rel[m] = earlier[-1] + 1, "conj"
                    else:
                        head[m], rel[m] = root + 1, ("nsubj" if not verbs else "dep")
            elif t == "NUM" and np_head[m] == -1:
                head[m], rel[m] = root + 1, "nummod"
        if pending and last_verb is not None:  # a stranded preposition: "who is he talking to?", "sitting next to?"
            head[pending[0]], rel[pending[0]] = last_verb + 1, "advmod"
            for c in pending[1:]:
                head[c], rel[c] = pending[0] + 1, "advmod"
        return [
            UDToken(text=w, lemma=_lemma(w, tags[m]), upos=tags[m], head=head[m], deprel=rel[m],
                    start=toks[m][1], end=toks[m][2])
            for m, w in enumerate(words)
        ]
