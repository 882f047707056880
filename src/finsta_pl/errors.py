"""Errors that mean "the input is wrong", reported as one line by the CLI instead of a traceback."""

from __future__ import annotations


class FinstaError(Exception):
    """Base of the user-facing errors: the message names what is wrong and where."""


class BadSampleError(FinstaError):
    """A sample that cannot be used (missing, corrupt or empty video, malformed annotation); names the file."""


class DataNotFoundError(FinstaError, FileNotFoundError):
    """A dataset folder or file is missing; the message says where it should be."""


class UnsafePathError(BadSampleError):
    """A path taken from an annotation that would leave its data root (``..``, absolute); names where it came from."""
