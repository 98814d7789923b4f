"""What a run hands out stays valid while it is referenced, and never reads as fill values.

**Temporary stores.** A run without a store path (``seigh(..., store=None)``)
gets a fresh directory (:func:`open_temporary`) that is removed when the last
object referring to it is gone — or at interpreter exit. Those objects are
the :class:`~sketchla.store.RunStore` and everything read from it that a result
hands out: its Zarr arrays (:func:`keep_alive` ties the directory to them) and
the lazy Dask arrays over them (:func:`lazy`: the graph holds the array). So
``V = sk.seigh(A, 10, 21).eigenvectors`` stays valid after the result is
dropped, and the directory goes with ``V``. Copies pickled to other processes
(Dask workers) do not own the directory: the process that made it does.

**Checked reads.** Zarr returns the fill value (zeros) for a chunk whose file
is missing. An array read through :func:`lazy` looks first: every chunk a read
touches must exist (a ``stat`` per chunk file of a local store, the store's
``exists`` otherwise; microseconds against the chunk's decode), else
:class:`~sketchla.store.StoreCorruptError` names the store, the array and the
chunk — e.g. for a store that was deleted while an array over it was in use.
The run store writes every chunk, also one equal to the fill value, so a
missing chunk file is always damage.
"""
from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import weakref

import numpy as np

from ..graph_keys import local_root, token
from .errors import StoreCorruptError

__all__ = ["open_temporary", "keep_alive", "lazy", "CheckedReads"]

#: attribute holding a temporary store's :class:`_Lifetime` on the objects that keep it
_ATTR = "_sketchla_lifetime"


class _Lifetime:
    """Owns a temporary directory: removed when this object is garbage collected (or at exit)."""

    def __init__(self, path: str | None):
        self.path = path
        if path is not None:
            self._finalizer = weakref.finalize(self, shutil.rmtree, path, ignore_errors=True)

    def __reduce__(self):  # a pickled copy (a Dask worker's) owns nothing
        return (_Lifetime, (None,))


def open_temporary(params: dict):
    """A new :class:`~sketchla.store.RunStore` with ``params`` in a fresh temporary directory,
    removed when nothing refers to the store or to what :func:`keep_alive`/:func:`lazy` handed out."""
    from .run_store import RunStore

    life = _Lifetime(tempfile.mkdtemp(prefix="sketchla-run-"))
    try:
        run = RunStore.open(os.path.join(life.path, "run.zarr"), params)
    except BaseException:
        life._finalizer()
        raise
    setattr(run, _ATTR, life)
    return run


def keep_alive(run, arr):
    """``arr`` (a Zarr array of the store ``run``), holding ``run``'s temporary directory, if any."""
    life = getattr(run, _ATTR, None)
    if life is not None:
        setattr(arr, _ATTR, life)
    return arr


class CheckedReads:
    """A read-only array-like over a Zarr array whose reads refuse missing chunks
    (:class:`~sketchla.store.StoreCorruptError`) instead of returning fill values."""

    def __init__(self, arr):
        self.array = arr
        self.shape = tuple(int(s) for s in arr.shape)
        self.dtype = np.dtype(arr.dtype)
        self.ndim = len(self.shape)
        root = local_root(arr.store)  # resolved once: a realpath per chunk would cost more than the stat
        self._dir = None if root is None else os.path.join(root, *filter(None, arr.path.split("/")))

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > self.ndim:
            raise IndexError(f"too many indices for a {self.ndim}-D array: {key!r}")
        key = key + (slice(None),) * (self.ndim - len(key))
        ranges = []
        for dim, (k, size, step) in enumerate(zip(key, self.shape, self._grid())):
            if not isinstance(k, slice):
                raise TypeError(f"CheckedReads takes slices, got {k!r} for axis {dim}")
            start, stop, _ = k.indices(size)
            if stop <= start:
                return self.array[key]
            ranges.append(range(start // step, (stop - 1) // step + 1))
        missing = [idx for idx in itertools.product(*ranges) if not self._chunk_exists(idx)]
        if missing:
            raise StoreCorruptError(self._missing_message(missing))
        return self.array[key]

    def _grid(self):
        return tuple(int(c) for c in (self.array.shards or self.array.chunks))

    def _chunk_exists(self, idx) -> bool:
        arr = self.array
        key = arr.metadata.encode_chunk_key(idx)
        if self._dir is not None:
            return os.path.exists(os.path.join(self._dir, *key.split("/")))
        from zarr.core.sync import sync

        return bool(sync(arr.store.exists(f"{arr.path}/{key}" if arr.path else key)))

    def _missing_message(self, missing) -> str:
        arr = self.array
        root = local_root(arr.store)
        where = root if root is not None else repr(arr.store)
        if root is not None and not os.path.exists(root):
            return (f"the run store {where!r} holding array {arr.path!r} no longer exists (it was deleted "
                    "while an array read from it was still in use); its values are not read as zeros")
        shown = ", ".join(str(i) for i in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        return (f"chunk(s) {shown} of array {arr.path!r} in the run store {where!r} are missing (the store "
                "was damaged or partly deleted); their values are not read as zeros")


def lazy(arr):
    """A lazy ``dask.array.Array`` over the Zarr array ``arr`` (one block per Zarr chunk) whose reads
    are checked (:class:`CheckedReads`) and whose graph keeps ``arr`` — and with it a temporary
    store's directory (:func:`keep_alive`) — alive."""
    import dask.array as da

    view = CheckedReads(arr)
    return da.from_array(view, chunks=tuple(arr.chunks), name=f"sketchla-stored-{token(arr)}",
                         meta=np.empty((0,) * view.ndim, dtype=view.dtype), asarray=False, inline_array=True)
