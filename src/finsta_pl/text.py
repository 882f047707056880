"""Word-level text encoding shared by the data pipeline and the built-in host.

The built-in host is trained from scratch, so a word vocabulary built from the training text (plus the
scene-graph label words, so detector labels and TSG labels share embeddings) is all it needs.  Encoding keeps
character offsets, which map parser spans (any backend) onto token positions.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any, Iterable, Protocol

from finsta_pl.graphs.ud import tokenize_with_offsets

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
#: label words the DSG builder can emit; always in the vocabulary so graph labels never fall to [UNK].
GRAPH_WORDS = (
    "scene object region circle square triangle red orange yellow green cyan blue purple pink black white gray "
    "small large left right up down of above below near move grow appear approach quickly slowly"
).split()


class WordVocab:
    """Words to ids (``0`` pad, ``1`` unknown, ``2`` the leading ``[CLS]``)."""

    def __init__(self, words: list[str]) -> None:
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self._warned = False

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, max_size: int = 30000) -> "WordVocab":
        """Vocabulary of the words in ``texts`` seen at least ``min_count`` times, most frequent first."""
        counts = Counter(w for t in texts for w, _, _ in tokenize_with_offsets(t))
        words = [w for w, c in counts.most_common() if c >= min_count]
        extra = [w for w in GRAPH_WORDS if w not in counts]
        return cls([PAD, UNK, CLS] + (words + extra)[: max_size - 3])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str, max_len: int) -> tuple[list[int], list[tuple[int, int]]]:
        """``[CLS]`` + word ids (at most ``max_len`` in all) and each token's character span (CLS: ``(-1, -1)``)."""
        toks = tokenize_with_offsets(text)
        if len(toks) + 1 > max_len and not self._warned:
            warnings.warn(f"text truncated to {max_len} tokens: {text[:60]!r}...", stacklevel=2)
            self._warned = True
        toks = toks[: max_len - 1]
        ids = [self.index[CLS]] + [self.index.get(w, 1) for w, _, _ in toks]
        return ids, [(-1, -1)] + [(s, e) for _, s, e in toks]

    def decode(self, ids: list[int]) -> str:
        """Words of ids, without pads and ``[CLS]``; ids outside the vocabulary (a decoder's end token) stop."""
        words = []
        for i in ids:
            if not 0 <= i < len(self.words):
                break
            if i > 2:
                words.append(self.words[i])
            elif i == 1:
                words.append(UNK)
        return " ".join(words)

    def encode_label(self, label: str) -> list[int]:
        """Word ids of a scene-graph label ("left of" -> two ids)."""
        return [self.index.get(w, 1) for w, _, _ in tokenize_with_offsets(label)]

    def info(self) -> dict[str, Any]:
        """What a model must know: the word list (it sizes the built-in host's embedding table)."""
        return {"vocab": self.words}


class TextTokenizer(Protocol):
    """What the data pipeline needs from a tokenizer: :class:`WordVocab` or ``hf_tokenizer.HFTokenizer``."""

    def __len__(self) -> int: ...
    def encode(self, text: str, max_len: int) -> tuple[list[int], list[tuple[int, int]]]: ...
    def encode_label(self, label: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def info(self) -> dict[str, Any]: ...


def make_tokenizer(spec: str, training_texts: Iterable[str]) -> TextTokenizer:
    """``words``: a word vocabulary built from ``training_texts`` (the built-in host); anything else is the
    folder of a `transformers` tokenizer, the one of the host checkpoint (e.g. CLIP4Clip's)."""
    if spec == "words":
        return WordVocab.build(training_texts)
    from finsta_pl.hf_tokenizer import HFTokenizer

    return HFTokenizer(spec)


def tokenizer_from_info(text: dict[str, Any]) -> TextTokenizer:
    """The tokenizer a model was trained with, from its data description (``DataInfo.text``)."""
    if "vocab" in text:
        return WordVocab(text["vocab"])
    from finsta_pl.hf_tokenizer import HFTokenizer

    return HFTokenizer(text["tokenizer"])


def char_to_token_spans(char_spans: list[tuple[int, int]], offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Map character spans to ``[start, end)`` token spans over ``offsets``; ``(-1, -1)`` when nothing overlaps."""
    out = []
    for cs, ce in char_spans:
        hit = [k for k, (s, e) in enumerate(offsets) if s >= 0 and s < ce and e > cs]
        out.append((hit[0], hit[-1] + 1) if hit else (-1, -1))
    return out
