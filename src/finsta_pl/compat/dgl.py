"""The one place that imports DGL.

PyPI's newest Linux DGL (2.1.0) ships native graphbolt libraries only for torch 2.0-2.2; importing it on a
newer torch fails inside ``dgl.graphbolt``.  Its core (graphs, message passing, edge softmax, batching) does
not need graphbolt, so we register an empty stand-in module before ``import dgl``.  Everything else in
finsta-pl imports DGL through :func:`load_dgl` and falls back to the dense kernel when it returns ``None``.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import types
from functools import lru_cache
from typing import Any

_WHY_MISSING: str | None = None


def _register_graphbolt_stub() -> None:
    if "dgl.graphbolt" in sys.modules:
        return
    stub = types.ModuleType("dgl.graphbolt")
    stub.__spec__ = importlib.machinery.ModuleSpec("dgl.graphbolt", loader=None)
    stub.__doc__ = "finsta-pl stand-in: graphbolt's native library does not load on this torch."
    sys.modules["dgl.graphbolt"] = stub


@lru_cache(maxsize=1)
def load_dgl() -> Any | None:
    """Return the ``dgl`` module, or ``None`` (with :func:`why_missing` set) when it cannot be imported."""
    global _WHY_MISSING
    os.environ.setdefault("DGLBACKEND", "pytorch")
    try:
        import torch  # noqa: F401  (DGL must see torch first)

        _register_graphbolt_stub()
        import dgl  # type: ignore[import-not-found]
        import dgl.function  # noqa: F401
        import dgl.nn.functional  # noqa: F401
    except Exception as exc:  # ImportError, OSError from a native library, ...
        _WHY_MISSING = f"{type(exc).__name__}: {exc}"
        return None
    return dgl


def why_missing() -> str | None:
    """The import error of the last failed :func:`load_dgl`, for messages and skipped tests."""
    load_dgl()
    return _WHY_MISSING
