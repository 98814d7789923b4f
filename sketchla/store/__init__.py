"""The store of a run: a Zarr v3 group in a directory with the run's parameters,
its thin arrays, per-chunk completion records and a writer lock.

Layout (``layout.py`` in full)::

    <path>/zarr.json                 group; attrs["sketchla"] = {params, seed, version, created}
    <path>/<name>                    arrays made by RunStore.array (measurements, Q, ...)
    <path>/_done/<name>/<key>        one sub-group per completed chunk; attrs["files"] = its manifest
    <path>/_stages/<name>            one sub-group per stage; attrs = the stage's info (+ manifest)
    <path>/_lock                     present while a run writes the store; attrs = the owner

``<path>`` is a directory, or a URL (``s3://``, ``gs://``, ``az://``,
``file://``, any scheme fsspec knows) opened with ``storage_options``: the
same layout as objects. ``RunStore.delete(path)`` is the one way to replace a
store.

Modules, one job each:

* ``run_store.py`` -- :class:`RunStore`: opens or creates a store, refusing one
  made with other parameters (:class:`StoreMismatchError`), and is the
  interface to all below.
* ``layout.py`` -- what is where; names, record keys, the parameters as JSON.
* ``arrays.py`` -- how arrays are encoded (CRC-32C per chunk, uncompressed,
  every chunk written) and reopened with their shape checked.
* ``records.py`` -- completion records of chunks (written by workers with
  :func:`write_done_record` after the chunk's data) and stage records.
* ``manifest.py`` -- the ``{chunk file: [size, crc32]}`` manifests the records
  carry, and their check (``verify="size"`` or ``"full"``; a failing record is
  dropped and its chunk recomputed, a damaged stage in a read-only store raises
  :class:`StoreCorruptError`).
* ``lock.py`` -- the writer lock (:class:`StoreLockedError` while another live
  run holds it; stale locks of dead processes are taken over), behind a small
  interface: :class:`~sketchla.store.lock.DirectoryLock` for a directory,
* ``lease.py`` -- :class:`~sketchla.store.lease.LeaseLock` for object storage:
  a lease with an owner, a heartbeat and an expiry, taken with conditional
  writes where the store offers them.
* ``location.py`` -- where the store lives: a local directory or an fsspec URL
  with ``storage_options`` (:func:`~sketchla.store.location.resolve`);
  :class:`StoreURL`, the path string that carries the options to worker
  processes. ``objectstore.py`` -- the URL side: objects, listings, S3's
  conditional writes and stored CRC-32s, and clear errors (naming the URL)
  for a missing filesystem, an unreachable endpoint, missing credentials or
  bucket. ``outputs.py`` -- Zarr ``out=`` arrays at URLs (``tsqr``).
* ``lifetime.py`` -- temporary stores that live as long as anything read from
  them is referenced, and lazy reads that refuse missing chunks instead of
  returning fill values.
* ``atomic.py`` -- the atomic writes, renames and exclusive creates everything
  above is made of; ``errors.py`` -- the exceptions.
"""
from __future__ import annotations

# beside __all__, these stay importable from here as before the split (sketchla.measure,
# sketchla.linalg and benchmarks/sketch_io.py use them)
from .arrays import compressors as _compressors, write_every_chunk
from .errors import StoreCorruptError, StoreLockCorruptError, StoreLockedError, StoreMismatchError
from .layout import json_default
from .lifetime import keep_alive, lazy, open_temporary
from .location import StoreURL, is_url
from .manifest import VERIFY_LEVELS, check_manifest, check_verify, chunk_manifest
from .records import write_done_record
from .run_store import RunStore, open_array

__all__ = ["RunStore", "StoreMismatchError", "StoreLockedError", "StoreCorruptError", "StoreLockCorruptError",
           "StoreURL", "check_verify", "json_default", "open_array", "store_path"]


def store_path(path, storage_options: dict | None = None):
    """What ``RunStore.path`` would be for ``path``: a local path as given, a
    ``file://`` URL as its path, any other URL as a :class:`StoreURL` carrying
    ``storage_options``. Validates both (unknown or missing filesystems fail
    here, naming the URL); reaches nothing."""
    from .location import resolve

    return resolve(path, storage_options).url

