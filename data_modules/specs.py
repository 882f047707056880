"""The plain settings and records a DataModule passes around: clip and loader settings, and the sample specs a
task's annotation reader turns each record into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ClipConfig:
    """Frame sampling: frames per clip, square frame side after resizing, random offsets while training, and
    the keyframe method (``uniform`` or ``difference``, with ``keyframe_candidates`` x frames decoded)."""

    num_frames: int = 8
    frame_size: int = 64
    random_offsets: bool = True
    keyframes: str = "uniform"
    keyframe_candidates: int = 4


@dataclass
class LoaderConfig:
    """DataLoader settings.  Workers are not persistent so each epoch's frame sampling sees the new epoch."""

    batch_size: int = 32
    eval_batch_size: int | None = None
    num_workers: int = 2
    pin_memory: bool = False


@dataclass
class TextSpec:
    """One text of a record.  ``text`` is encoded for the host; the TSG is parsed from its first ``parse_chars``
    characters (all when ``None``), e.g. a statement without the subtitles after it."""

    text: str
    targets: dict[str, Any] = field(default_factory=dict)
    parse_chars: int | None = None


@dataclass
class SampleSpec:
    """What a task's dataset needs from one record: sample id, video key, its texts and target values, and the
    ``(start, end)`` seconds of the video it covers when it is a segment of a longer file."""

    id: str
    video: str
    texts: list[TextSpec]
    targets: dict[str, Any] = field(default_factory=dict)
    window: tuple[float, float] | None = None
    #: why the record cannot be used (a malformed annotation record): a bad sample, named by its file:position
    problem: str = ""

    @classmethod
    def single(cls, id: str, video: str, text: str, targets: dict[str, Any] | None = None,
               window: tuple[float, float] | None = None) -> "SampleSpec":
        """A record with one text (a question, a caption)."""
        return cls(id, video, [TextSpec(text)], dict(targets or {}), window)
