"""One readable picture of a sample's scene graphs: text + TSG, keyframes with DSG tracks, HSG links.

Everything is recovered from the HSG alone (TSG nodes first, then DSG nodes, then cross-modal edges, see
:func:`~finsta_pl.graphs.hsg.build_hsg`), so any dataset item or ``GraphBuilder`` output can be drawn without
changes elsewhere.  Only matplotlib (Agg canvas, no pyplot state, so it is safe in training processes) and
numpy are used; the TSG layout is a fixed four-row layered layout.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import is_color_like
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from finsta_pl.graphs.container import EDGE, EDGE_TYPES, NODE, SceneGraph
from finsta_pl.graphs.hsg import LinkConfig, link_objects, track_summaries

#: TSG rows, top to bottom, and how each node kind looks (box style, face colour).
_ROW = {"attribute": 3, "scene": 2, "object": 2, "relation": 1, "adverb": 0}
_STYLE = {"object": ("round,pad=0.3", "#9ecae1"), "attribute": ("square,pad=0.3", "#fdd49e"),
          "relation": ("rarrow,pad=0.3", "#fc9272"), "adverb": ("round4,pad=0.3", "#a1d99b"),
          "scene": ("circle,pad=0.2", "#d9d9d9")}
_EDGE_COLOR = {"attribute": "#e6550d", "subject": "#3182bd", "object": "#756bb1", "adverb": "#31a354"}
# The DSG's geometric predicates (dsg.build_dsg); everything else it emits is a motion predicate.
_SPATIAL = {"near", "left of", "right of", "above", "below"}
_MAX_PREDICATES = 7  # lines under a keyframe; the rest is counted
_MAX_TEXT_LINES = 3
_MAX_LINK_ROWS = 4  # text objects beyond these rows are counted, not drawn
_TSG_MIN_PT, _MAX_WIDTH_IN = 6.5, 24.0
NODE_NAME = {v: k for k, v in NODE.items()}


def split_hsg(hsg: SceneGraph) -> tuple[SceneGraph, SceneGraph, list[tuple[int, int]]]:
    """``(tsg, dsg, links)`` of an HSG; links are ``(tsg object node, track id)`` from the cross-modal edges.

    TSG nodes are the leading nodes without a keyframe (DSG nodes, scene nodes included, all have one).
    """
    frame = hsg.node_frame.tolist()
    n = next((i for i, f in enumerate(frame) if f >= 0), len(frame))
    src, dst = hsg.edge_index
    cross = hsg.edge_type == EDGE["crossmodal"]

    def part(lo: int, hi: int) -> SceneGraph:
        keep = (src >= lo) & (src < hi) & (dst >= lo) & (dst < hi) & ~cross
        return SceneGraph(
            node_type=hsg.node_type[lo:hi], node_label=hsg.node_label[lo:hi],
            edge_index=hsg.edge_index[:, keep] - lo, edge_type=hsg.edge_type[keep], node_span=hsg.node_span[lo:hi],
            node_frame=hsg.node_frame[lo:hi], node_track=hsg.node_track[lo:hi], node_box=hsg.node_box[lo:hi])

    tracks = hsg.node_track.tolist()
    links = sorted({(s, tracks[d]) for s, d in hsg.edge_index[:, cross].t().tolist()})
    return part(0, n), part(n, hsg.num_nodes), links


def track_color(track_id: int) -> tuple[float, float, float]:
    """A distinct, stable colour per track id (golden-angle hues, so neighbouring ids differ most)."""
    import colorsys

    return colorsys.hsv_to_rgb((track_id * 0.381966) % 1.0, 0.85, 0.95)


def _spread(xs: list[float], widths: list[float]) -> list[float]:
    """Push sorted-by-x labels apart so neighbours do not overlap (centres in character units)."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = list(xs)
    for a, b in itertools.pairwise(order):
        out[b] = max(out[b], out[a] + (widths[a] + widths[b]) / 2 + 2.0)
    # Pushing only goes right; shift the row back so it stays centred under the nodes it hangs from.
    shift = float(np.mean(xs) - np.mean(out)) if out else 0.0
    return [x + shift for x in out]


def _layout(tsg: SceneGraph) -> dict[int, tuple[float, float]]:
    """Layered positions: objects spaced by label length, the rest placed over/under the nodes they attach to."""
    kinds = [NODE_NAME[k] for k in tsg.node_type.tolist()]
    width = [len(label) + 2.0 for label in tsg.node_label]
    parents: dict[int, list[int]] = defaultdict(list)
    for (s, d), t in zip(tsg.edge_index.t().tolist(), tsg.edge_type.tolist()):
        kind = EDGE_TYPES[t]
        if kind in {"attribute", "adverb"}:
            parents[d].append(s)
        elif kind in {"subject", "object"}:  # subject -> relation -> object: a relation sits between both
            parents[d if kind == "subject" else s].append(s if kind == "subject" else d)
    x: dict[int, float] = {}
    for row_kinds in (("object", "scene"), ("relation",), ("attribute", "adverb")):
        ids = [i for i, k in enumerate(kinds) if k in row_kinds]
        for row in sorted({_ROW[kinds[i]] for i in ids}):
            members = [i for i in ids if _ROW[kinds[i]] == row]
            wanted = [float(np.mean([x[p] for p in parents[i] if p in x])) if any(p in x for p in parents[i])
                      else 1e9 + j for j, i in enumerate(members)]  # unattached nodes go to the right
            wanted = [w if w < 1e9 else (max(x.values(), default=0.0) + 4 * (w - 1e9 + 1)) for w in wanted]
            x.update(zip(members, _spread(wanted, [width[i] for i in members])))
    return {i: (x[i], float(_ROW[kinds[i]])) for i in range(len(kinds))}


def _tsg_extent(pos: dict[int, tuple[float, float]], tsg: SceneGraph) -> tuple[float, float]:
    """Leftmost and rightmost x (characters) the layout needs, labels included."""
    pad = max(len(s) for s in tsg.node_label) + 2
    return min(p[0] for p in pos.values()) - pad, max(p[0] for p in pos.values()) + pad


def _draw_tsg(ax: Axes, tsg: SceneGraph, pos: dict[int, tuple[float, float]], fig_width_in: float) -> None:
    lo, hi = _tsg_extent(pos, tsg)
    # x is in characters: pick the font size at which the widest row fits (a character is ~0.62 em), then
    # show as many characters as the axes hold at that size, so spacing on screen matches label lengths.
    chars = fig_width_in * 72 * 0.96 / 0.62
    size = float(np.clip(chars / max(hi - lo, 1), 5, 10))
    half = max(chars / size, hi - lo) / 2
    lo, hi = (lo + hi) / 2 - half, (lo + hi) / 2 + half
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.6, 3.6)
    ax.axis("off")
    for (s, d), t in zip(tsg.edge_index.t().tolist(), tsg.edge_type.tolist()):
        kind = EDGE_TYPES[t]
        (x0, y0), (x1, y1) = pos[s], pos[d]
        ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "-|>", "color": _EDGE_COLOR.get(kind, "gray"),
                                                              "lw": 1, "shrinkA": 9, "shrinkB": 9}, zorder=1)
        # Label near the destination: edges leaving one node then get their labels apart.
        ax.text(0.4 * x0 + 0.6 * x1, 0.4 * y0 + 0.6 * y1, kind[:4], fontsize=size * 0.7, color=_EDGE_COLOR.get(kind, "gray"),
                ha="center", va="center", zorder=2, bbox={"fc": "white", "ec": "none", "pad": 0.3, "alpha": 0.8})
    for i, (x, y) in pos.items():
        style, face = _STYLE[NODE_NAME[int(tsg.node_type[i])]]
        ax.text(x, y, tsg.node_label[i], fontsize=size, ha="center", va="center", zorder=3,
                bbox={"boxstyle": style, "fc": face, "ec": "#444444", "lw": 0.6})
    for row, name in ((3, "attributes"), (2, "objects"), (1, "relations"), (0, "adverbs")):
        ax.text(lo, row, name, fontsize=6, color="gray", ha="left", va="center", style="italic")


def _track_names(dsg: SceneGraph) -> dict[int, str]:
    """``label/colour`` of each track from its majority label and the colour words among its attributes."""
    names = {}
    for tid, (label, attrs) in track_summaries(dsg).items():
        colours = sorted(a for a in attrs if is_color_like(a) and not a.replace(".", "").isdigit())
        names[tid] = f"{label}/{colours[0]}" if colours else label
    return names


def _predicates(dsg: SceneGraph, frame: int) -> list[tuple[int, str, bool]]:
    """``(subject track, "#3 move left quickly", spatial?)`` lines of one keyframe, motion predicates first."""
    subj, obj, adv = {}, {}, defaultdict(list)
    for (s, d), t in zip(dsg.edge_index.t().tolist(), dsg.edge_type.tolist()):
        if t == EDGE["subject"]:
            subj[d] = s
        elif t == EDGE["object"]:
            obj[s] = d
        elif t == EDGE["adverb"]:
            adv[s].append(dsg.node_label[d])
    track = dsg.node_track.tolist()
    lines = []
    for r, (kind, f) in enumerate(zip(dsg.node_type.tolist(), dsg.node_frame.tolist())):
        if kind != NODE["relation"] or f != frame:
            continue
        words = [f"#{track[subj[r]]}" if r in subj else "?", dsg.node_label[r], *adv[r]]
        words += [f"#{track[obj[r]]}"] if r in obj else []
        lines.append((dsg.node_label[r] in _SPATIAL, track[subj[r]] if r in subj else -1, " ".join(words)))
    return [(tid, text, spatial) for spatial, tid, text in sorted(lines, key=lambda x: x[0])]


def draw_scene_graphs(
    frames: np.ndarray | torch.Tensor, hsg: SceneGraph, text: str, out_path: str | Path | None = None,
    frame_indices: np.ndarray | list[int] | None = None,
) -> np.ndarray:
    """Render ``frames`` (``[T, H, W, 3]`` RGB uint8) and the HSG of ``text`` as one picture.

    Top: the wrapped text and its TSG; middle: the keyframes with DSG boxes coloured by track and their
    predicates; bottom: the cross-modal links with their scores (recomputed by ``link_objects``: the HSG
    keeps links but not scores, and a score does not depend on the threshold that kept the link).  Saves a PNG to ``out_path`` when given and
    returns the picture as an RGB ``uint8 [H, W, 3]`` array (for TensorBoard).
    """
    frames = np.asarray(frames)
    tsg, dsg, links = split_hsg(hsg)
    t = int(frames.shape[0])
    indices = list(frame_indices) if frame_indices is not None else list(range(t))
    names, tracks = _track_names(dsg), dsg.node_track.tolist()
    per_frame = [_predicates(dsg, k) for k in range(t)]
    n_lines = min(max((len(p) for p in per_frame), default=0), _MAX_PREDICATES + 1)
    pos = _layout(tsg)
    lo, hi = _tsg_extent(pos, tsg)
    # Wide enough for the keyframes and for the TSG at >= 6.5 pt, up to a limit where the font shrinks instead.
    width = float(np.clip((hi - lo) * _TSG_MIN_PT * 0.62 / 72 / 0.96, max(9.0, 1.9 * t + 0.6), _MAX_WIDTH_IN))
    wrapped = textwrap.wrap(text, width=int(width * 13)) or [""]
    if len(wrapped) > _MAX_TEXT_LINES:
        wrapped = wrapped[:_MAX_TEXT_LINES - 1] + [textwrap.shorten(" ".join(wrapped[_MAX_TEXT_LINES - 1:]),
                                                                    int(width * 13), placeholder=" …")]
    text_objects = [i for i, k in enumerate(tsg.node_type.tolist()) if k == NODE["object"]]
    cols = max(1, int(width // 3.0))
    link_rows = min(max(1, math.ceil(len(text_objects) / cols)), _MAX_LINK_ROWS)
    frame_h = min(width / t, 2.6)
    heights = [0.22 * len(wrapped) + 0.15, 2.3, frame_h, 0.15 * n_lines + 0.15, 0.25 * link_rows + 0.3]
    fig = Figure(figsize=(width, sum(heights)), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(heights), t, height_ratios=heights, hspace=0.12, wspace=0.04,
                            left=0.02, right=0.98, top=0.99, bottom=0.01)
    ax = fig.add_subplot(grid[0, :])
    ax.axis("off")
    ax.text(0, 1, "\n".join(wrapped), fontsize=10, va="top", ha="left", transform=ax.transAxes, wrap=False)
    _draw_tsg(fig.add_subplot(grid[1, :]), tsg, pos, width)
    for k in range(t):
        ax = fig.add_subplot(grid[2, k])
        h, w = frames[k].shape[:2]
        ax.imshow(frames[k], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"frame {indices[k]}", fontsize=7, pad=2)
        px = min(width * 0.96 / t, frame_h * w / h) / w  # inches per image pixel
        char_w, line_h, placed = 5.5 * 0.6 / 72 / px, 5.5 * 1.4 / 72 / px, []
        for j in [j for j, f in enumerate(dsg.node_frame.tolist()) if f == k and dsg.node_type[j] == NODE["object"]]:
            x1, y1, x2, y2 = (dsg.node_box[j] * torch.tensor([w, h, w, h])).tolist()
            colour = track_color(tracks[j])
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, ec=colour, lw=1.6))
            label = f"{names.get(tracks[j], dsg.node_label[j])} #{tracks[j]}"
            right = x1 > w / 2  # anchor the label on the box side nearer the centre so it stays in the frame
            lx = (x2 - len(label) * char_w) if right else x1
            # Labels sit on the box's top edge, moved down one line at a time while they hide an earlier one.
            ly = max(y1, line_h)
            while any(abs(ly - py) < line_h and lx < px2 and px1 < lx + len(label) * char_w for px1, px2, py in placed):
                ly += line_h
            placed.append((lx, lx + len(label) * char_w, ly))
            ax.text((x2 if right else x1) - 0.5, ly - 0.5, label,
                    fontsize=5.5, va="bottom", ha="right" if right else "left", color="black", clip_on=True,
                    bbox={"fc": colour, "ec": "none", "pad": 0.5, "alpha": 0.85})
        ax = fig.add_subplot(grid[3, k])
        ax.axis("off")
        # Align the list with the image, which is centred in its (possibly wider) cell; sizes in inches.
        cell, shown_w = width * 0.96 / t, min(width * 0.96 / t, frame_h * w / h)
        x0, inch = (cell - shown_w) / 2 / cell, 1 / cell
        lines = per_frame[k] if len(per_frame[k]) <= _MAX_PREDICATES + 1 else (
            per_frame[k][:_MAX_PREDICATES] + [(-1, f"+{len(per_frame[k]) - _MAX_PREDICATES} more", True)])
        if not any(dsg.node_frame[j] == k and dsg.node_type[j] == NODE["object"] for j in range(dsg.num_nodes)):
            lines = [(-1, "(nothing detected)", True)]
        for row, (tid, line, spatial) in enumerate(lines):
            y = 1 - (row + 0.5) / max(n_lines, 1)
            if tid >= 0:
                ax.add_patch(Rectangle((x0, y - 0.3 / max(n_lines, 1)), 0.1 * inch, 0.6 / max(n_lines, 1),
                                       color=track_color(tid), transform=ax.transAxes))
            ax.text(x0 + 0.14 * inch, y, line, fontsize=6, va="center", ha="left", transform=ax.transAxes,
                    color="dimgray" if spatial else "black")
    # Width of a 7 pt character in link columns (a column is ``0.96 * width / cols`` inches).
    char = 0.6 * 7 / 72 / (0.96 * width / cols)
    _draw_links(fig.add_subplot(grid[4, :]), tsg, dsg, links, names, text_objects, (cols, link_rows, char))
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_path, dpi=100)
    return image


def _draw_links(ax: Axes, tsg: SceneGraph, dsg: SceneGraph, links: list[tuple[int, int]], names: dict[int, str],
                text_objects: list[int], grid: tuple[int, int, float]) -> None:
    cols, rows, char = grid
    ax.axis("off")
    ax.set_xlim(0, cols)
    ax.set_ylim(0, rows + 0.6)
    ax.text(0, rows + 0.3, "HSG links (text object -> DSG track, score)", fontsize=7, color="gray", va="center")
    everything = LinkConfig(threshold=-math.inf, top_k=10**6)
    scores = {(i, tid): s for i, tid, s in link_objects(tsg, dsg, everything)}
    linked: dict[int, list[int]] = defaultdict(list)
    for i, tid in links:
        linked[i].append(tid)
    if not text_objects:
        ax.text(0, rows - 0.5, "(no objects in the text)", fontsize=7, va="center")
    shown = text_objects if len(text_objects) <= cols * rows else text_objects[: cols * rows - 1]
    if len(shown) < len(text_objects):
        ax.text(cols - 1, 0.5, f"+{len(text_objects) - len(shown)} more text objects", fontsize=7, va="center")
    for n, i in enumerate(shown):
        x, y = n % cols, rows - 0.5 - n // cols
        ax.text(x, y, f"{tsg.node_label[i]} ->", fontsize=7, va="center", ha="left")
        x += char * (len(tsg.node_label[i]) + 4)
        if not linked[i]:
            ax.text(x, y, "no track", fontsize=7, va="center", color="gray", style="italic")
        for tid in linked[i][:2]:
            ax.add_patch(Rectangle((x, y - 0.3), 3 * char, 0.6, color=track_color(tid)))
            label = f"#{tid} {names.get(tid, '?')} ({scores.get((i, tid), float('nan')):.1f})"
            ax.text(x + 4 * char, y, label, fontsize=7, va="center")
            x += char * (len(label) + 7)
