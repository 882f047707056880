"""Loading untrusted files safely: checkpoints without arbitrary unpickling, annotation paths kept in their root.

Checkpoints, exported hosts and DSG caches are read with ``torch.load(weights_only=True)``, which rebuilds
only tensors, containers and primitives, plus the globals allow-listed here: the project's config dataclasses
that ``save_hyperparameters`` stores in every task checkpoint.  Lightning's own loading
(``Trainer.fit(ckpt_path=...)``, ``load_from_checkpoint``) passes ``weights_only=None``, which torch >= 2.6
reads as ``True``, so the allow-list is what lets a resumed run load its own checkpoint.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

import torch

from finsta_pl.errors import UnsafePathError

__all__ = ["allow_in_checkpoints", "inside_root"]


def allow_in_checkpoints(*classes: type) -> None:
    """Allow-list ``classes`` (plain dataclasses of config values) for ``torch.load(weights_only=True)``.

    Only classes whose construction runs no code beyond setting fields belong here: the weights-only
    unpickler rebuilds them with ``__new__`` + ``__setstate__``/``__dict__`` updates, never ``__reduce__``.
    """
    torch.serialization.add_safe_globals(list(classes))


def inside_root(root: str | Path, value: str, source: str) -> Path:
    """``root / value`` for a relative path read from an annotation; raises :class:`UnsafePathError` naming
    ``source`` (the file and record it came from) when ``value`` is absolute, has a drive, or climbs with
    ``..``.  Checked on the text, not on the resolved path: data roots are often symlink farms whose targets
    live elsewhere, and that is the user's choice, not the annotation's."""
    text = str(value)
    posix, windows = PurePosixPath(text), PureWindowsPath(text)
    if not text or "\x00" in text:
        reason = "is empty or holds a NUL byte"
    elif posix.is_absolute() or windows.is_absolute() or windows.drive or windows.root:
        reason = "is absolute"
    elif ".." in posix.parts or ".." in windows.parts:
        reason = "climbs out of it with '..'"
    else:
        return Path(root) / posix
    raise UnsafePathError(f"{source}: path {text!r} {reason}; a path from an annotation must stay inside its "
                          f"data root {str(root)!r}")
