"""The errors a run store raises (all importable from :mod:`sketchla.store`)."""
from __future__ import annotations

__all__ = ["StoreMismatchError", "StoreLockedError", "StoreCorruptError"]


class StoreMismatchError(ValueError):
    """An existing store was made with other parameters (or another layout)."""


class StoreLockedError(RuntimeError):
    """Another live run holds the store's lock (two writers at once are refused)."""


class StoreCorruptError(RuntimeError):
    """Files of a completed chunk or stage no longer match their recorded manifest."""
