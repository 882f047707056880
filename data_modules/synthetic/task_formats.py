"""The embedded world in the official formats of the other tasks' datasets (DATASETS.md §3, §9, §11):

    msrvtt_mc/MSR_MC_{train,val,test}.csv   MSRVTT-MC (JSFusion): tab-separated key, vid_key, a1..a5, answer
    kinetics/kinetics_{train,val,test}.csv  Kinetics-400: label, youtube_id, time_start, time_end, split, is_cc
    violin/violin_annotation.json           VIOLIN: clip -> file, source, split, statement pairs, sub

MC options and VIOLIN's false statements are the world's hard negatives: a caption false of the clip by one
thing only (speed adverb, direction, colour-shape binding or predicate).  The real MSRVTT-MC is test-only;
here every split has one so the multiple-choice head can be trained.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

_SPLITS = ("train", "val", "test")
_VIOLIN_SPLIT = {"train": "train", "val": "validate", "test": "test"}


def write_task_formats(out: Path, graphs: list[dict[str, Any]], splits: list[str], seed: int, seconds: int) -> None:
    """Write the three formats for ``graphs`` (one per video, in id order) with their ``splits``."""
    (out / "msrvtt_mc").mkdir(exist_ok=True)
    (out / "kinetics").mkdir(exist_ok=True)
    (out / "violin").mkdir(exist_ok=True)
    mc: dict[str, list[list[Any]]] = {s: [] for s in _SPLITS}
    kinetics: dict[str, list[list[Any]]] = {s: [] for s in _SPLITS}
    violin: dict[str, Any] = {}
    for vid, (graph, split) in enumerate(zip(graphs, splits)):
        rng = np.random.default_rng([seed, vid, 7])  # its own stream: the clips do not change with these files
        options = [graph["captions"][0], *graph["hard_negatives"][0][:4]]
        order = rng.permutation(len(options))
        mc[split].append([f"mc{vid}", f"msr{vid}", *(options[i] for i in order), int(np.argmax(order == 0))])
        kinetics[split].append([graph["action_label"], graph["video_id"], 0, seconds, split, 0])
        # Real statements are the full-form captions (0, and 2 when a second object has one), each against one
        # hard negative of the same form; the kind of negative rotates with the clip.
        full = [j for j in (0, 2) if j < len(graph["captions"])]
        pairs = [[graph["captions"][j], graph["hard_negatives"][j][(vid + j) % len(graph["hard_negatives"][j])]]
                 for j in full]
        names = " and ".join(f"a {o['color']} {o['shape']}" for o in graph["objects"])
        violin[graph["video_id"]] = {"file": graph["video_id"], "source": graph["video_id"],
                                     "split": _VIOLIN_SPLIT[split], "statement": pairs,
                                     "sub": [[f"look, there is {names}.", 0.0, float(seconds)]]}
    for split in _SPLITS:
        with open(out / "msrvtt_mc" / f"MSR_MC_{split}.csv", "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(["key", "vid_key", "a1", "a2", "a3", "a4", "a5", "answer"])
            writer.writerows(mc[split])
        with open(out / "kinetics" / f"kinetics_{split}.csv", "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["label", "youtube_id", "time_start", "time_end", "split", "is_cc"])
            writer.writerows(kinetics[split])
    (out / "violin" / "violin_annotation.json").write_text(json.dumps(violin, separators=(",", ":")) + "\n")
