"""Whether ``torch.compile`` is tracing the code that asks: ``torch.compiler.is_compiling`` (torch >= 2.3) or,
on the older torch that setup.cfg still admits, ``torch._dynamo.is_compiling``."""

from __future__ import annotations

import torch

__all__ = ["is_compiling"]

try:
    is_compiling = torch.compiler.is_compiling
except AttributeError:  # torch 2.2
    from torch._dynamo import is_compiling  # type: ignore[no-redef]
