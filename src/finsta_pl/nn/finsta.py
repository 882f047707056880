"""The Finsta streams: node features from the host, GTrm on the TSG, R-GTrm (+ STGD) on the DSG and the HSG,
links, readouts and the gated dual-stream-sum fusion.  The auxiliary losses over their states (OSC, PTC, the
HSG's own contrast, distillation) and the weighting of every loss are ``nn/objectives.py``'s.

Every component has a switch (the paper's ablation rows) in :class:`FinstaConfig`.  Switched-off graph parts
are masked here, not rebuilt by the data pipeline, so one cached batch serves every ablation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from finsta_pl.batch import AlignmentBatch, FinstaBatch
from finsta_pl.graphs.container import EDGE_TYPES, NODE, NODE_TYPES, GraphBatch
from finsta_pl.hosts.base import Host, TextFeatures, VideoFeatures
from finsta_pl.nn.gtrm import GTrmLayer
from finsta_pl.nn.linking import (EmbeddingLinks, LinkMatcher, crossmodal_edges, crossmodal_keep, embedding_links,
                                  gold_link_scores, hsg_link_pairs)
from finsta_pl.nn.objectives import OBJECTIVE_NAMES, FinstaObjectives, StreamStates, TextStates
from finsta_pl.nn.rgtrm import RECURRENCES, STGD, RGTrmBlock
from finsta_pl.nn.scatter import scatter_mean, scatter_softmax, scatter_sum, segment_sum

# Edge groups the streams attend over (graphs/container.py EDGE_GROUPS): the spatial edges, then with the
# cross-modal ones.  Temporal edges are the recurrence's, never the attention's.
_SPATIAL, _WITH_CROSSMODAL = 1, 2


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
    # The R-GTrm blocks' frame recurrence (nn/rgtrm.py RECURRENCES): ``loop``, the gated update whose gates read
    # the earlier frame's state, one step per frame; ``scan``, an update linear in the earlier state (gates read
    # the current input only), solved in log2(frames) steps: fewer kernels on a GPU (issue 23), another model.
    recurrence: str = "loop"
    # Compile the streams (their forward and, through it, their backward) with ``torch.compile(dynamic=True)``:
    # fused kernels, 2.7x (loop) / 2.9x (scan) fewer launches a step than eager and 1.6x less CPU time at
    # 32x8x16 (BENCHMARKS.md "Compiled streams", issue 23).  The first batches pay minutes of compilation.
    # It traces the dense kernel and native scatter (DGL's and torch-scatter's kernels cannot be traced), so
    # ``backend: dgl`` is refused with it.
    compile: bool = False
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
    # Token-level distillation: each DSG object node's state into the host's fusion tokens RoI-pooled at its box
    # and frame, each TSG node's state into the host's text tokens of its span.  The pooled distillation above
    # reaches only the host's mean-pooled features, which the QA/MC fusion never reads.  On in the shipped
    # post-training (posttrain_synthetic.yaml), off in the joint configs; it has not raised the built-in host's
    # tasks (docs/RESULTS-posttrain.md, RESULTS.md's post-training control).
    token_distill: bool = False
    token_distill_weight: float = 1.0
    hsg_weight: float = 0.5
    # Label-free linking (``graphs.link.method: embedding``): a trained match of text objects to tracks
    # (nn/linking.py LinkMatcher) whose best matches are the links, instead of a threshold on fixed host
    # features (which linked nothing: docs/DESIGN-NOTES.md, issue 22).  Only for data that asks the model for links.
    learned_links: bool = False
    link_weight: float = 1.0
    # Whether DSG node features carry the host's embedding of their label words.  Off for class-agnostic
    # DSGs (the label-free arm): then nothing a detector names reaches the model, and OSC/PTC cannot be solved
    # by equal words on both sides.
    dsg_label_words: bool = True
    # Where DSG object nodes pool their host features from: ``maps``, the host's frame feature maps (the built-in
    # host's convolutional stem), or ``tokens``, the token grid its fusion reads (``Host.token_grid``), so the
    # alignment losses shape the features the task head attends to, not a stem the task reads only through them.
    regions: str = "maps"
    temperature: float = 0.07
    stgd_sigma: float = 0.03

    def __post_init__(self) -> None:
        if self.regions not in {"maps", "tokens"}:
            raise ValueError(f"FinstaConfig.regions must be 'maps' or 'tokens', not {self.regions!r}")
        if self.recurrence not in RECURRENCES:
            raise ValueError(f"FinstaConfig.recurrence: {self.recurrence!r} is none of {sorted(RECURRENCES)}")
        if self.compile and self.backend == "dgl":
            raise ValueError("FinstaConfig.compile: torch.compile cannot trace DGL's kernels; use backend: auto "
                             "or dense with compile: true")


@dataclass
class FinstaOutput:
    """Pooled graph features (``video [B, d]`` per clip; ``text``, ``joint [M, d]`` per text, ``None`` without
    texts), the auxiliary losses (name -> scalar), and the DSG stream's node states per clip,
    ``video_nodes [B, N, d]`` padded to the largest graph with ``video_node_pad [B, N]`` (``True`` = padding),
    for heads that attend to the scene graph's nodes rather than its mean (the caption decoder)."""

    text: Tensor | None
    video: Tensor
    joint: Tensor | None
    losses: dict[str, Tensor]
    video_nodes: Tensor | None = None
    video_node_pad: Tensor | None = None
    #: what the alignment did on this batch, to watch that it runs at all (no gradient; see :meth:`FinstaObjectives._contrast`):
    #: ``osc_pairs``/``ptc_pairs`` (positive pairs), ``osc_top1``/``ptc_top1`` (in-batch anchor -> region
    #: retrieval accuracy), ``links_per_object`` (cross-modal HSG links per TSG object node).
    stats: dict[str, Tensor] = field(default_factory=dict)


class FinstaStreams(nn.Module):
    """All graph streams over a host of width ``host.dim``, and the objectives over their states
    (:class:`FinstaObjectives`, ``objectives``)."""

    def __init__(self, config: FinstaConfig, host: Host, fused: tuple[str, ...] = ("text", "video", "joint"),
                 texts: bool = True, node_states: bool = False) -> None:
        """``fused``: the host features the task reads, the ones that get a dual-stream-sum projection;
        ``texts``: whether samples carry texts (without, only the DSG stream and its distillation exist);
        ``node_states``: whether to return the DSG's node states per clip (``FinstaOutput.video_nodes``).

        Only parameters that some loss of this configuration reaches are created (DDP runs with
        ``find_unused_parameters=False``): when the task does not read the HSG's joint readout through the
        dual-stream-sum, the HSG gets its own objective (:meth:`FinstaObjectives.hsg_loss`) instead of going
        untrained.  State dicts from before the objectives moved out (keys ``logit_scale``, ``osc_text.*``, ...)
        load under their new names (``objectives.*``).
        """
        super().__init__()
        if config.regions == "tokens" and not host.has_token_grid:
            raise ValueError(f"finsta.regions: tokens needs a host whose fusion reads a token grid; "
                             f"{type(host).__name__} has none (use regions: maps)")
        self.fused = tuple(k for k in fused if texts or k == "video") if config.dual_stream else ()
        self.config = c = config
        d = self.dim = host.dim
        self.node_type = nn.Embedding(len(NODE_TYPES), d)
        self.edge_type = nn.Embedding(2 * len(EDGE_TYPES), d)
        self.label_proj = nn.Linear(d, d)
        self.roi_proj = nn.Linear(d, d)
        self.frame_proj = nn.Linear(d, d)
        self.box_mlp = nn.Sequential(nn.Linear(8, d), nn.GELU(), nn.Linear(d, d))
        self.in_norm = nn.LayerNorm(d)
        self.dsg_blocks = nn.ModuleList(RGTrmBlock(d, c.heads, c.dropout, c.backend, c.memory, k + 1 < c.dsg_blocks,
                                                   c.recurrence) for k in range(c.dsg_blocks))
        # STGD sits between consecutive R-GTrm blocks of the DSG stream.
        self.stgd = nn.ModuleList(STGD(d, c.heads, c.stgd_sigma) for _ in range(max(c.dsg_blocks - 1, 0))) if c.stgd else None
        self.texts = texts
        self.node_states = node_states
        if texts:
            self._build_text_streams(d)
        # The losses' heads; the HSG gets its own objective where no task loss reads its readout (post-training,
        # dual_stream off).
        self.objectives = FinstaObjectives(c, d, texts, texts and "joint" not in self.fused, host.has_token_grid)
        self.register_load_state_dict_pre_hook(_rename_objective_keys)
        if self.fused:
            # Gated sum with zero-initialised projections: the host's output is unchanged at step 0, yet every
            # projection weight gets a gradient at once.  (A zero *gate* would leave it to one scalar that
            # Adam moves by about lr per step, far too slowly for a fine-tuning run of a few hundred steps.)
            self.fuse_proj = nn.ModuleDict({k: nn.Linear(d, d) for k in self.fused})
            for proj in self.fuse_proj.values():
                nn.init.zeros_(proj.weight)
                nn.init.zeros_(proj.bias)
            self.fuse_gate = nn.ParameterDict({k: nn.Parameter(torch.ones(())) for k in self.fused})
        if c.compile:
            # In place (``nn.Module.compile``): parameter names, and with them checkpoints, stay as in eager.
            # Sizes vary from batch to batch (nodes, edges, frames' runs), so they are traced as symbols.
            # A compiled backward reuses its saved buffers in place, so it runs once per forward: the host-gradient
            # measurement, which backs through the streams three times, is off with it
            # (FinstaTask.host_grads_measurable).
            self.compile(dynamic=True)

    def _build_text_streams(self, d: int) -> None:
        """The TSG and HSG streams (only tasks whose samples carry texts have them)."""
        c = self.config
        self.span_proj = nn.Linear(d, d)
        # Only layers followed by another layer update edge features (the last one's would go unused).
        self.tsg_layers = nn.ModuleList(GTrmLayer(d, c.heads, dropout=c.dropout, backend=c.backend, update_edges=k + 1 < c.tsg_layers)
                                        for k in range(c.tsg_layers))
        self.hsg_blocks = nn.ModuleList(RGTrmBlock(d, c.heads, c.dropout, c.backend, c.memory, k + 1 < c.hsg_blocks,
                                                   c.recurrence) for k in range(c.hsg_blocks))
        # Joint readout of the HSG: attention pooling queried by the host's joint feature, so a question picks
        # out the nodes it is about instead of a mean over every node of the video.
        self.readout_query, self.readout_key = nn.Linear(d, d), nn.Linear(d, d)
        if c.learned_links:
            self.link_matcher = LinkMatcher(d, c.temperature)

    # ----------------------------------------------------------------------------------------- node features
    def _label_features(self, g: GraphBatch, host: Host, active: Tensor | None, words_on: bool = True) -> Tensor:
        if not words_on:
            return self.node_type(g.node_type)
        words = host.embed_words(g.node_words)
        mask = (g.node_words != 0).unsqueeze(-1).to(words.dtype)
        label = self.label_proj((words * mask).sum(1) / mask.sum(1).clamp(min=1))
        return self.node_type(g.node_type) + (label if active is None else label * active[:, None])

    def _tsg_features(self, batch: FinstaBatch, host: Host, text: TextFeatures, active: Tensor | None) -> tuple[Tensor, Tensor]:
        """Node features and the host's own span-pooled token features (for embedding linking)."""
        g = batch.tsg
        h = self._label_features(g, host, active)
        tokens = text.tokens.reshape(-1, self.dim)[batch.span_token]
        span = scatter_mean(tokens, batch.span_node, g.num_nodes)
        return h + self.span_proj(span), span

    def _dsg_features(self, g: GraphBatch, host: Host, video: VideoFeatures, active: Tensor | None) -> tuple[Tensor, Tensor]:
        """Node features and the host's own RoI-pooled frame features (for embedding linking)."""
        h = self._label_features(g, host, active, self.config.dsg_label_words)
        frame = g.node_frame.clamp(0, video.maps.shape[1] - 1)
        h = h + self.frame_proj(video.frames[g.node_graph, frame])
        box = g.node_box
        geo = torch.cat([box, (box[:, :2] + box[:, 2:]) / 2, box[:, 2:] - box[:, :2]], -1)
        is_obj = (g.node_type == NODE["object"]).to(h.dtype)
        h = h + self.box_mlp(geo) * is_obj[:, None]
        roi = _roi_pool(host.token_grid(video) if self.config.regions == "tokens" else video.maps, g, is_obj)
        return h + self.roi_proj(roi), roi

    # ----------------------------------------------------------------------------------------- graph streams
    def _edges(self, g: GraphBatch, groups: int, active: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(edge_index, edge features, keep)`` of the first ``groups`` edge groups; ``keep`` masks the edges of
        inactive nodes (``None`` when every node is active): a mask, not a selection, so nothing syncs."""
        index, types = g.edges_in(groups)
        keep = None if active is None else active[index[0]] & active[index[1]]
        return index, self.edge_type(types), keep

    def _previous(self, g: GraphBatch, active: Tensor) -> Tensor:
        """Temporal coreference edges as "previous node" pointers (none when that switch is off)."""
        if not self.config.temporal_edges:
            return torch.full_like(g.node_frame, -1)
        return _active_previous(g.index.node_prev, active)

    def _active(self, g: GraphBatch, text_nodes: Tensor | None = None, text: bool = False) -> Tensor | None:
        """Nodes every layer sees, ``None`` when that is all of them (known from the configuration, so the
        common case costs nothing).  ``adverb_nodes: false`` is the paper's text-side row: it removes the
        adverbial modifiers of the TSG (``text``) and their copies in the HSG (``text_nodes``), never the DSG's
        direction and speed nodes."""
        if self.config.adverb_nodes or not (text or text_nodes is not None):
            return None
        adverb = g.node_type == NODE["adverb"]
        return ~adverb if text_nodes is None else ~(adverb & text_nodes)

    def _recurrent(self, blocks: nn.ModuleList, g: GraphBatch, h: Tensor, groups: int,
                   active: Tensor | None, stgd: nn.ModuleList | None,
                   extra: tuple[Tensor, Tensor, Tensor | None] | None = None) -> Tensor:
        index, e, keep = self._edges(g, groups, active)
        if extra is not None:  # edges found in the model (embedding links), already both directions; which count
            extra_keep = extra[2]
            if keep is not None or extra_keep is not None:
                keep = torch.cat([keep if keep is not None else torch.ones(index.shape[1], dtype=torch.bool, device=index.device),
                                  extra_keep if extra_keep is not None else torch.ones_like(extra[1], dtype=torch.bool)])
            index, e = torch.cat([index, extra[0]], 1), torch.cat([e, self.edge_type(extra[1])])
        prev = self._previous(g, active)
        key_bias = None
        if stgd is not None:
            # STGD reads motion from track identity, so it is independent of the temporal-edge switch.
            track_prev = _active_previous(g.index.node_prev_track, active)
            t_max = g.index.num_frames + 1
            group = g.node_graph * t_max + g.node_frame + 1
            center = (g.node_box[:, :2] + g.node_box[:, 2:]) / 2
            is_object = g.node_type == NODE["object"]
            if active is not None:
                is_object = is_object & active
        for k, block in enumerate(blocks):
            h, e = block(h, e, index, g.node_graph, g.num_graphs, g.index, prev, key_bias, active, keep)
            if stgd is not None and k < len(stgd):
                # Each STGD block has its own sigma, so each computes its own saliency.
                saliency = stgd[k].saliency(center, track_prev, is_object, group, g.num_graphs * t_max)
                h, key_bias = stgd[k](h, saliency, track_prev)
        return h

    @staticmethod
    def _pool(h: Tensor, g: GraphBatch, active: Tensor | None) -> Tensor:
        """Mean of each graph's active nodes (0 for a graph without any): sorted-segment sums, no selection."""
        lengths = g.index.graph_count
        if active is None:
            return segment_sum(h, lengths) / lengths.clamp(min=1).to(h.dtype)[:, None]
        w = active.to(h.dtype)
        return segment_sum(h * w[:, None], lengths) / segment_sum(w, lengths).clamp(min=1)[:, None]

    def _readout(self, h: Tensor, g: GraphBatch, active: Tensor | None, query: Tensor) -> Tensor:
        score = (self.readout_key(h) * self.readout_query(query)[g.node_graph]).sum(-1) / self.dim**0.5
        if active is not None:
            score = score.masked_fill(~active, float("-inf"))
        weight = scatter_softmax(score, g.node_graph, g.num_graphs)
        return scatter_sum(h * weight[:, None], g.node_graph, g.num_graphs)

    def forward(self, batch: FinstaBatch, host: Host, video: VideoFeatures, text: TextFeatures | None,
                joint: Tensor | None, true_texts: Tensor | None = None) -> FinstaOutput:
        """Run the streams over ``batch``, then the objectives over their states (:class:`StreamStates`).

        ``video`` has one row per clip; ``text`` and ``joint`` one per text (``None`` for text-less tasks such
        as action recognition, where only the DSG stream runs).  ``true_texts`` ([M] bool, ``None`` = all): the
        texts that describe their clip; only their pairs are alignment positives (``FinstaTask.true_texts``)."""
        dsg = batch.dsg
        a_d = self._active(dsg)
        h_d, roi = self._dsg_features(dsg, host, video, a_d)
        h_d = self._recurrent(self.dsg_blocks, dsg, self.in_norm(h_d), _SPATIAL, a_d, self.stgd)
        out = FinstaOutput(None, self._pool(h_d, dsg, a_d), None, {})
        states = StreamStates(dsg, h_d, a_d, out.video, video.pooled)
        if "video" in self.objectives.token_students:
            states.objects = dsg.node_type == NODE["object"]
            states.object_tokens = _roi_pool(host.token_grid(video), dsg, states.objects)
        if self.node_states:  # only heads that attend to the nodes (captioning) pay for the padding
            out.video_nodes, out.video_node_pad = _per_graph(h_d, dsg, a_d)
        if self.texts and text is not None and batch.tsg is not None:
            assert joint is not None, "texts need the host's joint feature"
            states.text = self._text_streams(batch, host, text, joint, h_d, roi, a_d, out, true_texts)
        losses, stats = self.objectives(states)
        out.losses.update(losses)
        out.stats.update(stats)
        return out

    def _text_streams(self, batch: FinstaBatch, host: Host, text: TextFeatures, joint: Tensor, h_d: Tensor,
                      roi: Tensor, a_d: Tensor | None, out: FinstaOutput, true_texts: Tensor | None = None) -> TextStates:
        """TSG and HSG streams (one graph per text) and their links; fills ``out``'s readouts and link statistics
        and returns what the objectives read of them."""
        c = self.config
        tsg, dsg, hsg = batch.tsg, batch.dsg, batch.hsg
        hsg_text = batch.hsg_source < tsg.num_nodes
        a_t = self._active(tsg, text=True)
        a_h = self._active(hsg, hsg_text)
        h_t, span = self._tsg_features(batch, host, text, a_t)
        h_t = self.in_norm(h_t)
        index, e, keep = self._edges(tsg, _SPATIAL, a_t)
        for layer in self.tsg_layers:
            h_t, e = layer(h_t, e, index, tsg.node_graph, tsg.num_graphs, index=tsg.index, edge_keep=keep)
        h_h = torch.cat([h_t, h_d])[batch.hsg_source]
        groups = _WITH_CROSSMODAL if c.crossmodal_edges else _SPATIAL
        osc_pairs, extra, links = batch.osc, None, None
        request = batch.embedding_link
        learned = c.learned_links and (request is None or request.by_label is None)
        link_loss = None
        if learned:  # always called, so its parameters take part in every step (DDP); no request: no objects
            samples = request.samples if request is not None else torch.zeros_like(batch.text_sample, dtype=torch.bool)
            links, link_loss = self.link_matcher(
                tsg, dsg, batch.text_sample, span, roi, samples, request.top_k if request is not None else 1, true_texts,
                request.tracks if request is not None else None)
        if request is not None and request.has_samples:
            # Links are made whatever the switch says: OSC needs them.  The switch removes only the HSG edges.
            if not learned:
                link_text, link_video = span, roi
                if request.by_label is not None:
                    link_text, link_video = _label_link_features(host, tsg, dsg, batch.text_sample, request.by_label,
                                                                 span, roi)
                links = embedding_links(tsg, dsg, batch.text_sample, link_text, link_video, request.samples,
                                        request.threshold, request.top_k)
            osc_pairs = _with_links(osc_pairs, links, request.sample_key, dsg.node_track)
            if c.crossmodal_edges:
                extra = (*crossmodal_edges(links, tsg, dsg, hsg, batch.text_sample), crossmodal_keep(links))
        if batch.gold is not None:  # the embedded world: score every link (worker's and model's) against the gold
            text_node, dsg_node = hsg_link_pairs(hsg, batch.hsg_source, tsg.num_nodes)
            gold_keep = None
            if links is not None:
                if links.keep is not None:
                    gold_keep = torch.cat([torch.ones_like(text_node, dtype=torch.bool), links.keep])
                text_node = torch.cat([text_node, links.text_node.index_select(0, links.dsg_link)])
                dsg_node = torch.cat([dsg_node, links.dsg_nodes])
            out.stats.update(gold_link_scores(text_node, dsg_node, batch.gold, tsg, dsg, batch.text_sample, gold_keep))
        h_h = self._recurrent(self.hsg_blocks, hsg, h_h, groups, a_h, None, extra)
        out.text, out.joint = self._pool(h_t, tsg, a_t), self._readout(h_h, hsg, a_h, joint)
        clip_key = batch.clip_key[batch.text_sample]
        objects = (tsg.node_type == NODE["object"]).sum().clamp(min=1)
        index = hsg.index
        cross = index.group_end[1] - index.group_end[0]
        if extra is not None:  # the model's edges that count (a sum on the device where they are masked, no sync)
            cross = cross + (extra[0].shape[1] if extra[2] is None else extra[2].sum())
        # Both directions of each link are edges.  As ``(cross / 2) / objects`` with a Python ``cross`` (the
        # reciprocal times the scalar), also where ``cross`` is a tensor: the same float32 rounding.
        out.stats["links_per_object"] = objects.reciprocal() * (cross / 2)
        # PTC pairs of label-free texts count only where the model made their link.
        made = (None if not c.ptc or links is None or batch.ptc.link_object is None
                else _made_links(batch.ptc, links, request.samples, dsg.node_track))
        return TextStates(tsg, hsg, h_t, a_t, a_h, out.text, out.joint, text.pooled, joint, span, batch.span_node,
                          batch.text_sample, clip_key, osc_pairs, batch.ptc, true_texts, made, link_loss)

    def fuse(self, kind: str, host_feature: Tensor, graph_feature: Tensor) -> Tensor:
        """Dual-stream-sum: ``host + tanh(gate) * W graph`` (identity while ``W`` is still zero)."""
        if kind not in self.fused:
            return host_feature
        return host_feature + torch.tanh(self.fuse_gate[kind]) * self.fuse_proj[kind](graph_feature)

    def total_loss(self, losses: dict[str, Tensor]) -> Tensor:
        """Weighted sum of the auxiliary losses (:meth:`FinstaObjectives.total_loss`)."""
        return self.objectives.total_loss(losses, self.node_type.weight.device)


def _rename_objective_keys(module: nn.Module, state_dict: dict[str, Tensor], prefix: str, *_: object) -> None:
    """Load-state-dict pre-hook: a state dict from before the objectives moved out of the streams (issue 22,
    point 1) names their parameters ``<prefix>logit_scale``, ``<prefix>osc_text.weight``, ...; they are now
    ``<prefix>objectives.logit_scale``, ...  Renamed in place (``load_state_dict`` hands hooks its own copy)."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        if key[len(prefix):].split(".", 1)[0] in OBJECTIVE_NAMES:
            state_dict[f"{prefix}objectives.{key[len(prefix):]}"] = state_dict.pop(key)


def _roi_pool(grid: Tensor, g: GraphBatch, is_obj: Tensor) -> Tensor:
    """RoI pooling of ``grid [B, T, d, h, w]`` (frame feature maps, or a host's token grid): each object node
    averages the cells its box covers, weighted by covered area, at its own frame; other nodes get zeros.

    One ``bmm`` per batch: the nodes of each (frame, graph) are padded to ``frame_width`` rows by the worker's
    ``frame_slot`` (:class:`GraphIndex`), and their cell weights multiply that frame's cells.  Dense weights over
    all cells rather than the covered ones: a node's covered cells are known only from the data (a sync)."""
    b, t, d, mh, mw = grid.shape
    index = g.index
    order, width, steps = index.frame_order, index.frame_width, index.num_frames
    out = grid.new_zeros(g.num_nodes, d)
    if steps == 0 or width == 0:
        return out
    box = g.node_box.index_select(0, order)
    ys = torch.arange(mh, device=box.device, dtype=box.dtype) / mh
    xs = torch.arange(mw, device=box.device, dtype=box.dtype) / mw
    ox = (torch.minimum(box[:, 2:3], xs + 1 / mw) - torch.maximum(box[:, 0:1], xs)).clamp(min=0)
    oy = (torch.minimum(box[:, 3:4], ys + 1 / mh) - torch.maximum(box[:, 1:2], ys)).clamp(min=0)
    weight = (oy[:, :, None] * ox[:, None, :]).flatten(1) * is_obj.index_select(0, order)[:, None].to(box.dtype)
    weight = weight / weight.sum(1, keepdim=True).clamp(min=1e-9)  # [F, mh*mw], frame-major
    padded = weight.new_zeros(steps * b * width, mh * mw).index_copy(0, index.frame_slot, weight)
    # Cells of each (frame, graph) in the same order as the padding's runs: frame-major, then graph.
    frames = torch.arange(steps, device=grid.device).clamp(max=t - 1)  # a node past the maps reads the last one
    cells = grid.index_select(1, frames).permute(1, 0, 3, 4, 2).reshape(steps * b, mh * mw, d)
    pooled = torch.bmm(padded.view(steps * b, width, mh * mw).to(cells.dtype), cells)
    return out.index_copy(0, order, pooled.reshape(-1, d).index_select(0, index.frame_slot))


def _label_link_features(host: Host, tsg: GraphBatch, dsg: GraphBatch, text_sample: Tensor, by_label: Tensor,
                         span: Tensor, roi: Tensor) -> tuple[Tensor, Tensor]:
    """Node features for linking where ``by_label`` (per text) says so: the host's text embedding of each node's
    label (``Host.embed_labels``: CLIP's text tower for CLIP4Clip) on both sides, else the span / RoI features.
    Detached like every link similarity: which tracks link is a choice, not a gradient path."""
    with torch.no_grad():
        text_labels, video_labels = host.embed_labels(tsg.node_words), host.embed_labels(dsg.node_words)
    clips = torch.zeros(dsg.num_graphs, dtype=torch.bool, device=by_label.device)
    clips[text_sample[by_label]] = True
    text = torch.where(by_label[tsg.node_graph][:, None], text_labels.to(span.dtype), span)
    video = torch.where(clips[dsg.node_graph][:, None], video_labels.to(roi.dtype), roi)
    return text, video


def _per_graph(h: Tensor, g: GraphBatch, active: Tensor | None) -> tuple[Tensor, Tensor]:
    """Node rows of ``h`` as ``[G, N, d]`` padded per graph by the worker's ``node_slot`` (nodes of a graph are
    contiguous), with the padding mask ``[G, N]`` (inactive nodes count as padding); one copy, no loop over
    graphs, no sync.  Every graph keeps at least one slot (its "scene" node, or zeros marked valid) so attention
    over a row is never fully masked."""
    index = g.index
    width = max(index.nmax, 1)
    dense = h.new_zeros(g.num_graphs * width, h.shape[-1]).index_copy(0, index.node_slot, h)
    pad = torch.ones(g.num_graphs * width, dtype=torch.bool, device=h.device)
    pad = pad.index_fill(0, index.node_slot, False) if active is None else pad.index_copy(0, index.node_slot, ~active)
    pad = pad.view(g.num_graphs, width)
    pad[:, 0] = False
    return dense.view(g.num_graphs, width, -1), pad


def _active_previous(prev: Tensor, active: Tensor | None) -> Tensor:
    """``prev`` with links from or to inactive nodes cut."""
    if active is None:
        return prev
    return torch.where((prev >= 0) & active & active[prev.clamp(min=0)], prev, torch.full_like(prev, -1))


def _made_links(pairs: AlignmentBatch, links: EmbeddingLinks, samples: Tensor, node_track: Tensor) -> Tensor:
    """[P] bool: whether each pair's link was made.  Pairs of texts the model links (``samples``) follow from a
    link the worker could only guess (``AlignmentBatch.link_object``/``link_track``: one pair per possible
    link, graphs/hsg.py ``ptc_candidates``); they count when the model made that (object, track) link.  Pairs
    of the other texts follow from the worker's own links and always count."""
    made = (links.text_node << 32) | _link_tracks(links, node_track)
    wanted = (pairs.link_object << 32) | pairs.link_track
    return torch.isin(wanted, made) | ~samples.index_select(0, pairs.pair_graph)


def _with_links(pairs: AlignmentBatch, links: EmbeddingLinks, sample_key: Tensor, node_track: Tensor) -> AlignmentBatch:
    """OSC pairs plus one per embedding link: the TSG object against its linked track's nodes (keyed by sample
    and track, so two objects linked to one track are not each other's negatives)."""
    n, first = links.num_links, pairs.num_pairs
    device = links.text_node.device
    track = _link_tracks(links, node_track)
    weight = None
    if links.keep is not None or pairs.region_weight is not None:  # masked entries of learned links pool nothing
        weight = torch.cat([pairs.region_weight if pairs.region_weight is not None
                            else torch.ones(pairs.region_nodes.shape[0], device=device),
                            links.keep.float() if links.keep is not None else torch.ones(links.dsg_nodes.shape[0], device=device)])
    return AlignmentBatch(
        anchor_nodes=torch.cat([pairs.anchor_nodes, links.text_node]),
        anchor_seg=torch.cat([pairs.anchor_seg, first + torch.arange(n, device=device)]),
        region_nodes=torch.cat([pairs.region_nodes, links.dsg_nodes]),
        region_seg=torch.cat([pairs.region_seg, first + links.dsg_link]),
        pair_graph=torch.cat([pairs.pair_graph, links.link_graph]),
        region_key=torch.cat([pairs.region_key, sample_key[links.link_graph] | (2**31 + track)]),
        negative_nodes=pairs.negative_nodes,
        negative_seg=pairs.negative_seg,
        region_weight=weight,
    )


def _link_tracks(links: EmbeddingLinks, node_track: Tensor) -> Tensor:
    """[L] batch track id of each link (learned links carry it; else the track of any of its DSG nodes)."""
    if links.track is not None:
        return links.track
    return torch.zeros(links.num_links, dtype=torch.long, device=node_track.device).scatter_(
        0, links.dsg_link, node_track.index_select(0, links.dsg_nodes))
