"""The errors a run store raises (all importable from :mod:`sketchla.store`)."""
from __future__ import annotations

__all__ = ["StoreMismatchError", "StoreLockedError", "StoreCorruptError", "StoreLockCorruptError"]


class StoreMismatchError(ValueError):
    """An existing store was made with other parameters (or another layout)."""


class StoreLockedError(RuntimeError):
    """Another live run holds the store's lock (two writers at once are refused)."""


class StoreCorruptError(RuntimeError):
    """Files of a completed chunk or stage no longer match their recorded manifest,
    or something read from the store is not what the store writes there."""


class StoreLockCorruptError(StoreCorruptError, StoreLockedError):
    """The store's lock record exists but is unreadable or malformed: the store is
    corrupt there, and counts as locked by an unknown owner until the lock is broken
    (:meth:`RunStore.break_lock <sketchla.store.RunStore.break_lock>`)."""
