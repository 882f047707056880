"""How an input error ends a ``finsta-pl`` run: one line on stderr naming what is wrong, exit status 2."""

from __future__ import annotations

import sys

from finsta_pl.errors import FinstaError


def finsta_error(exc: BaseException | None) -> FinstaError | None:
    """The :class:`FinstaError` behind ``exc``: jsonargparse wraps errors raised while instantiating classes
    in a ``ValueError``, DataLoader workers re-raise them with their own class."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, FinstaError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def exit_on_input_error(exc: BaseException) -> None:
    """End with ``finsta-pl: error: <message>`` and exit status 2 when a :class:`FinstaError` is behind ``exc``;
    return (for the caller to re-raise) when it is a bug rather than bad input."""
    error = finsta_error(exc)
    if error is None:
        return
    message = str(error).strip()
    if "Traceback" in message:  # a DataLoader worker's re-raise prefixes the worker's traceback
        message = message.splitlines()[-1]
    print(f"finsta-pl: error: {message}", file=sys.stderr)
    raise SystemExit(2) from None
