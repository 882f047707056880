"""Cross-modal coreference by host embedding similarity, for samples whose DSG has no usable labels.

A detector that only proposes regions (``grid``, or sidecars without class names) leaves nothing for label
linking (``graphs/hsg.py``) to compare.  Then a TSG object is linked to the DSG tracks whose host features
are most similar to its own: the span-pooled host text tokens of the object against the mean RoI-pooled host
frame features of the track (cosine, top-k per object, above a threshold).  This needs the host, so it runs
in the model, vectorised over the batch: one cosine per (object, track of the same sample) pair, no loop.
Similarities are detached: which tracks are linked is a discrete choice, not something to optimise through.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from finsta_pl.graphs.container import EDGE, EDGE_TYPES, NODE, GraphBatch
from finsta_pl.nn.scatter import scatter_mean


@dataclass
class EmbeddingLinks:
    """Links ``(text_node[l], track nodes dsg_nodes[dsg_link == l])``; ``link_graph`` is each link's text."""

    text_node: Tensor
    link_graph: Tensor
    dsg_nodes: Tensor
    dsg_link: Tensor

    @property
    def num_links(self) -> int:
        """Number of (text object, track) links."""
        return int(self.text_node.numel())


def _within_group_rank(group: Tensor, score: Tensor) -> Tensor:
    """Rank (0 = best) of each score among the entries of its group."""
    order = torch.argsort(score, descending=True, stable=True)
    order = order[torch.argsort(group[order], stable=True)]  # by group, best first inside each group
    counts = torch.bincount(group, minlength=int(group.max()) + 1 if group.numel() else 0)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(group)
    rank[order] = torch.arange(group.numel(), device=group.device) - starts[group[order]]
    return rank


def embedding_links(tsg: GraphBatch, dsg: GraphBatch, text_sample: Tensor, text_feat: Tensor, video_feat: Tensor,
                    samples: Tensor, threshold: float, top_k: int) -> EmbeddingLinks:
    """Links of the texts flagged in ``samples`` ([M] bool) to the tracks of their clips (``text_sample``), from
    TSG node features ``text_feat`` and DSG node features ``video_feat`` (host space, one row per node)."""
    device = text_feat.device
    clips = torch.zeros(dsg.num_graphs, dtype=torch.bool, device=device)
    clips[text_sample[samples]] = True
    objects = torch.nonzero((tsg.node_type == NODE["object"]) & samples[tsg.node_graph]).squeeze(1)
    boxes = torch.nonzero((dsg.node_type == NODE["object"]) & (dsg.node_track >= 0)
                          & clips[dsg.node_graph]).squeeze(1)
    empty = torch.zeros(0, dtype=torch.long, device=device)
    if objects.numel() == 0 or boxes.numel() == 0:
        return EmbeddingLinks(empty, empty, empty, empty)
    # Tracks: unique over the batch already; renumber 0..K-1 in (sample, track) order.
    track_ids, track_of_box = torch.unique(dsg.node_track[boxes], return_inverse=True)
    num_tracks = int(track_ids.numel())
    track_feat = scatter_mean(video_feat[boxes].detach().float(), track_of_box, num_tracks)
    track_graph = torch.zeros(num_tracks, dtype=torch.long, device=device).scatter_(0, track_of_box, dsg.node_graph[boxes])
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
    link_obj, link_track = pair_obj[keep], pair_track[keep]
    # Expand each link to the DSG nodes of its track.
    by_track = torch.argsort(track_of_box, stable=True)
    box_count = torch.bincount(track_of_box, minlength=num_tracks)
    box_first = torch.cumsum(box_count, 0) - box_count
    sizes = box_count[link_track]
    dsg_link = torch.repeat_interleave(torch.arange(link_obj.numel(), device=device), sizes)
    offset = torch.arange(dsg_link.numel(), device=device) - torch.repeat_interleave(torch.cumsum(sizes, 0) - sizes, sizes)
    dsg_nodes = boxes[by_track[box_first[link_track][dsg_link] + offset]]
    return EmbeddingLinks(objects[link_obj], obj_text[link_obj], dsg_nodes, dsg_link)


def _first_nodes(g: GraphBatch) -> tuple[Tensor, Tensor]:
    counts = torch.bincount(g.node_graph, minlength=g.num_graphs)
    return torch.cumsum(counts, 0) - counts, counts


def crossmodal_edges(links: EmbeddingLinks, tsg: GraphBatch, dsg: GraphBatch, hsg: GraphBatch,
                     text_sample: Tensor) -> tuple[Tensor, Tensor]:
    """HSG ``(edge_index, edge_type)`` of the links, both directions, as collation would have written them.
    The HSG of text ``m`` holds its TSG nodes, then a copy of its clip's DSG nodes."""
    tsg_first, tsg_count = _first_nodes(tsg)
    dsg_first, _ = _first_nodes(dsg)
    hsg_first, _ = _first_nodes(hsg)
    text = links.link_graph[links.dsg_link]  # the text (HSG graph) of each link edge
    src = hsg_first[text] + links.text_node[links.dsg_link] - tsg_first[text]
    dst = hsg_first[text] + tsg_count[text] + links.dsg_nodes - dsg_first[text_sample[text]]
    index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    kind = EDGE["crossmodal"]
    types = torch.cat([torch.full_like(src, kind), torch.full_like(src, kind + len(EDGE_TYPES))])
    return index, types
