"""Cross-modal coreference by host embedding similarity, for samples whose DSG has no usable labels.

A detector that only proposes regions (``grid``, or sidecars without class names) leaves nothing for label
linking (``graphs/hsg.py``) to compare.  Then a TSG object is linked to the DSG tracks whose host features
are most similar to its own: the span-pooled host text tokens of the object against the mean RoI-pooled host
frame features of the track (cosine, top-k per object, above a threshold).  This needs the host, so it runs
in the model, vectorised over the batch: one cosine per (object, track of the same sample) pair, no loop.
Similarities are detached: which tracks are linked is a discrete choice, not something to optimise through.

Fixed host features do not align text with regions (no loss ever asked them to), so cosines stay near chance and
a threshold links nothing.  :class:`LinkMatcher` is the trained alternative (``FinstaConfig.learned_links``):
a projection of both sides trained to match objects to their own clip's tracks, whose best matches are the
links from the first step on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finsta_pl.batch import GoldObjects, LinkTracks, link_tracks, renumber_tracks
from finsta_pl.graphs.container import EDGE, EDGE_TYPES, NODE, GraphBatch
from finsta_pl.nn.scatter import scatter_mean


@dataclass
class EmbeddingLinks:
    """Links ``(text_node[l], track nodes dsg_nodes[dsg_link == l])``; ``link_graph`` is each link's text.

    Learned links (issue 23) expand densely over the boxes of the object's clip: then ``keep`` ([E] bool) says
    which entries are the linked track's, ``track`` ([L]) is each link's batch track id, and ``edge_text``/
    ``edge_dsg``/``edge_keep`` are the (TSG node, DSG node) pairs of the HSG edges, each once, masked alike.
    ``None``: every entry counts, and the HSG edges are ``(text_node[dsg_link], dsg_nodes)``."""

    text_node: Tensor
    link_graph: Tensor
    dsg_nodes: Tensor
    dsg_link: Tensor
    keep: Tensor | None = None
    track: Tensor | None = None
    edge_text: Tensor | None = None
    edge_dsg: Tensor | None = None
    edge_keep: Tensor | None = None

    @property
    def num_links(self) -> int:
        """Number of (text object, track) links."""
        return int(self.text_node.numel())

    def edge_pairs(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(TSG node, DSG node, keep)`` of each HSG edge the links make (one direction)."""
        if self.edge_text is not None:
            return self.edge_text, self.edge_dsg, self.edge_keep
        return self.text_node.index_select(0, self.dsg_link), self.dsg_nodes, self.keep


def _within_group_rank(group: Tensor, score: Tensor) -> Tensor:
    """Rank (0 = best) of each score among the entries of its group."""
    order = torch.argsort(score, descending=True, stable=True)
    order = order[torch.argsort(group[order], stable=True)]  # by group, best first inside each group
    counts = torch.bincount(group, minlength=int(group.max()) + 1 if group.numel() else 0)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(group)
    rank[order] = torch.arange(group.numel(), device=group.device) - starts[group[order]]
    return rank


@dataclass
class _Tracks:
    """The text objects of the requesting texts and the DSG boxes of the candidate tracks, with the tracks
    renumbered ``0..K-1`` in (clip, track) order (ids are unique per batch from collation, and grow with the
    clip) and each track's boxes in a stable order (``by_track``, ``box_first``, ``box_count``)."""

    objects: Tensor
    boxes: Tensor
    track_of_box: Tensor
    num_tracks: int
    track_graph: Tensor
    by_track: Tensor
    box_count: Tensor
    box_first: Tensor

    @staticmethod
    def of(tsg: GraphBatch, dsg: GraphBatch, samples: Tensor, clips: Tensor | None = None) -> "_Tracks | None":
        """``None`` when there is no object or no tracked box (``clips``: only these clips' boxes; all if None)."""
        objects, boxes, _, track_of_box, num_tracks, track_graph = renumber_tracks(tsg, dsg, samples, clips)
        if objects.numel() == 0 or boxes.numel() == 0:
            return None
        box_count = torch.bincount(track_of_box, minlength=num_tracks)
        return _Tracks(objects, boxes, track_of_box, num_tracks, track_graph,
                       torch.argsort(track_of_box, stable=True), box_count, torch.cumsum(box_count, 0) - box_count)

    def expand(self, obj_text: Tensor, link_obj: Tensor, link_track: Tensor) -> EmbeddingLinks:
        """Links ``(object, track)`` expanded to the DSG nodes of each track."""
        device = self.boxes.device
        sizes = self.box_count[link_track]
        dsg_link = torch.repeat_interleave(torch.arange(link_obj.numel(), device=device), sizes)
        offset = torch.arange(dsg_link.numel(), device=device) - torch.repeat_interleave(torch.cumsum(sizes, 0) - sizes, sizes)
        dsg_nodes = self.boxes[self.by_track[self.box_first[link_track][dsg_link] + offset]]
        return EmbeddingLinks(self.objects[link_obj], obj_text[link_obj], dsg_nodes, dsg_link)


def _no_links(device: torch.device) -> EmbeddingLinks:
    empty = torch.zeros(0, dtype=torch.long, device=device)
    return EmbeddingLinks(empty, empty, empty, empty)


def embedding_links(tsg: GraphBatch, dsg: GraphBatch, text_sample: Tensor, text_feat: Tensor, video_feat: Tensor,
                    samples: Tensor, threshold: float, top_k: int) -> EmbeddingLinks:
    """Links of the texts flagged in ``samples`` ([M] bool) to the tracks of their clips (``text_sample``), from
    TSG node features ``text_feat`` and DSG node features ``video_feat`` (host space, one row per node)."""
    device = text_feat.device
    clips = torch.zeros(dsg.num_graphs, dtype=torch.bool, device=device)
    clips[text_sample[samples]] = True
    tracks = _Tracks.of(tsg, dsg, samples, clips)
    if tracks is None:
        return _no_links(device)
    objects, track_graph = tracks.objects, tracks.track_graph
    track_feat = scatter_mean(video_feat[tracks.boxes].detach().float(), tracks.track_of_box, tracks.num_tracks)
    # Every (object, track of its text's clip) pair.  Tracks are sorted by clip because track ids grow with
    # the clip in collation, so a clip's tracks are one contiguous range.
    per_graph = torch.bincount(track_graph, minlength=dsg.num_graphs)
    first = torch.cumsum(per_graph, 0) - per_graph
    obj_text = tsg.node_graph[objects]
    obj_graph = text_sample[obj_text]
    pair_obj = torch.repeat_interleave(torch.arange(objects.numel(), device=device), per_graph[obj_graph])
    within = torch.arange(pair_obj.numel(), device=device) - torch.repeat_interleave(
        torch.cumsum(per_graph[obj_graph], 0) - per_graph[obj_graph], per_graph[obj_graph])
    pair_track = first[obj_graph[pair_obj]] + within
    sim = F.cosine_similarity(text_feat[objects[pair_obj]].detach().float(), track_feat[pair_track], dim=-1)
    keep = (sim >= threshold) & (_within_group_rank(pair_obj, sim) < top_k)
    return tracks.expand(obj_text, pair_obj[keep], pair_track[keep])


def _first_nodes(g: GraphBatch) -> tuple[Tensor, Tensor]:
    counts = g.index.graph_count  # from the worker: a bincount here would sync
    return torch.cumsum(counts, 0) - counts, counts


def crossmodal_edges(links: EmbeddingLinks, tsg: GraphBatch, dsg: GraphBatch, hsg: GraphBatch,
                     text_sample: Tensor) -> tuple[Tensor, Tensor]:
    """HSG ``(edge_index, edge_type)`` of the links, both directions, as collation would have written them.
    The HSG of text ``m`` holds its TSG nodes, then a copy of its clip's DSG nodes.  Edges the links mask
    (:func:`crossmodal_keep`) are written too: the layers give them no attention."""
    tsg_first, tsg_count = _first_nodes(tsg)
    dsg_first, _ = _first_nodes(dsg)
    hsg_first, _ = _first_nodes(hsg)
    text_node, dsg_node, _ = links.edge_pairs()
    text = tsg.node_graph.index_select(0, text_node)  # the text (HSG graph) of each link edge
    src = hsg_first[text] + text_node - tsg_first[text]
    dst = hsg_first[text] + tsg_count[text] + dsg_node - dsg_first[text_sample[text]]
    index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    kind = EDGE["crossmodal"]
    types = torch.cat([torch.full_like(src, kind), torch.full_like(src, kind + len(EDGE_TYPES))])
    return index, types


def crossmodal_keep(links: EmbeddingLinks) -> Tensor | None:
    """[E] bool: which of :func:`crossmodal_edges`' edges count (``None``: all)."""
    keep = links.edge_pairs()[2]
    return None if keep is None else torch.cat([keep, keep])


class LinkMatcher(nn.Module):
    """Label-free links that train: each text object is matched against the tracks of the batch in a trained
    projection of the host's own features (span-pooled text tokens; RoI-pooled frame features averaged over the
    track), *with gradient*, so the match and the host's features improve with training.

    The loss is multiple-instance NCE: an object's positive is a track of its own clip, which one unknown, so
    ``-log sum_{own tracks} exp(s) / sum_{all tracks} exp(s)``: tracks of the other clips are its negatives.
    The hard links the HSG and OSC use are each object's ``top_k`` best tracks of its own clip, always (no
    threshold: an untrained match still links, and a link from the first step is what lets OSC run at all).
    """

    def __init__(self, dim: int, temperature: float = 0.07) -> None:
        super().__init__()
        self.text = nn.Linear(dim, dim)
        self.video = nn.Linear(dim, dim)
        self.logit_scale = nn.Parameter(torch.tensor(1 / temperature).log())

    def forward(self, tsg: GraphBatch, dsg: GraphBatch, text_sample: Tensor, span: Tensor, roi: Tensor,
                samples: Tensor, top_k: int, weights: Tensor | None = None, tracks: LinkTracks | None = None
                ) -> tuple[EmbeddingLinks, Tensor]:
        """``(links, loss)`` for the texts flagged in ``samples`` ([M] bool); ``weights`` ([M]): texts whose
        objects make a loss term (true texts); ``tracks``: the worker's :class:`LinkTracks` of ``samples`` and
        ``top_k`` (without them they are made here, which syncs).  How good the links are is measured against
        gold scene graphs where there are some (:func:`gold_link_scores`, the embedded world)."""
        device = span.device
        zero = (self.text.weight.sum() + self.video.weight.sum() + self.text.bias.sum() + self.video.bias.sum()
                + self.logit_scale) * 0.0  # every parameter takes part, also in a batch without pairs (DDP)
        if tracks is None:  # every clip's tracks: the other clips' are the negatives
            tracks = link_tracks(tsg, dsg, text_sample, samples, top_k)
        if tracks.empty:
            return _no_links(device), zero
        objects, num_tracks, track_graph = tracks.objects, tracks.num_tracks, tracks.track_graph
        text = F.normalize(self.text(span[objects]).float(), dim=-1)
        video = F.normalize(scatter_mean(self.video(roi[tracks.boxes]).float(), tracks.track_of_box, num_tracks), dim=-1)
        score = self.logit_scale.exp().clamp(max=100.0) * text @ video.t()  # [O, K]
        obj_text = tsg.node_graph[objects]
        own = track_graph[None, :] == text_sample[obj_text][:, None]
        has_own = own.any(1)
        own_score = score.masked_fill(~own, float("-inf"))
        per_object = torch.logsumexp(score, 1) - torch.logsumexp(own_score.masked_fill(~has_own[:, None], 0.0), 1)
        w = has_own.float() * (weights[obj_text].float() if weights is not None else 1.0)
        loss = (per_object * w).sum() / w.sum().clamp(min=1) + zero
        # Each object's best min(top_k, own tracks) tracks of its own clip: slots the worker counted, so no
        # selection (the first slots of a row are exactly its finite, own-track scores).
        _, pick = own_score.detach().topk(min(top_k, num_tracks), dim=1)
        link_obj = tracks.link_object
        link_track = pick[link_obj, tracks.link_rank]
        # A link's DSG nodes: the boxes of its object's clip, masked to its track.
        keep = tracks.track_of_box.index_select(0, tracks.link_box) == link_track.index_select(0, tracks.link_entry)
        linked = torch.zeros(objects.numel(), num_tracks, dtype=torch.bool, device=device).index_put_(
            (link_obj, link_track), torch.ones_like(link_obj, dtype=torch.bool))
        edge_keep = linked[tracks.object_entry, tracks.track_of_box.index_select(0, tracks.object_box)]
        return EmbeddingLinks(objects.index_select(0, link_obj), obj_text.index_select(0, link_obj),
                              tracks.boxes.index_select(0, tracks.link_box), tracks.link_entry, keep,
                              tracks.track_id.index_select(0, link_track), objects.index_select(0, tracks.object_entry),
                              tracks.boxes.index_select(0, tracks.object_box), edge_keep), loss


def hsg_link_pairs(hsg: GraphBatch, hsg_source: Tensor, num_tsg_nodes: int) -> tuple[Tensor, Tensor]:
    """``(tsg node, dsg node)`` of each cross-modal HSG edge collation wrote (the worker's label links; group 1
    of ``EDGE_GROUPS``).  Both directions of a link are edges, so each link comes twice, which changes no share
    :func:`gold_link_scores` computes; taking the text end as the smaller index avoids a selection (a sync)."""
    index = hsg.index
    edges = hsg.edge_index.index_select(1, index.edge_order[index.group_end[0]:index.group_end[1]])
    source = hsg_source[edges]  # into cat([tsg nodes, dsg nodes]): TSG nodes come first
    return torch.minimum(source[0], source[1]), torch.maximum(source[0], source[1]) - num_tsg_nodes


def gold_link_scores(text_node: Tensor, dsg_node: Tensor, gold: GoldObjects, tsg: GraphBatch, dsg: GraphBatch,
                     text_sample: Tensor, keep: Tensor | None = None) -> dict[str, Tensor]:
    """Links ``(text_node[e], dsg_node[e])`` (one entry per linked DSG node) scored against the gold objects.

    ``link_precision``: share of linked DSG nodes that are the text object's gold object (over text objects
    with a gold); ``link_recall``: share of text objects whose gold object is in their clip's DSG with at
    least one correct linked node; ``link_accuracy``: share of those whose links are mostly correct, i.e.
    top-1 accuracy when each object links one track; ``link_chance``: that accuracy for a uniformly random
    track of the clip (the mean of 1 / its number of tracks).  Diagnostics only (no gradient, no sync)."""
    text_gold, node_gold = gold.tsg.index_select(0, text_node), gold.dsg.index_select(0, dsg_node)
    judged = text_gold >= 0
    if keep is not None:  # [E] bool: entries that are links (learned links mask the other tracks' boxes)
        judged = judged & keep
    correct = (judged & (text_gold == node_gold)).float()
    # A text object is eligible when its gold object appears among its clip's DSG nodes.
    shift = 20  # gold ids are per clip and small: (clip << 20) | id is unique per (clip, object)
    text_key = (text_sample.index_select(0, tsg.node_graph) << shift) | gold.tsg.clamp(min=0)
    node_key = torch.where(gold.dsg >= 0, (dsg.node_graph << shift) | gold.dsg.clamp(min=0), torch.full_like(gold.dsg, -1))
    eligible = (tsg.node_type == NODE["object"]) & (gold.tsg >= 0) & torch.isin(text_key, node_key)
    ones = torch.ones_like(correct) if keep is None else keep.to(correct.dtype)
    links = torch.zeros(tsg.num_nodes, device=correct.device).index_add_(0, text_node, ones)
    right = torch.zeros_like(links).index_add_(0, text_node, correct)
    count = eligible.float().sum().clamp(min=1)
    first_box = (dsg.node_type == NODE["object"]) & (dsg.node_track >= 0) & (dsg.index.node_prev_track < 0)
    tracks = torch.zeros(dsg.num_graphs, device=correct.device).index_add_(0, dsg.node_graph, first_box.float())
    per_object = tracks.index_select(0, text_sample.index_select(0, tsg.node_graph)).clamp(min=1).reciprocal()
    return {"link_chance": (per_object * eligible.float()).sum() / count,
            "link_precision": correct.sum() / judged.float().sum().clamp(min=1),
            "link_recall": (eligible & (right > 0)).float().sum() / count,
            "link_accuracy": (eligible & (2 * right > links)).float().sum() / count}
