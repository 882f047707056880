"""Video captioning: a Transformer decoder over the host's video tokens and the (dual-stream) clip feature,
teacher forcing in training, greedy or beam search in evaluation and ``predict``; BLEU-1..4, METEOR, ROUGE-L
and CIDEr (pycocoevalcap).

The caption is the target, so the decoder reads only the video side: the host's video tokens, its pooled
clip feature (into which Finsta's DSG readout is summed) and, with Finsta, the DSG stream's node states: a
caption names objects, their attributes and what they do, which the DSG holds node by node, so the decoder
attends to the nodes rather than to their mean alone.  The caption's TSG and HSG serve the alignment
losses in training (the pair is known there); at evaluation the references ride along as texts only to be
scored against.  The trivial baseline (the most common training caption for every clip) is scored with the
same scorer at the first validation and goes into the run summary.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from finsta_pl.batch import FinstaBatch
from finsta_pl.caption_metrics import CaptionScores, score_captions
from finsta_pl.nn.decoder import CaptionDecoder
from finsta_pl.tasks.base import Features, FinstaTask
from finsta_pl.text import tokenizer_from_info


class CaptioningTask(FinstaTask):
    """``beam_size`` 1 is greedy search; ``length_penalty`` divides log-probabilities by length ** alpha."""

    fused_features = ("video",)
    host_features = ("video",)
    reads_targets = ("video_index",)
    reads_text_targets = ("index",)
    epoch_metrics = "scores"
    reads_video_nodes = True

    def __init__(
        self,
        decoder_layers: int = 2,
        beam_size: int = 3,
        length_penalty: float = 0.6,
        max_caption_len: int = 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.finsta is None:  # host-only: nothing reads the host's text tower (captions are targets here)
            for p in self.host.text_only_parameters(word_embeddings=True):
                p.requires_grad_(False)
        self.tokenizer = tokenizer_from_info(self.info.text)
        self.start = self.tokenizer.encode("", 4)[0][0]  # what every encoded text starts with ([CLS] / BOS)
        d = self.host.dim
        self.decoder = CaptionDecoder(len(self.tokenizer), d, self.host_config.heads, decoder_layers, max_caption_len + 1)
        # Graph nodes enter the memory through their own projection (the host's tokens and the nodes live in
        # different spaces).
        self.node_memory = nn.Linear(d, d) if self.finsta is not None else None
        self.beam_size, self.length_penalty, self.max_caption_len = beam_size, length_penalty, max_caption_len
        self.scores = nn.ModuleDict({s: CaptionScores(self.tokenizer.decode, max_caption_len + 1) for s in ("val", "test")})
        self._baseline_scored = False

    def memory(self, feats: Features) -> tuple[Tensor, Tensor | None]:
        """``[B, 1 + S (+ N), d]`` and its padding mask: the clip feature (with Finsta's DSG readout), the host's
        video tokens and, with Finsta, the DSG node states (``None`` mask without them: nothing is padded)."""
        host = torch.cat([feats.video.pooled[:, None], feats.video.tokens], 1)
        out = feats.finsta
        if self.node_memory is None or out is None or out.video_nodes is None:
            return host, None
        nodes = self.node_memory(out.video_nodes)
        pad = torch.cat([torch.zeros(host.shape[:2], dtype=torch.bool, device=host.device), out.video_node_pad], 1)
        return torch.cat([host, nodes], 1), pad

    def task_step(self, batch: FinstaBatch, feats: Features, stage: str) -> Tensor:
        """Teacher-forcing loss on every caption of the batch; in evaluation, search and score each clip."""
        memory, pad = self.memory(feats)
        per_text = pad[batch.text_sample] if pad is not None else None
        loss = self.decoder.teacher_forcing_loss(batch.text_ids, memory[batch.text_sample], per_text)
        if stage in self.scores:
            generated = self.decoder.generate(memory, self.start, self.beam_size, self.length_penalty, memory_pad=pad)
            self.scores[stage].update(batch.targets["video_index"], generated, batch.targets["video_index"][batch.text_sample],
                                      batch.text_targets["index"], batch.text_ids[:, 1:])
        return loss

    def on_epoch_metrics(self, stage: str, metric: Any) -> None:
        """At the first validation, score the trivial baseline on the same references (for the run summary)."""
        if stage == "val" and not self._baseline_scored and self.info.labels:
            _, references = metric.texts()
            common = self.info.labels[0]
            baseline = score_captions({k: common for k in references}, references)
            self.data_info.setdefault("baselines", {})["most_common_caption_cider"] = baseline["cider"]
            self._baseline_scored = True

    def predict_step(self, batch: FinstaBatch, batch_idx: int) -> list[dict[str, Any]]:
        """``{"id", "caption"}`` per clip."""
        memory, pad = self.memory(self.features(batch))
        ids = self.decoder.generate(memory, self.start, self.beam_size, self.length_penalty, memory_pad=pad)
        return [{"id": i, "caption": self.tokenizer.decode(row[row != 0].tolist())} for i, row in zip(batch.ids, ids)]
