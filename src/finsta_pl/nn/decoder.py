"""A Transformer caption decoder over video tokens, with teacher forcing, greedy search and beam search.

Token ids are the host tokenizer's (``0`` pads); the decoder adds one id of its own, ``end`` (= vocabulary
size), and starts every sequence with the tokenizer's first id of an encoded text (``[CLS]`` / start of text).
Beam search keeps ``beam_size`` hypotheses per clip and ranks finished ones by ``log p / length ** alpha``
(``length_penalty`` = alpha, GNMT-style without the constant); width 1 is exactly greedy search.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CaptionDecoder(nn.Module):
    """``vocab_size`` host ids + the end id; memory ``[B, S, dim]`` is what every step attends to, and
    ``memory_pad [B, S]`` (``True`` = padding, optional) marks memory slots to ignore (graph nodes padded to
    the largest graph of the batch)."""

    def __init__(self, vocab_size: int, dim: int, heads: int = 4, layers: int = 2, max_len: int = 32,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.end = vocab_size
        self.max_len = max_len
        self.embed = nn.Embedding(vocab_size + 1, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(max_len + 1, dim))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerDecoderLayer(dim, heads, 2 * dim, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, vocab_size + 1)

    def forward(self, tokens: Tensor, memory: Tensor, memory_pad: Tensor | None = None) -> Tensor:
        """Next-token logits ``[B, L, V+1]`` for inputs ``tokens [B, L]`` (causal)."""
        length = tokens.shape[1]
        x = self.embed(tokens) + self.pos[:length]
        # Boolean like the padding masks (True = may not attend): mixed mask types are deprecated in torch.
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=tokens.device), 1)
        h = self.decoder(x, memory, tgt_mask=causal, tgt_key_padding_mask=tokens == 0, tgt_is_causal=True,
                         memory_key_padding_mask=memory_pad)
        return self.out(self.norm(h))

    def teacher_forcing_loss(self, text_ids: Tensor, memory: Tensor, memory_pad: Tensor | None = None) -> Tensor:
        """Cross-entropy of each encoded caption (``[start, w1 .. wn]``, 0-padded) followed by ``end``."""
        text_ids = text_ids[:, : self.max_len]
        lengths = (text_ids != 0).sum(1)
        target = torch.full_like(text_ids, -100)
        target[:, :-1] = torch.where(text_ids[:, 1:] != 0, text_ids[:, 1:], -100)
        rows = torch.arange(text_ids.shape[0], device=text_ids.device)
        room = lengths < text_ids.shape[1]
        # The end id goes after the last word; a caption that fills every position is cut before its end.
        target[rows[room], lengths[room] - 1] = self.end
        target[rows[~room], -1] = self.end
        logits = self(text_ids, memory, memory_pad)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1), ignore_index=-100)

    @torch.no_grad()
    def generate(self, memory: Tensor, start: int, beam_size: int = 1, length_penalty: float = 1.0,
                 max_len: int | None = None, memory_pad: Tensor | None = None) -> Tensor:
        """Best sequence per clip, ``[B, <= max_len]`` (without the start id; ``0`` after the end)."""
        max_len = min(max_len or self.max_len, self.max_len)
        b, k = memory.shape[0], beam_size
        mem = memory.repeat_interleave(k, 0)
        pad = memory_pad.repeat_interleave(k, 0) if memory_pad is not None else None
        seqs = torch.full((b * k, 1), start, dtype=torch.long, device=memory.device)
        scores = torch.zeros(b, k, device=memory.device)
        scores[:, 1:] = float("-inf")  # all beams start identical: keep one until they differ
        done = torch.zeros(b * k, dtype=torch.bool, device=memory.device)
        lengths = torch.zeros(b * k, device=memory.device)
        for _ in range(max_len):
            logp = self(seqs, mem, pad)[:, -1].float().log_softmax(-1)  # [B*k, V+1]
            vocab = logp.shape[-1]
            # A finished hypothesis only extends with padding, at no cost.
            logp = torch.where(done[:, None], torch.full_like(logp, float("-inf")), logp)
            logp[:, 0] = torch.where(done, 0.0, float("-inf"))
            total = (scores.reshape(-1, 1) + logp).reshape(b, k * vocab)
            top, flat = total.topk(k, dim=-1)
            beam, token = flat // vocab, flat % vocab
            base = (torch.arange(b, device=memory.device)[:, None] * k + beam).reshape(-1)
            token = token.reshape(-1)
            seqs = torch.cat([seqs[base], token[:, None]], 1)
            was_done = done[base]
            lengths = lengths[base] + (~was_done).float()
            done = was_done | (token == self.end)
            scores = top
            if bool(done.all()):
                break
        normalised = scores / lengths.reshape(b, k).clamp(min=1) ** length_penalty
        best = normalised.argmax(-1) + torch.arange(b, device=memory.device) * k
        out = seqs[best, 1:]
        return torch.where(out == self.end, torch.zeros_like(out), out) * _before_end(out, self.end)


def _before_end(seqs: Tensor, end: int) -> Tensor:
    """1 up to (excluding) the first end id, 0 from there on."""
    return (torch.cumsum(seqs == end, 1) == 0).long()
