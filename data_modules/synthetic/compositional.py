"""The embedded world's compositional split: attribute-object and action combinations never seen in training.

Held out: three colour-shape bindings and two (action, speed) combinations; each colour, shape, action and
speed on its own is seen in training.  A clip is *novel* when any of its objects has a held-out binding or its
main event a held-out combination.  The split lists (one video id per line, like MSR-VTT's split lists) are

    splits/compositional_train.txt   training clips that are not novel
    splits/compositional_val.txt     validation clips that are novel
    splits/compositional_test.txt    test clips that are novel

and a DataModule reads them through ``split_lists`` (any task: its records are regrouped by video).  Held-out
combinations are never *true* of a training clip; they may appear in a training clip's false options (MC,
VIOLIN), which says nothing about what the clip shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HELD_OUT_BINDINGS = frozenset({("red", "triangle"), ("blue", "circle"), ("yellow", "square")})
HELD_OUT_ACTIONS = frozenset({("grow", "quickly"), ("approach", "slowly")})
LIST_FILES = {"train": "compositional_train.txt", "val": "compositional_val.txt", "test": "compositional_test.txt"}


def is_novel(graph: dict[str, Any]) -> bool:
    """Whether a clip's gold scene graph shows a held-out binding or a held-out main action."""
    main = graph["events"][0]
    return (any((o["color"], o["shape"]) in HELD_OUT_BINDINGS for o in graph["objects"])
            or (main["predicate"], main.get("speed")) in HELD_OUT_ACTIONS)


def write_compositional_split(out: Path, graphs: list[dict[str, Any]], splits: list[str]) -> None:
    """Write the three list files under ``out/splits`` for ``graphs`` (one per video) and their ``splits``."""
    folder = Path(out) / "splits"
    folder.mkdir(exist_ok=True)
    for split, name in LIST_FILES.items():
        keep = [g["video_id"] for g, s in zip(graphs, splits) if s == split and is_novel(g) != (split == "train")]
        (folder / name).write_text("".join(f"{v}\n" for v in keep))
