"""``finsta-pl sg-eval``: precision/recall/F1 of our TSGs and DSGs against the synthetic world's gold graphs.

TSG (every caption and question of ``text_graphs``; the event-order questions of ``order_qa/text_graphs.json``
as ``tsg_order_*``), multisets per text, labels only (no node identity):
objects ``label``; attributes ``(object label, attribute)``; relations ``(subject, predicate, object or None)``;
adverbs separately as ``(predicate, adverb)`` pairs, so a right relation with a missing adverb is not a wrong
relation.  Conventions where gold and TSG disagree: "appears on the right" is a locative adverb in the gold
but ``appear on -> right`` in a TSG, so a predicate "X on|in|to|at" whose object is left/right/top/bottom is
folded into ``X`` + adverb; the pro-verb of "what does X do?" (a placeholder for the asked action, which the
gold leaves out) is not scored.
DSG (per keyframe of ``decode_clip``, against the gold of its source frame): detections match gold boxes by
Hungarian on IoU (>= 0.5); "box" counts every match, "labelled" only those whose label is the gold shape.
Attributes (colour, size) on matched objects use the track's latest value of each kind; a growing object's
size is not scored once it has started to grow (the gold size is its initial one).  Spatial relations are
compared in one canonical direction ("right of"/"below" become "left of"/"above" with swapped arguments,
"near" unordered), so the gold's two ordered pairs and the DSG's one unordered pair agree.  Motion predicates
between keyframes ``k-1`` and ``k``: ``(object, move, direction)``, ``(object, grow)``, ``(object, appear)``,
``(object, approach, target)`` vs the gold events active in that interval ("stay" has no DSG predicate),
see :func:`gold_motion` for what is required and what is merely allowed.  Track purity: per predicted track
the share of its matched detections on its majority gold object, averaged weighted by matched length.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from finsta_pl.errors import DataNotFoundError
from finsta_pl.graphs.container import NODE, SceneGraph
from finsta_pl.graphs.detect import DETECTORS, make_detector
from finsta_pl.graphs.dsg import _direction, _iou, build_dsg  # the DSG's own geometry rules, shared
from finsta_pl.graphs.parsers import PARSERS, CachedTSGBuilder, make_parser
from finsta_pl.tools.sg_match import Counts, count_matches, gold_text_tuples, graph_links, score_tsg, tsg_tuples

SPATIAL = {"near", "left of", "right of", "above", "below"}
_INVERSE = {"right of": "left of", "below": "above"}
_SIZES = {"small", "large"}


# ----------------------------------------------------------------------------------------------- DSG ----
def match_boxes(pred: np.ndarray, gold: np.ndarray, threshold: float = 0.5) -> list[tuple[int, int]]:
    """Hungarian matching of ``pred [n, 4]`` to ``gold [m, 4]`` boxes maximising IoU; pairs with IoU >= threshold."""
    if len(pred) == 0 or len(gold) == 0:
        return []
    iou = _iou(np.asarray(pred, float).reshape(-1, 4), np.asarray(gold, float).reshape(-1, 4))
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= threshold]


def canonical_spatial(subject: Any, predicate: str, obj: Any) -> tuple[Any, str, Any]:
    """One direction per spatial fact: inverses swap to "left of"/"above"; "near" orders its arguments."""
    if predicate in _INVERSE:
        return obj, _INVERSE[predicate], subject
    if predicate == "near":
        a, b = sorted((subject, obj), key=repr)  # repr: None (an unmatched detection) sorts with ints
        return a, predicate, b
    return subject, predicate, obj


def track_purity(track_gold: dict[int, list[int]]) -> float:
    """Per track, the share of its matched detections on its majority gold object, weighted by their number."""
    total = sum(len(v) for v in track_gold.values())
    majority = sum(Counter(v).most_common(1)[0][1] for v in track_gold.values() if v)
    return majority / total if total else 1.0


def _centre(box: list[float]) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], float)


def gold_motion(events: list[dict[str, Any]], prev: int, cur: int, before: dict[int, list[float]],
                after: dict[int, list[float]]) -> tuple[list[tuple], set[tuple]]:
    """Motion tuples the gold requires between source frames ``prev`` and ``cur``, and those it allows.

    ``before``/``after`` are the gold boxes (object id -> box) of the two frames.  An event active in the
    interval is required where the boxes show its effect (the world rounds sizes and positions to pixels, so a
    slow growth shows in every other interval only) and allowed elsewhere; what the boxes show but no event
    names (the approaching object moves, a mover approaches a bystander) is allowed too.
    """
    both = [o for o in before if o in after]
    shift = {o: _centre(after[o]) - _centre(before[o]) for o in both}
    allowed = {(o, "move", _direction(*shift[o])) for o in both if shift[o].any()}
    dist = {(a, b): [np.linalg.norm(_centre(x[a]) - _centre(before[b])) for x in (before, after)]
            for a in both for b in both if a != b}  # to the other's previous place, as the DSG measures it
    closer = {pair for pair, (d0, d1) in dist.items() if d1 < d0}
    allowed |= {(a, "approach", b) for a, b in closer}
    need = []
    for e in events:
        s, p = e["subject"], e["predicate"]
        if p == "appear":
            if prev < e["start"] <= cur:
                need.append((s, "appear", None))
            continue
        if p == "stay" or not (e["start"] < cur and e["end"] > prev) or s not in shift:
            continue
        grew = bool((np.subtract(after[s][2:], after[s][:2]) > np.subtract(before[s][2:], before[s][:2])).all())
        fact = {"move": (s, p, e.get("direction")), "approach": (s, p, e.get("object")), "grow": (s, p, None)}[p]
        visible = {"move": (s, "move", e.get("direction")) in allowed, "grow": grew,
                   "approach": (s, e.get("object")) in closer}[p]
        (need.append(fact) if visible else allowed.add(fact))
    return need, allowed


def dsg_frame_items(g: SceneGraph, frame_size: tuple[int, int]) -> dict[int, dict[str, Any]]:
    """Per keyframe: object nodes with pixel boxes/labels/attributes, and relation nodes with their arguments."""
    h, w = frame_size
    lab, types, frames = g.node_label, g.node_type.tolist(), g.node_frame.tolist()
    tracks, boxes = g.node_track.tolist(), (g.node_box * np.array([w, h, w, h], np.float32)).tolist()
    subj, obj, attrs, advs = graph_links(g)
    out: dict[int, dict[str, Any]] = defaultdict(lambda: {"objects": [], "relations": []})
    state: dict[int, dict[str, str]] = defaultdict(dict)  # track -> kind -> latest attribute value
    for i in sorted(range(len(types)), key=lambda i: frames[i]):
        if types[i] == NODE["object"]:
            state[tracks[i]].update({("size" if a in _SIZES else "colour"): a for a in attrs[i]})
            out[frames[i]]["objects"].append({"node": i, "track": tracks[i], "box": boxes[i], "label": lab[i],
                                              "attributes": dict(state[tracks[i]])})
        elif types[i] == NODE["relation"] and i in subj:
            out[frames[i]]["relations"].append((lab[i], subj[i], obj.get(i), advs[i]))
    return out


def score_dsg_video(g: SceneGraph, gold: dict[str, Any], frame_indices: list[int]) -> dict[str, Any]:
    """Counts per DSG metric for one video, plus ``track_gold`` (track -> matched gold ids) for purity."""
    items = dsg_frame_items(g, tuple(gold["frame_size"]))
    objects = {o["id"]: o for o in gold["objects"]}
    growing = {e["subject"]: e["start"] for e in gold["events"] if e["predicate"] == "grow"}
    res = {k: Counts() for k in ("objects_box", "objects_labelled", "attributes", "spatial", "motion")}
    track_gold: dict[int, list[int]] = defaultdict(list)
    for k, src in enumerate(frame_indices):
        dets, rels = items[k]["objects"], items[k]["relations"]
        gboxes = gold["frames"][src]["boxes"]
        pairs = match_boxes(np.array([d["box"] for d in dets]), np.array([b["box"] for b in gboxes]))
        gid = {dets[i]["node"]: gboxes[j]["object"] for i, j in pairs}
        res["objects_box"] += Counts(len(pairs), len(dets) - len(pairs), len(gboxes) - len(pairs))
        ok = sum(dets[i]["label"] == objects[gboxes[j]["object"]]["shape"] for i, j in pairs)
        res["objects_labelled"] += Counts(ok, len(dets) - ok, len(gboxes) - ok)
        for i, j in pairs:
            o = objects[gboxes[j]["object"]]
            want = {"colour": o["color"]} | ({} if src > growing.get(o["id"], src) else {"size": o["size"]})
            have = {kind: v for kind, v in dets[i]["attributes"].items() if kind in want}
            res["attributes"] += count_matches(have.items(), want.items())
            track_gold[dets[i]["track"]].append(o["id"])
        spatial = [canonical_spatial(gid.get(s), p, gid.get(o)) for p, s, o, _ in rels if p in SPATIAL]
        gold_sp = {canonical_spatial(r["subject"], r["predicate"], r["object"])
                   for r in gold["relations"] if r["t"] == src}
        res["spatial"] += count_matches(spatial, gold_sp)
        if k > 0:
            motion = [(gid.get(s), p, adv[0] if p == "move" and adv else gid.get(o) if p == "approach" else None)
                      for p, s, o, adv in rels if p not in SPATIAL]
            prev = frame_indices[k - 1]
            before = {b["object"]: b["box"] for b in gold["frames"][prev]["boxes"]}
            need, allowed = gold_motion(gold["events"], prev, src, before, {b["object"]: b["box"] for b in gboxes})
            res["motion"] += count_matches(motion, need, ignore=allowed)
    res["relations"] = res["spatial"] + res["motion"]
    return {"counts": res, "track_gold": {t: v for t, v in track_gold.items()}}


# ----------------------------------------------------------------------------------------------- CLI ----
def evaluate(root: Path, parser: str, detector: str, num_frames: int) -> dict[str, Any]:
    """Score every gold file under ``root/scene_graphs``; returns ``{metric: {p, r, f1, tp, fp, fn}}`` etc."""
    from finsta_pl.data_modules.video import decode_clip  # decord: only when videos are read

    files = sorted((root / "scene_graphs").glob("video*.json"), key=lambda p: int(p.stem[5:]))
    if not files:
        raise DataNotFoundError(f"{root / 'scene_graphs'}: no gold scene graphs (video*.json) here")
    tsg_of, detect = CachedTSGBuilder(make_parser(parser)), make_detector(detector)
    totals: dict[str, Counts] = defaultdict(Counts)
    track_gold: list[dict[int, list[int]]] = []
    for f in files:
        gold = json.loads(f.read_text())
        for tg in gold["text_graphs"]:
            for k, c in score_tsg(tsg_tuples(tsg_of(tg["text"])), gold_text_tuples(tg)).items():
                totals["tsg_" + k] += c
        frames, idx = decode_clip(root / "videos" / f"{gold['video_id']}.mp4", num_frames)
        g = build_dsg(detect(frames), idx, frames.shape[1:3])
        scored = score_dsg_video(g, gold, [int(i) for i in idx])
        for k, c in scored["counts"].items():
            totals["dsg_" + k] += c
        track_gold.append(scored["track_gold"])
    order = root / "order_qa" / "text_graphs.json"  # event-order questions on the paired videos (world v5+)
    for tg in json.loads(order.read_text()) if order.is_file() else []:
        for k, c in score_tsg(tsg_tuples(tsg_of(tg["text"])), gold_text_tuples(tg)).items():
            totals["tsg_order_" + k] += c
    purity = track_purity({(v, t): ids for v, tg in enumerate(track_gold) for t, ids in tg.items()})
    metrics = {k: dict(zip(("p", "r", "f1"), c.prf()), tp=c.tp, fp=c.fp, fn=c.fn) for k, c in totals.items()}
    return {"videos": len(files), "parser": parser, "detector": detector, "num_frames": num_frames,
            "root": str(root), "metrics": metrics, "dsg_track_purity": purity}


def format_table(result: dict[str, Any]) -> str:
    """The metrics as an aligned text table."""
    lines = [f"sg-eval: {result['videos']} videos, parser={result['parser']}, detector={result['detector']}, "
             f"{result['num_frames']} keyframes", f"{'metric':<24}{'P':>7}{'R':>7}{'F1':>7}{'TP':>8}{'FP':>7}{'FN':>7}"]
    for k, m in result["metrics"].items():
        lines.append(f"{k:<24}{m['p']:>7.3f}{m['r']:>7.3f}{m['f1']:>7.3f}{m['tp']:>8}{m['fp']:>7}{m['fn']:>7}")
    lines.append(f"{'dsg_track_purity':<24}{result['dsg_track_purity']:>21.3f}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``finsta-pl sg-eval [--world-size N | --root DIR] [--parser P] [--detector D] [--num-frames T] [--json F]``."""
    ap = argparse.ArgumentParser(prog="finsta-pl sg-eval", description="Score TSGs and DSGs against gold graphs.")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--world-size", type=int, default=100,
                       help="evaluate the first N videos of the default world (generated into the cache)")
    where.add_argument("--root", type=Path, help="an existing world folder (with scene_graphs/ and videos/)")
    ap.add_argument("--parser", choices=PARSERS, default="rule")
    ap.add_argument("--detector", choices=sorted(DETECTORS), default="motion")
    ap.add_argument("--num-frames", type=int, default=8)
    ap.add_argument("--json", type=Path, help="also write the metrics to this JSON file")
    ap.add_argument("--tracking", action="store_true",
                    help="score tracking instead (MOTA, IDF1 with motmetrics; this tracker and stop 16's)")
    ap.add_argument("--miss-rate", type=float, default=0.0, help="with --tracking: drop this share of detections")
    ap.add_argument("--text-gold", type=Path,
                    help="score TSG parsers on hand-annotated text (tests/data/tsg_gold/gold.jsonl) instead")
    ap.add_argument("--parsers", default=None,
                    help="with --text-gold: comma-separated parsers (default: rule,spacy and SceneGraphParser "
                         "when installed, plus stanza when its models are)")
    args = ap.parse_args(argv)
    if args.text_gold is not None:
        return _text_gold_main(args)
    if args.world_size < 1 or args.num_frames < 1:
        ap.error("--world-size and --num-frames must be >= 1")
    root = args.root
    if root is None:
        from finsta_pl.data_modules.synthetic import WorldConfig, ensure_world

        # Videos are seeded per id, so these N are the first N training videos of the default world.
        root = ensure_world(WorldConfig(num_train=args.world_size, num_val=0, num_test=0))
    if args.tracking:
        from finsta_pl.tools.track_eval import evaluate_tracking, format_tracking

        result = evaluate_tracking(root, args.detector, args.num_frames, args.miss_rate)
        print(format_tracking(result, args.miss_rate))
    else:
        result = evaluate(root, args.parser, args.detector, args.num_frames)
        print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _text_gold_main(args: argparse.Namespace) -> int:
    from finsta_pl.graphs.parsers import stanza_model_dir
    from finsta_pl.tools.text_gold import (SCENE_GRAPH_PARSER, evaluate_text_gold, format_text_table,
                                           scene_graph_parser_available)

    if args.parsers:
        parsers = [p.strip() for p in args.parsers.split(",") if p.strip()]
    else:
        parsers = ["rule", "spacy"] + (["stanza"] if stanza_model_dir("en") is not None else [])
        parsers += [SCENE_GRAPH_PARSER] if scene_graph_parser_available() else []
    result = evaluate_text_gold(args.text_gold, parsers)
    print(format_text_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
