"""Captioning metrics as the field computes them: BLEU-1..4, METEOR, ROUGE-L and CIDEr from pycocoevalcap, on
text tokenized by its PTB tokenizer.  Both METEOR and the PTB tokenizer run Java; where Java is missing,
captions are tokenized by lower-casing and splitting off punctuation, METEOR is left out, and one warning
says so (never a crash).

:class:`CaptionScores` keeps token ids (fixed width, so ranks can be gathered) with the clip index, de-duplicates
clips (DDP padding), and decodes and scores on ``compute``.
"""

from __future__ import annotations

import re
import shutil
import warnings
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

_warned = False


def _simple_tokenize(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower()))


def score_captions(predictions: dict[str, str], references: dict[str, list[str]]) -> dict[str, float]:
    """``bleu1``..``bleu4``, ``meteor`` (with Java), ``rouge_l`` and ``cider`` of one caption per key against
    its references."""
    global _warned
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    keys = sorted(predictions)
    java = shutil.which("java") is not None
    if java:
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        tok = PTBTokenizer()
        res = tok.tokenize({k: [{"caption": predictions[k] or "."}] for k in keys})
        gts = tok.tokenize({k: [{"caption": r} for r in references[k]] for k in keys})
    else:
        if not _warned:
            warnings.warn("captioning metrics: no Java on PATH, so METEOR is skipped and captions are tokenized "
                          "without the PTB tokenizer (scores may differ slightly from published ones)", stacklevel=2)
            _warned = True
        res = {k: [_simple_tokenize(predictions[k])] for k in keys}
        gts = {k: [_simple_tokenize(r) for r in references[k]] for k in keys}
    res = {k: [v[0] if v and v[0] else "."] for k, v in res.items()}  # an empty prediction scores zero, not a crash
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"bleu{n + 1}": float(b) for n, b in enumerate(bleu)}
    out["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    out["cider"] = float(Cider().compute_score(gts, res)[0])
    if java:
        from pycocoevalcap.meteor.meteor import Meteor

        meteor = Meteor()  # a Java subprocess, ended when the scorer is collected
        out["meteor"] = float(meteor.compute_score(gts, res)[0])
    return out


class CaptionScores(Metric):
    """Generated captions and references of clips, scored on ``compute`` by :func:`score_captions`."""

    full_state_update = False

    def __init__(self, decode: Callable[[list[int]], str], width: int = 32) -> None:
        super().__init__()
        self.decode, self.width = decode, width
        for name in ("index", "prediction", "ref_index", "ref_id", "reference"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def _fixed(self, ids: Tensor) -> Tensor:
        ids = ids[:, : self.width]
        return F.pad(ids, (0, self.width - ids.shape[1]))

    def update(self, index: Tensor, prediction: Tensor, ref_index: Tensor, ref_id: Tensor, reference: Tensor) -> None:
        """Generated ids of clips ``index``; reference ids (caption ``ref_id``) of clips ``ref_index``."""
        self.index.append(index.detach().long())
        self.prediction.append(self._fixed(prediction.detach().long()))
        self.ref_index.append(ref_index.detach().long())
        self.ref_id.append(ref_id.detach().long())
        self.reference.append(self._fixed(reference.detach().long()))

    def texts(self) -> tuple[dict[str, str], dict[str, list[str]]]:
        """Decoded predictions and references per clip (each clip once)."""
        index, prediction = dim_zero_cat(self.index), dim_zero_cat(self.prediction)
        ref_index, ref_id, reference = (dim_zero_cat(x) for x in (self.ref_index, self.ref_id, self.reference))
        predictions = {str(int(i)): self.decode(p[p != 0].tolist()) for i, p in zip(index, prediction)}
        references: dict[str, list[str]] = {}
        seen = set()
        for i, caption, r in zip(ref_index.tolist(), ref_id.tolist(), reference):
            if caption not in seen:  # a clip repeated by DDP padding brings its references twice
                seen.add(caption)
                references.setdefault(str(i), []).append(self.decode(r[r != 0].tolist()))
        return predictions, references

    def compute(self) -> dict[str, Tensor]:
        """The scores over all clips seen."""
        predictions, references = self.texts()
        return {k: torch.tensor(v) for k, v in score_captions(predictions, references).items()}
