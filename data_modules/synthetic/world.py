"""Deterministic synthetic video-language world: the embedded default dataset of finsta-pl.

Coloured 2-D shapes on a mid-gray background move, approach each other, grow or appear, quickly or slowly.
The world is written in the *official* on-disk formats (MSR-VTT JSON, MSRVTT-QA JSON, ``video{N}.mp4``) so the
real readers and the real decoder (decord) are what a default run exercises, plus a gold scene graph per video:

    videos/video{N}.mp4                 N = 0..total-1: train first, then val, then test
    msrvtt_qa/{train,val,test}_qa.json  MSRVTT-QA lists; category_id = question template index
    msrvtt/train_val_videodatainfo.json, msrvtt/test_videodatainfo.json   MSR-VTT official schema
    msrvtt_mc/, kinetics/, violin/      MSRVTT-MC, Kinetics-400 and VIOLIN files (``task_formats.py``)
    activitynet/                        paired clips in both orders as ActivityNet Captions (``long_form.py``)
    order_qa/                           event-order questions on those pairs, MSRVTT-QA files (``long_form.py``)
    splits/compositional_*.txt          the compositional split's video lists (``compositional.py``)
    datasets/<dataset>/                 the world laid out as each real dataset ships (``dataset_layouts.py``)
    scene_graphs/video{N}.json          gold objects, boxes, events, relations, captions, text graphs
    .complete                           JSON of the config, written last (by ``ensure_world``)

Conventions others rely on: boxes are ``[x1, y1, x2, y2]`` in pixel-edge coordinates (the object covers pixels
``x1 <= x < x2``); the main event subject is object 0; text-graph object ids are the gold scene object ids.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import itertools
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from finsta_pl.data_modules.synthetic.compositional import write_compositional_split
from finsta_pl.data_modules.synthetic.dataset_layouts import tgif_gif_path, write_dataset_layouts, write_gif
from finsta_pl.data_modules.synthetic.long_form import ParagraphWriter
from finsta_pl.data_modules.synthetic.task_formats import write_task_formats
from finsta_pl.data_modules.synthetic.video_file import write_mp4

# Bump whenever the generator's output changes: it is part of the fingerprint, so stale caches are not reused.
# Version 3 added files (paragraphs, compositional lists); the clips and the version-2 files are unchanged.
# Version 4: TGIF-QA FrameQA rows carry a per-question vid_id and a per-GIF key, as the release does.
# Version 5 (issue 22, point 6): the gold text graphs of "which way" / "how" questions carry the asked dimension
# as the predicate's adverb, and order_qa/ is new (event-order questions on the paired long videos,
# ``long_form.py``); clips, pixels and every earlier question and answer are unchanged.
WORLD_VERSION = 5

COLORS: dict[str, tuple[int, int, int]] = {  # BGR, saturated and far apart so codec blur cannot confuse them
    "red": (40, 40, 220), "green": (40, 190, 40), "blue": (220, 80, 40), "yellow": (40, 220, 220)}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
BACKGROUND: tuple[int, int, int] = (128, 128, 128)
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
SPEEDS: tuple[str, ...] = ("quickly", "slowly")
ACTIONS: tuple[str, ...] = ("move", "approach", "grow", "appear")
COUNTS: tuple[str, ...] = ("one", "two", "three")
QUESTION_TEMPLATES: tuple[str, ...] = (
    "what color is the {shape}?", "what shape is the {color} object?", "which way does the {color} {shape} move?",
    "how does the {color} {shape} move?", "how many objects are there?", "what does the {color} {shape} do?")
ANSWER_SETS: tuple[tuple[str, ...], ...] = (tuple(COLORS), SHAPES, DIRECTIONS, SPEEDS, COUNTS, ACTIONS)

# Pairs of templates that some answer combinations cannot satisfy together ("how does X move" while X grows or
# appears; "one" object and "approach").  They are never asked about the same clip: excluding *templates* keeps
# every template's answers uniform, whereas rejecting answer combinations would skew them.
_INCOMPATIBLE = ({3, 5}, {4, 5})
_UNIT = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
# Pixel rates at frame_size 64 (scaled with frame_size): "quickly" is 2.5x "slowly", for moving and growing.
_SPEED_PX = {"slowly": 0.8, "quickly": 2.0}
_GROW_PX = {"slowly": 0.2, "quickly": 0.5}
_HALF_PX = {"small": 5, "large": 8}  # half side / radius at frame_size 64
_VERB = {"move": "moves", "approach": "approaches", "grow": "grows", "appear": "appears", "stay": "stays"}
_MSRVTT_SPLIT = {"train": "train", "val": "validate", "test": "test"}


@dataclass(frozen=True)
class WorldConfig:
    """Size and seed of a synthetic world; equal configs give byte-identical annotations and identical frames."""

    num_train: int = 480
    num_val: int = 120
    num_test: int = 120
    frame_size: int = 64
    num_frames: int = 16
    fps: int = 8
    seed: int = 0
    questions_per_video: int = 2

    def __post_init__(self) -> None:
        if min(self.num_train, self.num_val, self.num_test) < 0 or self.num_videos == 0:
            raise ValueError(f"WorldConfig: split sizes must be >= 0 and not all 0, got {self}")
        if self.frame_size < 32 or self.num_frames < 10 or self.fps < 1:
            raise ValueError(f"WorldConfig: need frame_size >= 32, num_frames >= 10, fps >= 1, got {self}")
        if self.questions_per_video < 1 or not _template_sets(self.questions_per_video):
            raise ValueError(f"WorldConfig: questions_per_video must be 1..5, got {self.questions_per_video}")

    @property
    def num_videos(self) -> int:
        """Total number of videos over the three splits."""
        return self.num_train + self.num_val + self.num_test

    def split_of(self, video_id: int) -> str:
        """``"train"``, ``"val"`` or ``"test"`` for a video id (train ids first, then val, then test)."""
        return "train" if video_id < self.num_train else "val" if video_id < self.num_train + self.num_val else "test"

    def fingerprint(self) -> str:
        """Short sha1 of the fields and the generator version; names and validates the cache folder."""
        payload = json.dumps({"world_version": WORLD_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:12]


def default_cache_dir() -> Path:
    """``$FINSTA_PL_DATA/synthetic``, or ``~/.cache/finsta_pl/synthetic`` when the variable is unset."""
    base = os.environ.get("FINSTA_PL_DATA") or Path.home() / ".cache" / "finsta_pl"
    return Path(base).expanduser() / "synthetic"


def _template_sets(q: int) -> list[tuple[int, ...]]:
    return [c for c in itertools.combinations(range(len(QUESTION_TEMPLATES)), q)
            if not any(pair <= set(c) for pair in _INCOMPATIBLE)]


def _pick(rng: np.random.Generator, options: Any) -> Any:
    return options[int(rng.integers(len(options)))]


def _plan(rng: np.random.Generator, cfg: WorldConfig) -> dict[str, Any]:
    """Draw the questions first (template set, then each answer uniformly), then a story that makes them true.

    Drawing answers before the clip is what makes every template's answers uniform and independent of the
    words of its question, so question text alone can do no better than the per-template prior.
    """
    answers = {t: _pick(rng, ANSWER_SETS[t]) for t in _pick(rng, _template_sets(cfg.questions_per_video))}
    count = COUNTS.index(answers[4]) + 1 if 4 in answers else None
    if 5 in answers:
        action = answers[5]
    elif 2 in answers:
        action = "move"
    else:
        options = [a for a in (ACTIONS[:2] if 3 in answers else ACTIONS) if not (a == "approach" and count == 1)]
        action = _pick(rng, options)
    # "which way does X move" about a clip whose main event is not a move is asked about a slow side mover.
    side_mover = 2 in answers and action != "move"
    n = count or int(rng.integers(1 + (action == "approach") + side_mover, 4))
    return {"answers": answers, "n": n, "action": action, "side_mover": side_mover,
            "direction": answers.get(2) or _pick(rng, DIRECTIONS), "speed": answers.get(3) or _pick(rng, SPEEDS)}


def _attributes(rng: np.random.Generator, plan: dict[str, Any]) -> tuple[list[int], list[int], list[bool], dict]:
    """Colours (distinct), shapes and sizes, adjusted so that the "what colour / what shape" answers hold."""
    n, answers = plan["n"], plan["answers"]
    colors = [int(c) for c in rng.permutation(len(COLORS))[:n]]
    shapes = [int(s) for s in rng.integers(len(SHAPES), size=n)]
    large = [bool(b) for b in rng.integers(2, size=n)]
    if plan["action"] == "grow":
        large[0] = False  # it grows from small, so "large" stays a static, truthful attribute
    subjects = {2: (2 if plan["action"] == "approach" else 1) if plan["side_mover"] else 0, 3: 0, 5: 0}
    if 1 in answers:
        subjects[1] = int(rng.integers(n))
        shapes[subjects[1]] = SHAPES.index(answers[1])
    if 0 in answers:  # "what color is the {shape}?" needs that shape to be unique in the clip
        k = subjects[0] = int(rng.integers(n))
        if 1 in answers and k != subjects[1] and shapes[k] == shapes[subjects[1]]:
            shapes[k] = _pick(rng, [s for s in range(len(SHAPES)) if s != shapes[k]])
        for j in range(n):
            if j != k and shapes[j] == shapes[k]:
                shapes[j] = _pick(rng, [s for s in range(len(SHAPES)) if s != shapes[k]])
        c = list(COLORS).index(answers[0])
        if c in colors:
            colors[colors.index(c)] = colors[k]
        colors[k] = c
    return colors, shapes, large, subjects


def _events(rng: np.random.Generator, plan: dict[str, Any]) -> list[dict[str, Any]]:
    """One main event for object 0; the others stay still or move slowly in an unrelated direction."""
    action, direction = plan["action"], plan["direction"]
    unused = {"move": ("object",), "approach": ("direction",), "grow": ("object", "direction"),
              "appear": ("object", "direction", "speed")}[action]  # appear has no speed, only approach an object
    main = {"subject": 0, "predicate": action, "object": 1, "direction": direction, "speed": plan["speed"]}
    events = [{key: value for key, value in main.items() if key not in unused}]
    side = (2 if action == "approach" else 1) if plan["side_mover"] else None
    perpendicular = ("up", "down") if direction in ("left", "right") else ("left", "right")
    for k in range(1, plan["n"]):
        if k == side:
            events.append({"subject": k, "predicate": "move", "direction": direction, "speed": "slowly"})
        elif (action == "approach" and k == 1) or rng.random() >= 0.3:  # an approached object holds still
            events.append({"subject": k, "predicate": "stay"})
        else:
            events.append({"subject": k, "predicate": "move", "speed": "slowly",
                           "direction": _pick(rng, perpendicular if action == "move" else DIRECTIONS)})
    return events


def _track(rng: np.random.Generator, cfg: WorldConfig, ev: dict[str, Any], half0: int,
           target: dict[str, np.ndarray] | None) -> dict[str, Any] | None:
    """Integer centre/half-size per frame for one event; None if the draw leaves the frame (caller redraws)."""
    size, frames, scale = cfg.frame_size, cfg.num_frames, cfg.frame_size / 64
    pred, speed = ev["predicate"], ev.get("speed", "slowly")
    v, g, vel, steps = _SPEED_PX[speed] * scale, 0.0, np.zeros(2), 0
    if pred == "move":  # long clips move during a window only, so the object never runs out of the frame
        vel, steps = np.array(_UNIT[ev["direction"]]) * v, min(frames - 1, int((size - 2 * half0 - 4) // v))
    elif pred == "grow":
        g = _GROW_PX[speed] * scale
        steps = min(frames - 1, int((0.2 * size - half0) // g))
    elif pred == "approach":
        steps = min(frames - 1, int(0.5 * size // v))
    start = int(rng.integers(0, frames - steps))
    m = np.clip(np.arange(frames) - start, 0, steps)
    half = np.rint(half0 + g * m).astype(int)
    if pred == "approach":  # start on a random bearing so that the subject ends 0.2*size from the target
        theta = rng.uniform(0, 2 * math.pi)
        unit = np.array([math.cos(theta), math.sin(theta)])
        x0, y0 = np.array([target["cx"][0], target["cy"][0]]) - unit * (v * steps + 0.2 * size)
        vel = unit * v
    else:
        lo = [int(half.max()) + math.ceil(max(0.0, -d * steps)) for d in vel]
        hi = [size - 1 - int(half.max()) - math.ceil(max(0.0, d * steps)) for d in vel]
        if hi[0] < lo[0] or hi[1] < lo[1]:
            return None
        x0, y0 = (int(rng.integers(a, b + 1)) for a, b in zip(lo, hi))
    cx, cy = np.rint(x0 + vel[0] * m).astype(int), np.rint(y0 + vel[1] * m).astype(int)
    if (np.minimum(cx, cy) - half).min() < 0 or (np.maximum(cx, cy) + half).max() > size - 1:
        return None
    visible = np.ones(frames, bool)
    span = (start, start + steps) if steps else (0, frames - 1)
    if pred == "appear":  # invisible for the first 4-8 frames; the event is the frame it shows up
        first = int(rng.integers(4, min(8, frames - 2) + 1))
        visible[:first], span = False, (first, first)
    return {"cx": cx, "cy": cy, "half": half, "visible": visible, "span": span}


def _boxes(tr: dict[str, Any], pad: int = 0) -> np.ndarray:
    cx, cy, h = tr["cx"], tr["cy"], tr["half"]
    return np.stack([cx - h - pad, cy - h - pad, cx + h + 1 + pad, cy + h + 1 + pad], 1)


def _max_iou(a: np.ndarray, b: np.ndarray) -> float:
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return float((w * h / (area(a) + area(b) - w * h)).max())


def _place(rng: np.random.Generator, cfg: WorldConfig, events: list[dict], large: list[bool]) -> list[dict]:
    """Rejection-sample tracks so objects stay inside and apart (approach pairs excepted)."""
    scale, tracks = cfg.frame_size / 64, {}
    approach = events[0]["predicate"] == "approach"
    exempt = {0, 1} if approach else set()
    # An approach target is redrawn with its subject: a target in the middle may leave no room for the run-up.
    groups = [[1, 0]] + [[k] for k in range(2, len(events))] if approach else [[k] for k in range(len(events))]
    for group in groups:
        for attempt in range(1000):
            new: dict[int, dict] = {}
            for k in group:
                half0 = max(2, round(_HALF_PX["large" if large[k] else "small"] * scale))
                new[k] = _track(rng, cfg, events[k], half0, new.get(1) if approach and k == 0 else None)
                if new[k] is None:
                    break
            if None in new.values():
                continue
            # Prefer a 2 px gap (clean for detectors and codec blur); settle for IoU < 0.3 if space is tight.
            strict = attempt < 200
            if all((_max_iou(_boxes(tr, 2), _boxes(o, 2)) == 0) if strict else _max_iou(_boxes(tr), _boxes(o)) < 0.3
                   for k, tr in new.items() for j, o in tracks.items() if not {j, k} <= exempt):
                tracks.update(new)
                break
        else:
            raise RuntimeError(f"synthetic world: cannot place objects {group} of {events}")
    return [tracks[k] for k in range(len(events))]


def _relation(a: tuple[int, int], b: tuple[int, int], size: int) -> str:
    dx, dy = a[0] - b[0], a[1] - b[1]
    if math.hypot(dx, dy) < 0.25 * size:
        return "near"
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def _mention(obj: dict[str, Any], with_size: bool) -> tuple[str, dict[str, Any]]:
    """Noun phrase for an object and its text-graph node (id = gold scene object id)."""
    attrs = [obj["color"]] + ([obj["size"]] if with_size else [])
    words = ([obj["size"]] if with_size else []) + [obj["color"], obj["shape"]]
    return "a " + " ".join(words), {"id": obj["id"], "name": obj["shape"], "attributes": attrs}


def _caption(ev: dict[str, Any], objects: list[dict], tracks: list[dict], full: bool, size: int) -> dict:
    """Caption of one event with its text graph; ``full`` adds the size and every adverb."""
    pred, k = ev["predicate"], ev["subject"]
    phrase, node = _mention(objects[k], full)
    nodes, rel, words = [node], {"subject": k, "predicate": pred}, [phrase, _VERB[pred]]
    if pred == "approach":
        other, node2 = _mention(objects[ev["object"]], False)
        nodes, rel["object"], words = nodes + [node2], ev["object"], words + [other]
    if pred == "move":
        adverbs = [ev["direction"], ev["speed"]] if full else [ev["direction"]]
    elif pred == "appear":
        adverbs = ["left" if tracks[k]["cx"][-1] < size / 2 else "right"] if full else []
    elif pred == "stay":
        adverbs = ["still"]
    else:
        adverbs = [ev["speed"]] if full else []
    words += [f"on the {a}" if pred == "appear" else a for a in adverbs]
    return {"text": " ".join(words), "objects": nodes, "relations": [{**rel, "adverbs": adverbs}]}


_OTHER_ACTION = {"move": "grow", "grow": "move", "appear": "grow", "approach": "move", "stay": "move"}


def _hard_negatives(ev: dict[str, Any], objects: list[dict], tracks: list[dict], size: int) -> list[str]:
    """Captions of ``ev`` (full form) that are false of the clip by exactly one thing, in this order: the speed
    adverb, the direction, the colour-shape binding (colour, then shape, taken from another object of the clip
    when there is one), the predicate.  Distinct and different from the true caption; at least four."""
    true = _caption(ev, objects, tracks, True, size)["text"]
    k = ev["subject"]
    subject = objects[k]
    variants: list[tuple[dict, list[dict]]] = []
    if "speed" in ev:
        variants.append(({**ev, "speed": "slowly" if ev["speed"] == "quickly" else "quickly"}, objects))
    if "direction" in ev:
        opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}[ev["direction"]]
        variants.append(({**ev, "direction": opposite}, objects))
    others = [o for o in objects if o["id"] != k]
    for key, values in (("color", list(COLORS)), ("shape", list(SHAPES))):
        # A value another object has makes a binding swap ("the red one is the square, not the circle").
        borrowed = [o[key] for o in others if o[key] != subject[key]]
        for value in borrowed[:1] + [v for v in values if v != subject[key] and v not in borrowed]:
            changed = [dict(o) for o in objects]
            changed[k] = {**subject, key: value}
            variants.append((ev, changed))
    other = _OTHER_ACTION[ev["predicate"]]
    swapped = {"subject": k, "predicate": other, "direction": ev.get("direction", "left"),
               "speed": ev.get("speed", "slowly")}
    if other == "move" and ev["predicate"] == "approach":
        swapped["direction"] = "up"
    variants.insert(min(3, len(variants)), ({key: v for key, v in swapped.items() if key != "object"}, objects))
    out: list[str] = []
    for event, objs in variants:
        text = _caption(event, objs, tracks, True, size)["text"]
        if text != true and text not in out:
            out.append(text)
    return out


def _action_label(ev: dict[str, Any]) -> str:
    """Kinetics-style class name of a clip's main event: ``move left``, ``approach``, ``grow``, ``appear``."""
    return f"move {ev['direction']}" if ev["predicate"] == "move" else ev["predicate"]


def _question(template: int, answer: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A question, its answer and its text graph (only what the question mentions)."""
    pattern = QUESTION_TEMPLATES[template]
    nodes = [{"id": obj["id"], "name": obj["shape"] if "{shape}" in pattern else "object",
              "attributes": [obj["color"]] if "{color}" in pattern else []}] if "{" in pattern else []
    # The asked dimension is the predicate's adverb, as the TSG keeps it: "which way" (direction), "how" (speed).
    asked = {2: ["which way"], 3: ["how"]}
    rels = [{"subject": obj["id"], "predicate": "move", "adverbs": asked[template]}] if template in asked else []
    return {"question": pattern.format(color=obj["color"], shape=obj["shape"]), "answer": answer,
            "category_id": template, "text_graph": {"objects": nodes, "relations": rels}}


def _draw(frame: np.ndarray, obj: dict[str, Any], cx: int, cy: int, h: int) -> None:
    """Filled shape spanning pixels [c - h, c + h]; LINE_8 (no anti-aliasing) keeps frames integer-exact."""
    color = COLORS[obj["color"]]
    if obj["shape"] == "circle":
        cv2.circle(frame, (cx, cy), h, color, -1, cv2.LINE_8)
    elif obj["shape"] == "square":
        cv2.rectangle(frame, (cx - h, cy - h), (cx + h, cy + h), color, -1, cv2.LINE_8)
    else:  # upright: apex on top
        cv2.fillPoly(frame, [np.array([[cx, cy - h], [cx - h, cy + h], [cx + h, cy + h]], np.int32)], color, cv2.LINE_8)


def _make_clip(rng: np.random.Generator, cfg: WorldConfig, video_id: int) -> tuple[dict[str, Any], np.ndarray]:
    """Gold scene graph and BGR frames [T, S, S, 3] of one video, all drawn from ``rng``."""
    plan = _plan(rng, cfg)
    colors, shapes, large, subjects = _attributes(rng, plan)
    events = _events(rng, plan)
    tracks = _place(rng, cfg, events, large)
    size, frames_n = cfg.frame_size, cfg.num_frames
    objects = [{"id": k, "shape": SHAPES[shapes[k]], "color": list(COLORS)[colors[k]],
                "size": "large" if large[k] else "small"} for k in range(plan["n"])]
    for ev, tr in zip(events, tracks):
        ev["start"], ev["end"] = int(tr["span"][0]), int(tr["span"][1])
    frames = np.empty((frames_n, size, size, 3), np.uint8)
    frames[:] = BACKGROUND
    boxes = [_boxes(tr).tolist() for tr in tracks]
    frame_recs, relations = [], []
    for t in range(frames_n):
        visible = [k for k, tr in enumerate(tracks) if tr["visible"][t]]
        for k in visible:
            _draw(frames[t], objects[k], *(int(tracks[k][key][t]) for key in ("cx", "cy", "half")))
        frame_recs.append({"t": t, "boxes": [{"object": k, "box": boxes[k][t]} for k in visible]})
        centre = {k: (int(tracks[k]["cx"][t]), int(tracks[k]["cy"][t])) for k in visible}
        relations += [{"t": t, "subject": i, "predicate": _relation(centre[i], centre[j], size), "object": j}
                      for i in visible for j in visible if i != j]
    captions = [_caption(events[0], objects, tracks, True, size), _caption(events[0], objects, tracks, False, size)]
    if plan["n"] > 1:
        captions.append(_caption(events[1], objects, tracks, True, size))
    questions = [_question(t, a, objects[subjects.get(t, 0)]) for t, a in sorted(plan["answers"].items())]
    # Hard negatives per caption (the event a caption describes, in full form): MC options, VIOLIN statements.
    described = [events[0], events[0]] + ([events[1]] if plan["n"] > 1 else [])
    negatives = [_hard_negatives(ev, objects, tracks, size) for ev in described]
    graph = {"video_id": f"video{video_id}", "num_frames": frames_n, "frame_size": [size, size], "fps": cfg.fps,
             "objects": objects, "frames": frame_recs, "events": events, "relations": relations,
             "captions": [c["text"] for c in captions],
             "hard_negatives": negatives, "action_label": _action_label(events[0]),
             "questions": [{k: q[k] for k in ("question", "answer", "category_id")} for q in questions],
             "text_graphs": captions + [{"text": q["question"], **q["text_graph"]} for q in questions]}
    return graph, frames


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, separators=(",", ":")) + "\n")


def generate_world(config: WorldConfig, out_dir: Path) -> None:
    """Write the whole world (videos, every dataset format, split lists, scene graphs) into ``out_dir``; no
    locking."""
    out = Path(out_dir)
    for sub in ("videos", "msrvtt_qa", "msrvtt", "scene_graphs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    qa: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    videos, sentences, qa_id, fp = [], [], 0, config.fingerprint()
    graphs, splits = [], []
    paragraphs = ParagraphWriter(out, config.fps, config.seed)
    # One child seed per video id, so a video does not depend on how many videos came before it.
    for vid, seed in enumerate(np.random.SeedSequence(config.seed).spawn(config.num_videos)):
        graph, frames = _make_clip(np.random.default_rng(seed), config, vid)
        write_mp4(out / "videos" / f"video{vid}.mp4", frames, config.fps)
        _write_json(out / "scene_graphs" / f"video{vid}.json", graph)
        split = config.split_of(vid)
        paragraphs.add(vid, graph, frames, split)
        write_gif(tgif_gif_path(out, vid), frames, config.fps)
        # MSR-VTT "category" (0-19 there) carries the index of the main action here.
        category = ACTIONS.index(graph["events"][0]["predicate"])
        videos.append({"id": vid, "video_id": f"video{vid}", "category": category,
                       "url": f"synthetic://{fp}/video{vid}", "start time": 0.0,
                       "end time": config.num_frames / config.fps, "split": _MSRVTT_SPLIT[split]})
        sentences += [{"sen_id": len(sentences) + i, "video_id": f"video{vid}", "caption": c}
                      for i, c in enumerate(graph["captions"])]
        qa[split] += [{"answer": q["answer"], "category_id": q["category_id"], "id": qa_id + i,
                       "question": q["question"], "video_id": vid} for i, q in enumerate(graph["questions"])]
        qa_id += len(graph["questions"])
        graphs.append(graph)
        splits.append(split)
    write_task_formats(out, graphs, splits, config.seed, max(1, round(config.num_frames / config.fps)))
    paragraphs.close()
    write_compositional_split(out, graphs, splits)
    for split, records in qa.items():
        _write_json(out / "msrvtt_qa" / f"{split}_qa.json", records)
    info = {"year": "2024", "version": f"synthetic-{WORLD_VERSION}", "description": f"finsta-pl synthetic world {fp}",
            "contributor": "finsta-pl", "data_created": "2024-01-01"}  # fixed date: output must be reproducible
    for name, keep in (("train_val", ("train", "validate")), ("test", ("test",))):
        ids = {v["video_id"] for v in videos if v["split"] in keep}
        _write_json(out / "msrvtt" / f"{name}_videodatainfo.json",
                    {"info": info, "videos": [v for v in videos if v["video_id"] in ids],
                     "sentences": [s for s in sentences if s["video_id"] in ids]})
    write_dataset_layouts(out, graphs, splits)  # last: the layouts are made from the files above


def _is_complete(folder: Path, config: WorldConfig) -> bool:
    try:
        return json.loads((folder / ".complete").read_text()).get("config") == asdict(config)
    except (OSError, ValueError, AttributeError):
        return False


def ensure_world(config: WorldConfig, root: Path | None = None) -> Path:
    """Return ``root/<fingerprint>``, generating it on first use; idempotent and safe across processes.

    Concurrent callers (DDP ranks, pytest-xdist workers) serialise on an ``flock`` of ``root/.<fp>.lock``; the
    winner generates into a temporary folder beside the target and renames it into place, with the ``.complete``
    marker already inside, so readers never see a half-written world.  A folder without a valid marker (a
    crashed run) is regenerated.
    """
    root = Path(root) if root is not None else default_cache_dir()
    fp = config.fingerprint()
    target = root / fp
    if _is_complete(target, config):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{fp}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if _is_complete(target, config):  # another process finished while we waited
            return target
        for stale in root.glob(f".{fp}.tmp-*"):  # leftovers of crashed runs; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{fp}.tmp-", dir=root))
        try:
            generate_world(config, tmp)
            (tmp / ".complete").write_text(json.dumps({"fingerprint": fp, "config": asdict(config)}, sort_keys=True))
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def main(argv: list[str] | None = None) -> None:
    """``python -m finsta_pl.data_modules.synthetic.world [--out DIR] [--num-train N ...]``."""
    parser = argparse.ArgumentParser(description="Generate the finsta-pl synthetic video-language world.")
    parser.add_argument("--out", type=Path, help="write the world into DIR (default: the cache, via ensure_world)")
    for f in fields(WorldConfig):
        parser.add_argument("--" + f.name.replace("_", "-"), type=int, default=f.default)
    args = parser.parse_args(argv)
    config = WorldConfig(**{f.name: getattr(args, f.name) for f in fields(WorldConfig)})
    start = time.perf_counter()
    if args.out is not None:
        generate_world(config, args.out)
    path = args.out if args.out is not None else ensure_world(config)
    print(f"synthetic world {config.fingerprint()} ({config.num_videos} videos) at {path} "
          f"in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
