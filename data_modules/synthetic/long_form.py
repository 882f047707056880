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
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from finsta_pl.data_modules.synthetic.video_file import write_mp4

ANNOTATION_FILES = {"train": "train.json", "val": "val_1.json", "test": "val_2.json"}
ID_FILES = {"train": "train_ids.json", "val": "val_ids.json", "test": "test_ids.json"}


def _sentence(caption: str) -> str:
    return caption[:1].upper() + caption[1:] + "."


class ParagraphWriter:
    """Collects clips in id order and writes each consecutive pair of a split in both orders."""

    def __init__(self, out: Path, fps: int) -> None:
        self.out, self.fps = Path(out) / "activitynet", fps
        (self.out / "videos").mkdir(parents=True, exist_ok=True)
        self.pending: dict[str, tuple[int, str, np.ndarray]] = {}
        self.annotations: dict[str, dict[str, Any]] = {split: {} for split in ANNOTATION_FILES}

    def add(self, video_id: int, graph: dict[str, Any], frames_bgr: np.ndarray, split: str) -> None:
        """Add one clip (its full caption is ``graph["captions"][0]``); a clip left unpaired is not written."""
        clip = (video_id, graph["captions"][0], frames_bgr)
        first = self.pending.pop(split, None)
        if first is None:
            self.pending[split] = clip
            return
        for a, b in ((first, clip), (clip, first)):
            key = f"v_pair{a[0]}_{b[0]}"
            write_mp4(self.out / "videos" / f"{key}.mp4", np.concatenate([a[2], b[2]]), self.fps)
            seconds = len(a[2]) / self.fps
            self.annotations[split][key] = {
                "duration": round(2 * seconds, 2), "timestamps": [[0.0, seconds], [seconds, round(2 * seconds, 2)]],
                "sentences": [_sentence(a[1]), " " + _sentence(b[1])]}

    def close(self) -> None:
        """Write the annotation and id files."""
        for split, name in ANNOTATION_FILES.items():
            data = self.annotations[split]
            (self.out / name).write_text(json.dumps(data, separators=(",", ":")) + "\n")
            (self.out / ID_FILES[split]).write_text(json.dumps(list(data)) + "\n")
