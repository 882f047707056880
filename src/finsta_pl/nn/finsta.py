"""The Finsta streams: node features from the host, GTrm on the TSG, R-GTrm (+ STGD) on the DSG and the HSG,
the OSC/PTC alignment losses, distillation into the host, and the gated dual-stream-sum fusion.

Every component has a switch (the paper's ablation rows) in :class:`FinstaConfig`.  Switched-off graph parts
are masked here, not rebuilt by the data pipeline, so one cached batch serves every ablation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from finsta_pl.data_modules.batch import AlignmentBatch, FinstaBatch
from finsta_pl.graphs.container import EDGE_TYPES, NODE, NODE_TYPES, GraphBatch
from finsta_pl.hosts.base import Host, TextFeatures, VideoFeatures
from finsta_pl.nn.gtrm import GTrmLayer
from finsta_pl.nn.linking import EmbeddingLinks, crossmodal_edges, embedding_links
from finsta_pl.nn.losses import cosine_distill, info_nce
from finsta_pl.nn.rgtrm import STGD, RGTrmBlock
from finsta_pl.nn.scatter import scatter_mean, scatter_softmax, scatter_sum

_SPATIAL = ("attribute", "subject", "object", "adverb", "scene")


@dataclass
class FinstaConfig:
    """Finsta's sizes, switches and loss weights (``enabled: false`` runs the host alone)."""

    enabled: bool = True
    heads: int = 4
    tsg_layers: int = 2
    dsg_blocks: int = 2
    hsg_blocks: int = 1
    backend: str = "auto"
    dropout: float = 0.0
    memory: bool = True
    # The paper's six ablation rows.
    osc: bool = True
    ptc: bool = True
    stgd: bool = True
    temporal_edges: bool = True
    adverb_nodes: bool = True
    crossmodal_edges: bool = True
    # Post-training objectives and the task-time fusion.
    distill: bool = True
    dual_stream: bool = True
    osc_weight: float = 0.5
    ptc_weight: float = 0.5
    distill_weight: float = 0.5
    temperature: float = 0.07
    stgd_sigma: float = 0.03


@dataclass
class FinstaOutput:
    """Pooled graph features per sample (``[B, d]``) and the auxiliary losses (name -> scalar)."""

    text: Tensor
    video: Tensor
    joint: Tensor
    losses: dict[str, Tensor]


class FinstaStreams(nn.Module):
    """All graph streams and objectives over a host of width ``host.dim``."""

    def __init__(self, config: FinstaConfig, host: Host, fused: tuple[str, ...] = ("text", "video", "joint")) -> None:
        """``fused``: the host features the task reads, the ones that get a dual-stream-sum projection."""
        super().__init__()
        self.fused = tuple(fused)
        self.config = c = config
        d = self.dim = host.dim
        self.node_type = nn.Embedding(len(NODE_TYPES), d)
        self.edge_type = nn.Embedding(2 * len(EDGE_TYPES), d)
        self.label_proj = nn.Linear(d, d)
        self.span_proj = nn.Linear(d, d)
        self.roi_proj = nn.Linear(d, d)
        self.frame_proj = nn.Linear(d, d)
        self.box_mlp = nn.Sequential(nn.Linear(8, d), nn.GELU(), nn.Linear(d, d))
        self.in_norm = nn.LayerNorm(d)
        # Only layers followed by another layer update edge features (the last one's would go unused).
        self.tsg_layers = nn.ModuleList(GTrmLayer(d, c.heads, dropout=c.dropout, backend=c.backend, update_edges=k + 1 < c.tsg_layers)
                                        for k in range(c.tsg_layers))
        self.dsg_blocks = nn.ModuleList(RGTrmBlock(d, c.heads, c.dropout, c.backend, c.memory, k + 1 < c.dsg_blocks)
                                        for k in range(c.dsg_blocks))
        self.hsg_blocks = nn.ModuleList(RGTrmBlock(d, c.heads, c.dropout, c.backend, c.memory, k + 1 < c.hsg_blocks)
                                        for k in range(c.hsg_blocks))
        # STGD sits between consecutive R-GTrm blocks of the DSG stream.
        self.stgd = nn.ModuleList(STGD(d, c.heads, c.stgd_sigma) for _ in range(max(c.dsg_blocks - 1, 0))) if c.stgd else None
        # Joint readout of the HSG: attention pooling queried by the host's joint feature, so a question picks
        # out the nodes it is about instead of a mean over every node of the video.
        self.readout_query, self.readout_key = nn.Linear(d, d), nn.Linear(d, d)
        self.logit_scale = nn.Parameter(torch.tensor(1 / c.temperature).log())
        if c.osc:
            self.osc_text, self.osc_video = nn.Linear(d, d), nn.Linear(d, d)
        if c.ptc:
            self.ptc_text, self.ptc_video = nn.Linear(d, d), nn.Linear(d, d)
        if c.distill:
            self.distill_heads = nn.ModuleDict({k: nn.Linear(d, d) for k in ("text", "video", "joint")})
        if c.dual_stream:
            # Gated sum with zero-initialised projections: the host's output is unchanged at step 0, yet every
            # projection weight gets a gradient at once.  (A zero *gate* would leave it to one scalar that
            # Adam moves by about lr per step, far too slowly for a fine-tuning run of a few hundred steps.)
            self.fuse_proj = nn.ModuleDict({k: nn.Linear(d, d) for k in self.fused})
            for proj in self.fuse_proj.values():
                nn.init.zeros_(proj.weight)
                nn.init.zeros_(proj.bias)
            self.fuse_gate = nn.Parameter(torch.ones(3))

    # ----------------------------------------------------------------------------------------- node features
    def _label_features(self, g: GraphBatch, host: Host, active: Tensor) -> Tensor:
        words = host.embed_words(g.node_words)
        mask = (g.node_words != 0).unsqueeze(-1).to(words.dtype)
        label = (words * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.node_type(g.node_type) + self.label_proj(label) * active[:, None]

    def _tsg_features(self, batch: FinstaBatch, host: Host, text: TextFeatures, active: Tensor) -> tuple[Tensor, Tensor]:
        """Node features and the host's own span-pooled token features (for embedding linking)."""
        g = batch.tsg
        h = self._label_features(g, host, active)
        tokens = text.tokens.reshape(-1, self.dim)[batch.span_token]
        span = scatter_mean(tokens, batch.span_node, g.num_nodes)
        return h + self.span_proj(span), span

    def _dsg_features(self, g: GraphBatch, host: Host, video: VideoFeatures, active: Tensor) -> tuple[Tensor, Tensor]:
        """Node features and the host's own RoI-pooled frame features (for embedding linking)."""
        h = self._label_features(g, host, active)
        b, t, d, mh, mw = video.maps.shape
        frame = g.node_frame.clamp(0, t - 1)
        h = h + self.frame_proj(video.frames[g.node_graph, frame])
        box = g.node_box
        geo = torch.cat([box, (box[:, :2] + box[:, 2:]) / 2, box[:, 2:] - box[:, :2]], -1)
        is_obj = (g.node_type == NODE["object"]).to(h.dtype)
        h = h + self.box_mlp(geo) * is_obj[:, None]
        # RoI pooling: each object averages the map cells its box covers, weighted by covered area.
        ys = torch.arange(mh, device=h.device, dtype=box.dtype) / mh
        xs = torch.arange(mw, device=h.device, dtype=box.dtype) / mw
        ox = (torch.minimum(box[:, 2:3], xs + 1 / mw) - torch.maximum(box[:, 0:1], xs)).clamp(min=0)
        oy = (torch.minimum(box[:, 3:4], ys + 1 / mh) - torch.maximum(box[:, 1:2], ys)).clamp(min=0)
        weight = (oy[:, :, None] * ox[:, None, :]).flatten(1) * is_obj[:, None]  # [N, mh*mw]
        weight = weight / weight.sum(1, keepdim=True).clamp(min=1e-9)
        node, cell = weight.nonzero(as_tuple=True)
        cells = video.maps.permute(0, 1, 3, 4, 2).reshape(-1, d)  # [(B T mh mw), d]
        flat = (g.node_graph[node] * t + frame[node]) * mh * mw + cell
        roi = scatter_sum(cells[flat] * weight[node, cell, None], node, g.num_nodes)
        return h + self.roi_proj(roi), roi

    # ----------------------------------------------------------------------------------------- graph streams
    def _edges(self, g: GraphBatch, kinds: tuple[str, ...], active: Tensor) -> tuple[Tensor, Tensor]:
        index, types = g.edges_of(kinds)
        keep = active[index[0]] & active[index[1]]
        index, types = index[:, keep], types[keep]
        return index, self.edge_type(types)

    def _previous(self, g: GraphBatch, active: Tensor) -> Tensor:
        if not self.config.temporal_edges:
            return torch.full_like(g.node_frame, -1)
        prev = g.previous_node()
        return torch.where((prev >= 0) & active & active[prev.clamp(min=0)], prev, torch.full_like(prev, -1))

    def _active(self, g: GraphBatch) -> Tensor:
        if self.config.adverb_nodes:
            return torch.ones_like(g.node_type, dtype=torch.bool)
        return g.node_type != NODE["adverb"]

    def _recurrent(self, blocks: nn.ModuleList, g: GraphBatch, h: Tensor, kinds: tuple[str, ...],
                   active: Tensor, stgd: nn.ModuleList | None, extra: tuple[Tensor, Tensor] | None = None) -> Tensor:
        index, e = self._edges(g, kinds, active)
        if extra is not None:  # edges found in the model (embedding links), already both directions
            index, e = torch.cat([index, extra[0]], 1), torch.cat([e, self.edge_type(extra[1])])
        prev = self._previous(g, active)
        key_bias = None
        if stgd is not None:
            t_max = int(g.node_frame.max()) + 2 if g.num_nodes else 1
            group = g.node_graph * t_max + g.node_frame + 1
            center = (g.node_box[:, :2] + g.node_box[:, 2:]) / 2
            saliency = stgd[0].saliency(center, prev, (g.node_type == NODE["object"]) & active, group, g.num_graphs * t_max)
        for k, block in enumerate(blocks):
            h, e = block(h, e, index, g.node_graph, g.num_graphs, g.node_frame, prev, key_bias)
            if stgd is not None and k < len(stgd):
                h, key_bias = stgd[k](h, saliency, prev)
        return h

    def _pool(self, h: Tensor, g: GraphBatch, active: Tensor) -> Tensor:
        return scatter_mean(h[active], g.node_graph[active], g.num_graphs)

    def _readout(self, h: Tensor, g: GraphBatch, active: Tensor, query: Tensor) -> Tensor:
        score = (self.readout_key(h) * self.readout_query(query)[g.node_graph]).sum(-1) / self.dim**0.5
        score = score.masked_fill(~active, float("-inf"))
        weight = scatter_softmax(score, g.node_graph, g.num_graphs)
        return scatter_sum(h * weight[:, None], g.node_graph, g.num_graphs)

    def forward(self, batch: FinstaBatch, host: Host, video: VideoFeatures, text: TextFeatures, joint: Tensor) -> FinstaOutput:
        """Run the three streams over ``batch`` and compute the auxiliary losses against the host features."""
        c = self.config
        tsg, dsg, hsg = batch.tsg, batch.dsg, batch.hsg
        a_t, a_d, a_h = self._active(tsg), self._active(dsg), self._active(hsg)
        h_t, span = self._tsg_features(batch, host, text, a_t)
        h_t = self.in_norm(h_t)
        index, e = self._edges(tsg, _SPATIAL, a_t)
        for layer in self.tsg_layers:
            h_t, e = layer(h_t, e, index, tsg.node_graph, tsg.num_graphs)
        h_d, roi = self._dsg_features(dsg, host, video, a_d)
        h_d = self._recurrent(self.dsg_blocks, dsg, self.in_norm(h_d), _SPATIAL, a_d, self.stgd)
        h_h = torch.cat([h_t, h_d])[batch.hsg_source]
        kinds = _SPATIAL + (("crossmodal",) if c.crossmodal_edges else ())
        osc_pairs, extra = batch.osc, None
        request = batch.embedding_link
        if c.crossmodal_edges and request is not None and bool(request.samples.any()):
            links = embedding_links(tsg, dsg, span, roi, request.samples, request.threshold, request.top_k)
            extra = crossmodal_edges(links, batch.hsg_source, tsg.num_nodes)
            osc_pairs = _with_links(osc_pairs, links)
        h_h = self._recurrent(self.hsg_blocks, hsg, h_h, kinds, a_h, None, extra)
        out = FinstaOutput(self._pool(h_t, tsg, a_t), self._pool(h_d, dsg, a_d), self._readout(h_h, hsg, a_h, joint), {})
        if c.osc:
            out.losses["osc"] = self._contrast(osc_pairs, h_t, h_d, a_t, self.osc_text, self.osc_video)
        if c.ptc:
            out.losses["ptc"] = self._contrast(batch.ptc, h_t, h_d, a_t, self.ptc_text, self.ptc_video)
        if c.distill:
            heads = self.distill_heads
            out.losses["distill"] = (
                cosine_distill(heads["text"](text.pooled), out.text)
                + cosine_distill(heads["video"](video.pooled), out.video)
                + cosine_distill(heads["joint"](joint), out.joint)
            ) / 3
        return out

    def _contrast(self, pairs: AlignmentBatch, h_t: Tensor, h_d: Tensor, active: Tensor, proj_t: nn.Module,
                  proj_v: nn.Module) -> Tensor:
        # Inactive anchor nodes (adverbs with the adverb switch off) are left out of the anchor pooling.
        keep = active[pairs.anchor_nodes]
        anchor = scatter_mean(h_t[pairs.anchor_nodes[keep]], pairs.anchor_seg[keep], pairs.num_pairs)
        region = scatter_mean(h_d[pairs.region_nodes], pairs.region_seg, pairs.num_pairs)
        return info_nce(proj_t(anchor), proj_v(region), self.logit_scale)

    def fuse(self, kind: str, host_feature: Tensor, graph_feature: Tensor) -> Tensor:
        """Dual-stream-sum: ``host + tanh(gate) * W graph`` (identity while ``W`` is still zero)."""
        if not self.config.dual_stream or kind not in self.fused:
            return host_feature
        k = ("text", "video", "joint").index(kind)
        return host_feature + torch.tanh(self.fuse_gate[k]) * self.fuse_proj[kind](graph_feature)

    def total_loss(self, losses: dict[str, Tensor]) -> Tensor:
        """Weighted sum of the auxiliary losses."""
        c = self.config
        weights = {"osc": c.osc_weight, "ptc": c.ptc_weight, "distill": c.distill_weight}
        return sum((weights[k] * v for k, v in losses.items()), torch.zeros((), device=self.logit_scale.device))


def _with_links(pairs: AlignmentBatch, links: EmbeddingLinks) -> AlignmentBatch:
    """OSC pairs plus one per embedding link: the TSG object against its linked track's nodes."""
    n, first = links.num_links, pairs.num_pairs
    device = links.text_node.device
    return AlignmentBatch(
        anchor_nodes=torch.cat([pairs.anchor_nodes, links.text_node]),
        anchor_seg=torch.cat([pairs.anchor_seg, first + torch.arange(n, device=device)]),
        region_nodes=torch.cat([pairs.region_nodes, links.dsg_nodes]),
        region_seg=torch.cat([pairs.region_seg, first + links.dsg_link]),
        pair_graph=torch.cat([pairs.pair_graph, links.link_graph]),
    )
