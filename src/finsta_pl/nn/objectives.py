"""Finsta's objectives apart from its streams (issue 22, point 1), as open_clip keeps ``ClipLoss`` apart from
``CLIP``: :class:`FinstaStreams` (``nn/finsta.py``) computes node states, readouts, links and the fusion and hands
them over as one :class:`StreamStates`; :class:`FinstaObjectives` owns the heads of every auxiliary loss (OSC,
PTC, the HSG's own contrast, pooled and token-level distillation), computes those losses and their statistics,
and weights them all, the link loss (computed with the links, ``nn/linking.py``) included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from finsta_pl.batch import AlignmentBatch
from finsta_pl.graphs.container import NODE, GraphBatch
from finsta_pl.nn.losses import cosine_distill, in_batch_top1, info_nce
from finsta_pl.nn.scatter import scatter_sum, segment_sum

if TYPE_CHECKING:
    from finsta_pl.nn.finsta import FinstaConfig

#: Top-level names of everything :class:`FinstaObjectives` holds; before issue 22 (point 1) they were attributes
#: of ``FinstaStreams`` itself, which renames them when it loads an old state dict.
OBJECTIVE_NAMES = ("logit_scale", "hsg_text", "hsg_video", "osc_text", "osc_video", "ptc_text", "ptc_video",
                   "distill_heads", "token_heads")


@dataclass
class TextStates:
    """What the TSG and HSG streams computed for a batch's texts (one graph per text)."""

    tsg: GraphBatch
    hsg: GraphBatch
    h_t: Tensor  # [N_tsg, d] TSG node states
    a_t: Tensor | None  # active TSG nodes (None: all)
    a_h: Tensor | None  # active HSG nodes (None: all)
    text: Tensor  # [M, d] TSG readout
    joint: Tensor  # [M, d] HSG readout
    host_text: Tensor  # [M, d] the host's pooled text feature
    host_joint: Tensor  # [M, d] the host's joint feature
    span: Tensor  # [N_tsg, d] the host's text tokens span-pooled per TSG node
    span_node: Tensor  # TSG node of each (node, token) span entry
    text_sample: Tensor  # [M] clip of each text
    clip_key: Tensor  # [M] int64 key of each text's clip
    osc: AlignmentBatch  # the batch's OSC pairs plus one per embedding link
    ptc: AlignmentBatch
    true_texts: Tensor | None  # [M] bool: texts whose pairs are positives (None: all)
    ptc_made: Tensor | None  # [P_ptc] bool: PTC pairs whose link the model made (None: all; finsta.py _made_links)
    link_loss: Tensor | None = None  # the learned match's loss (LinkMatcher), where it ran


@dataclass
class StreamStates:
    """What the streams hand the objectives for one batch: the DSG stream's results, and the text streams' where
    the samples carry texts (``text``)."""

    dsg: GraphBatch
    h_d: Tensor  # [N_dsg, d] DSG node states
    a_d: Tensor | None  # active DSG nodes (None: all)
    video: Tensor  # [B, d] DSG readout
    host_video: Tensor  # [B, d] the host's pooled video feature
    #: the host's fusion tokens RoI-pooled at each DSG object node, and which nodes are objects (video token
    #: distillation only)
    object_tokens: Tensor | None = None
    objects: Tensor | None = None
    text: TextStates | None = None


class FinstaObjectives(nn.Module):
    """The auxiliary losses over the streams' states, their heads, statistics and weighting."""

    def __init__(self, config: FinstaConfig, dim: int, texts: bool, hsg_contrast: bool, token_grid: bool) -> None:
        """``texts``: whether samples carry texts (without, only the DSG's distillation exists); ``hsg_contrast``:
        whether the HSG gets its own objective (no task loss reads its readout, :meth:`hsg_loss`); ``token_grid``:
        whether the host's fusion tokens are a grid (``Host.has_token_grid``), where video tokens have a student.

        Only heads that some loss of this configuration reaches are created (DDP runs with
        ``find_unused_parameters=False``), in the order they had on ``FinstaStreams``."""
        super().__init__()
        self.config = c = config
        self.hsg_contrast = hsg_contrast
        if texts and (c.osc or c.ptc or hsg_contrast):
            self.logit_scale = nn.Parameter(torch.tensor(1 / c.temperature).log())
        if hsg_contrast:
            self.hsg_text, self.hsg_video = nn.Linear(dim, dim), nn.Linear(dim, dim)
        if texts and c.osc:
            self.osc_text, self.osc_video = nn.Linear(dim, dim), nn.Linear(dim, dim)
        if texts and c.ptc:
            self.ptc_text, self.ptc_video = nn.Linear(dim, dim), nn.Linear(dim, dim)
        if c.distill:
            self.distill_heads = nn.ModuleDict({k: nn.Linear(dim, dim) for k in (("text", "video", "joint") if texts else ("video",))})
        # Token-level students exist where the host has them: text tokens always, video tokens on a grid only
        # for hosts whose fusion tokens are one (``Host.token_grid``).
        self.token_students = tuple(k for k in ("video", "text") if c.distill and c.token_distill
                                    and (k != "video" or token_grid) and (k != "text" or texts))
        if self.token_students:
            self.token_heads = nn.ModuleDict({k: nn.Linear(dim, dim) for k in self.token_students})

    def forward(self, s: StreamStates) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``(losses, stats)``: every auxiliary loss of this configuration by name (the link loss among them,
        where it ran), and what the alignment did (``osc_pairs``/``ptc_pairs``, ``osc_top1``/``ptc_top1``).
        The losses keep the order they always had (the weighted sum adds them in that order)."""
        c, t = self.config, s.text
        losses: dict[str, Tensor] = {}
        stats: dict[str, Tensor] = {}
        if "video" in self.token_students:
            losses["token_distill"] = cosine_distill(self.token_heads["video"](s.object_tokens), s.h_d, s.objects)
        if t is None:
            if c.distill:
                losses["distill"] = cosine_distill(self.distill_heads["video"](s.host_video), s.video,
                                                   _has_content(s.dsg, s.a_d))
            return losses, stats
        if t.link_loss is not None:
            losses["link"] = t.link_loss
        if c.osc:
            losses["osc"] = self._contrast(t.osc, t.h_t, s.h_d, t.a_t, s.a_d, self.osc_text, self.osc_video,
                                           _concept_keys(t.osc, t.tsg, t.clip_key), t.true_texts, stats, "osc")
        if c.ptc:
            losses["ptc"] = self._contrast(t.ptc, t.h_t, s.h_d, t.a_t, s.a_d, self.ptc_text, self.ptc_video,
                                           _concept_keys(t.ptc, t.tsg, t.clip_key), t.true_texts, stats, "ptc",
                                           t.ptc_made)
        if self.hsg_contrast:
            losses["hsg"] = self.hsg_loss(t.joint, s.host_video[t.text_sample], t.host_text, t.clip_key)
        if "text" in self.token_students:
            has_span = scatter_sum(torch.ones_like(t.span_node, dtype=t.span.dtype), t.span_node, t.tsg.num_nodes) > 0
            if t.a_t is not None:
                has_span = has_span & t.a_t
            text_loss = cosine_distill(self.token_heads["text"](t.span), t.h_t, has_span)
            video_loss = losses.get("token_distill")
            losses["token_distill"] = text_loss if video_loss is None else (text_loss + video_loss) / 2
        if c.distill:
            # Samples whose graph is empty (a lone "scene" node) have nothing to teach.
            heads = self.distill_heads
            losses["distill"] = (
                cosine_distill(heads["text"](t.host_text), t.text, _has_content(t.tsg, t.a_t))
                + cosine_distill(heads["video"](s.host_video), s.video, _has_content(s.dsg, s.a_d))
                + cosine_distill(heads["joint"](t.host_joint), t.joint, _has_content(t.hsg, t.a_h))
            ) / 3
        return losses, stats

    def _contrast(self, pairs: AlignmentBatch, h_t: Tensor, h_d: Tensor, a_t: Tensor | None, a_d: Tensor | None,
                  proj_t: nn.Module, proj_v: nn.Module, concept: Tensor, true_texts: Tensor | None,
                  stats: dict[str, Tensor] | None = None, name: str = "", made: Tensor | None = None) -> Tensor:
        """InfoNCE between pooled anchors and regions, with each pair's hard negative region where it has one.
        Inactive nodes are left out of every pooling.  Pairs that share their region or their concept
        (``concept``) are not each other's negatives; pairs of texts that are not true make no positive, nor
        do pairs whose link the model did not make (``made``, [P] bool: ``finsta.py`` ``_made_links``)."""
        n = pairs.num_pairs
        anchor, _ = _masked_mean(h_t, pairs.anchor_nodes, pairs.anchor_seg, n, a_t)
        region, _ = _masked_mean(h_d, pairs.region_nodes, pairs.region_seg, n, a_d, pairs.region_weight)
        negative, count = _masked_mean(h_d, pairs.negative_nodes, pairs.negative_seg, n, a_d)
        weights = None if true_texts is None else true_texts[pairs.pair_graph]
        if made is not None:
            weights = made if weights is None else weights & made
        keys = (pairs.region_key, concept)
        a, r = proj_t(anchor), proj_v(region)
        if stats is not None:
            stats[f"{name}_pairs"] = torch.full((), float(n), device=a.device) if weights is None else weights.sum().float()
            # Every rank logs the same keys at every step (synced logging is a collective): 0 without pairs.
            stats[f"{name}_top1"] = in_batch_top1(a, r, keys, weights) if n else a.new_zeros(())
        return info_nce(a, r, self.logit_scale, keys, proj_v(negative), count > 0, weights)

    def hsg_loss(self, readout: Tensor, video: Tensor, text: Tensor, clip_key: Tensor) -> Tensor:
        """The HSG's own objective: its readout of a (video, text) pair must single out that pair's video and
        text among the batch's (host features as fixed targets), which takes the fine-grained content of both
        sides, not one of them.  It trains the HSG blocks and the readout wherever no task loss reads it.
        Texts of one clip share their video target (``clip_key``), so they are not each other's negatives."""
        return (info_nce(self.hsg_video(readout), video.detach(), self.logit_scale, clip_key)
                + info_nce(self.hsg_text(readout), text.detach(), self.logit_scale)) / 2

    def total_loss(self, losses: dict[str, Tensor], device: torch.device) -> Tensor:
        """Weighted sum of the auxiliary losses (0 on ``device`` without any), in their order."""
        c = self.config
        weights = {"osc": c.osc_weight, "ptc": c.ptc_weight, "distill": c.distill_weight, "hsg": c.hsg_weight,
                   "token_distill": c.token_distill_weight, "link": c.link_weight}
        return sum((weights[k] * v for k, v in losses.items()), torch.zeros((), device=device))


def _has_content(g: GraphBatch, active: Tensor | None) -> Tensor:
    """[B] whether a sample's graph has an active node besides the lone "scene" node of an empty graph."""
    real = g.node_type != NODE["scene"]
    if active is not None:
        real = real & active
    return segment_sum(real.float(), g.index.graph_count) > 0


def _concept_keys(pairs: AlignmentBatch, tsg: GraphBatch, clip_key: Tensor) -> Tensor:
    """[P] int64: a key per pair that is equal for anchors of the same words in the same clip (``clip_key`` per
    text), whichever text, rank or region they come from: ``clip_key | h`` with ``h`` an order-free 31-bit hash
    of the anchor nodes' word ids (the sum of a per-node mix), computed here without a sync."""
    words = tsg.node_words.index_select(0, pairs.anchor_nodes)  # [A, LABEL_WORDS]
    node = words[:, 0]
    for k in range(1, words.shape[1]):
        node = node * 1_048_583 + words[:, k]  # a prime above the vocabulary: distinct word tuples stay distinct
    node = (node * -7_046_029_254_386_353_131) >> 17  # a 64-bit multiplicative mix (wraps), its high bits
    total = torch.zeros(pairs.num_pairs, dtype=torch.long, device=node.device).index_add_(0, pairs.anchor_seg, node)
    return clip_key[pairs.pair_graph] | (total & 0x7FFFFFFF)


def _masked_mean(h: Tensor, nodes: Tensor, seg: Tensor, n: int, active: Tensor | None,
                 weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Mean of ``h[nodes]`` per segment ``seg`` over the active nodes only (and those of ``weight`` 1, [len(nodes)]
    0/1), and each segment's active count; inactive nodes are weighted 0 rather than selected out, which would sync."""
    rows = h.index_select(0, nodes)
    w = torch.ones_like(nodes, dtype=h.dtype) if active is None else active.index_select(0, nodes).to(h.dtype)
    if weight is not None:
        w = w * weight.to(h.dtype)
    count = scatter_sum(w, seg, n)
    return scatter_sum(rows * w[:, None], seg, n) / count.clamp(min=1)[:, None], count
