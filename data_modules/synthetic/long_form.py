"""Long-form videos of the embedded world, written as ActivityNet Captions (DATASETS.md §7):

    activitynet/videos/v_pair{A}_{B}.mp4     clip A's frames, then clip B's (twice the length)
    activitynet/{train,val_1,val_2}.json    {"v_pair{A}_{B}": {duration, timestamps, sentences}}
    activitynet/{train,val,test}_ids.json   the keys of each split, as lists

Consecutive clips of a split are paired, and each pair is written in *both* orders with its two sentences
(each clip's full caption) in the matching order: ``v_pair3_4`` and ``v_pair4_3`` show the same events and
their paragraphs use the same words, so only the order of the two events tells them apart.  Paragraph
retrieval over such a gallery is the world's event-order test.  Splits: train -> ``train.json``, val ->
``val_1.json`` (the protocol's evaluation file), test -> ``val_2.json``.  As in the real files, every sentence
after the first starts with a space.

Event-order questions on the same pairs (issue 22, point 6; docs/DESIGN-NOTES.md "Temporal content for PTC"),
MSRVTT-QA files that ``experiments/videoqa_order.yaml`` reads:

    order_qa/{train,val,test}_qa.json   {"answer", "category_id", "id", "question", "video_id": "video_pair{A}_{B}"};
                                        answers "yes" / "no"
    order_qa/videos/video_pair{A}_{B}.mp4   relative links to ``activitynet/videos/v_pair{A}_{B}.mp4``
    order_qa/text_graphs.json               the questions' gold text graphs (``finsta-pl sg-eval`` scores them)

Each pair gets one question per template of :data:`ORDER_TEMPLATES` ("does the red circle move before the
blue square grows?", "... after ..."), about the two clips' main events; whose event is the main clause's is
drawn from an RNG seeded by the world seed and the two clip ids (no other stream is touched, so the clips and
every other file stay as they were).  The same question is asked of both orders of the pair, with opposite
answers: the words and the events are the same, so only the order of the events answers it (question text
alone, or the clips' content without their order, is at chance).  A pair whose mentioned objects are not
unique by colour and shape in the long video gets no questions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from finsta_pl.data_modules.synthetic.video_file import write_mp4

ANNOTATION_FILES = {"train": "train.json", "val": "val_1.json", "test": "val_2.json"}
#: the order questions' templates; category id = 6 + index (after the world's six question templates)
ORDER_TEMPLATES: tuple[str, ...] = ("does the {main} {verb} before the {other} {verbs}?",
                                    "does the {main} {verb} after the {other} {verbs}?")
ORDER_CATEGORY_BASE = 6
_VERBS = {"move": "moves", "approach": "approaches", "grow": "grows", "appear": "appears"}
ID_FILES = {"train": "train_ids.json", "val": "val_ids.json", "test": "test_ids.json"}


def _sentence(caption: str) -> str:
    return caption[:1].upper() + caption[1:] + "."


class ParagraphWriter:
    """Collects clips in id order and writes each consecutive pair of a split in both orders."""

    def __init__(self, out: Path, fps: int, seed: int = 0) -> None:
        self.out, self.fps, self.seed = Path(out) / "activitynet", fps, seed
        (self.out / "videos").mkdir(parents=True, exist_ok=True)
        self.pending: dict[str, tuple[int, str, np.ndarray, dict[str, Any]]] = {}
        self.annotations: dict[str, dict[str, Any]] = {split: {} for split in ANNOTATION_FILES}
        self.order_qa: dict[str, list[dict[str, Any]]] = {split: [] for split in ANNOTATION_FILES}
        self.order_graphs: list[dict[str, Any]] = []
        self.order_dir = Path(out) / "order_qa"
        (self.order_dir / "videos").mkdir(parents=True, exist_ok=True)

    def add(self, video_id: int, graph: dict[str, Any], frames_bgr: np.ndarray, split: str) -> None:
        """Add one clip (its full caption is ``graph["captions"][0]``); a clip left unpaired is not written."""
        clip = (video_id, graph["captions"][0], frames_bgr, graph)
        first = self.pending.pop(split, None)
        if first is None:
            self.pending[split] = clip
            return
        questions = order_questions(first[3], clip[3], np.random.default_rng([self.seed, first[0], clip[0], 22]))
        for a, b in ((first, clip), (clip, first)):
            key = f"v_pair{a[0]}_{b[0]}"
            write_mp4(self.out / "videos" / f"{key}.mp4", np.concatenate([a[2], b[2]]), self.fps)
            seconds = len(a[2]) / self.fps
            self.annotations[split][key] = {
                "duration": round(2 * seconds, 2), "timestamps": [[0.0, seconds], [seconds, round(2 * seconds, 2)]],
                "sentences": [_sentence(a[1]), " " + _sentence(b[1])]}
            if questions:
                self._add_order_questions(key, a[0], questions, split)

    def _add_order_questions(self, key: str, first_clip: int, questions: list[dict[str, Any]], split: str) -> None:
        vid = f"video_{key[2:]}"  # "video_pair3_4": no clip id of the world's (whose gold is per clip)
        link = self.order_dir / "videos" / f"{vid}.mp4"
        os.symlink(os.path.relpath(self.out / "videos" / f"{key}.mp4", link.parent), link)
        for q in questions:
            before = (q["main_clip"] == first_clip) == (q["word"] == "before")
            qid = sum(len(v) for v in self.order_qa.values())
            self.order_qa[split].append({"answer": "yes" if before else "no", "category_id": q["category_id"],
                                         "id": qid, "question": q["text"], "video_id": vid})
            self.order_graphs.append({"video_id": vid, "pair": key, "text": q["text"], **q["text_graph"]})

    def close(self) -> None:
        """Write the annotation and id files, and the order questions."""
        for split, name in ANNOTATION_FILES.items():
            data = self.annotations[split]
            (self.out / name).write_text(json.dumps(data, separators=(",", ":")) + "\n")
            (self.out / ID_FILES[split]).write_text(json.dumps(list(data)) + "\n")
            (self.order_dir / f"{split}_qa.json").write_text(
                json.dumps(self.order_qa[split], separators=(",", ":")) + "\n")
        (self.order_dir / "text_graphs.json").write_text(json.dumps(self.order_graphs, separators=(",", ":")) + "\n")


def order_questions(a: dict[str, Any], b: dict[str, Any], rng: np.random.Generator) -> list[dict[str, Any]]:
    """The order questions of the pair of clip graphs ``a`` and ``b`` (either order), one per template: text,
    category id, the clip whose event is the main clause's (``main_clip``), the order word and the gold text
    graph; empty when a mentioned object is not unique by colour and shape over both clips."""
    clips = [(int(g["video_id"][5:]), g) for g in (a, b)]
    names = [(o["color"], o["shape"]) for _, g in clips for o in g["objects"]]
    out = []
    for t, template in enumerate(ORDER_TEMPLATES):
        m = int(rng.integers(2))
        (main_id, main), (_, other) = clips[m], clips[1 - m]
        phrases, graph = [], {"objects": [], "relations": []}
        for g in (main, other):
            ev = g["events"][0]
            mentioned = [g["objects"][ev["subject"]]] + ([g["objects"][ev["object"]]] if "object" in ev else [])
            if any(names.count((o["color"], o["shape"])) != 1 for o in mentioned):
                return []
            ids = []
            for o in mentioned:
                ids.append(len(graph["objects"]))
                graph["objects"].append({"id": ids[-1], "name": o["shape"], "attributes": [o["color"]]})
            target = f" the {mentioned[1]['color']} {mentioned[1]['shape']}" if len(mentioned) > 1 else ""
            phrases.append((f"{mentioned[0]['color']} {mentioned[0]['shape']}", ev["predicate"], target))
            graph["relations"].append({"subject": ids[0], "predicate": ev["predicate"],
                                       "object": ids[1] if len(ids) > 1 else None, "adverbs": []})
        word = "before" if t == 0 else "after"
        graph["relations"][0]["adverbs"] = [word]  # the order word is the main clause's predicate's adverb
        (mp, mv, mt), (op, ov, ot) = phrases
        text = template.format(main=mp, verb=mv + mt, other=op, verbs=_VERBS[ov] + ot)
        out.append({"text": text, "category_id": ORDER_CATEGORY_BASE + t, "main_clip": main_id, "word": word,
                    "text_graph": graph})
    return out
