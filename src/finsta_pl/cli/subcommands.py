"""``finsta-pl <tool> ...``: the subcommands that are not Lightning runs, each a module with ``main(argv) -> int``."""

from __future__ import annotations

import importlib
from typing import Sequence

#: subcommand -> module path of its ``main(argv) -> int``.  A new tool is one line here.
TOOLS: dict[str, str] = {
    "sg-eval": "finsta_pl.tools.sg_eval",
    "sg": "finsta_pl.tools.sg_show",
    "profile": "finsta_pl.tools.profile",
    "tiny-clip": "finsta_pl.tools.tiny_clip",
    "data": "finsta_pl.tools.data_check",
    "detect": "finsta_pl.tools.detect",
    "reproduce": "finsta_pl.tools.reproduce",
}


def run_tool(name: str, argv: Sequence[str]) -> int:
    """Run the tool ``name`` (a key of :data:`TOOLS`) on ``argv``; its exit status.  Imported on use, so a tool
    pays only for its own imports."""
    return importlib.import_module(TOOLS[name]).main(list(argv))
