"""Deterministic Dask graph keys: a routine's name and a token of everything its result depends on.

``key_prefix("tsqr", A, out, ...)`` is ``"sketchla-tsqr-<token>"``, the token
being ``dask.base.tokenize`` of the inputs, so identical work gets identical
keys (a distributed scheduler recognises it) and different work different
ones. Tasks append their role and index (``<prefix>-leaf-3``).

What a token sees:

* NumPy arrays: their bytes (Dask hashes them); CuPy arrays: their bytes,
  copied to the host once; Dask arrays: their name (their graph's identity);
  sketchla operators, test matrices and recipes: their ``__dask_tokenize__``.
* Zarr arrays (:func:`zarr_token`): where they live (store, path), their
  metadata and — since an array can be rewritten under the same name between
  two calls — their *contents as they are now*. For a local directory store
  that is the ``(inode, size, mtime)`` of every file of the array (Zarr
  writes a chunk to a new file and renames it into place, so every write
  gives the chunk file a new inode); a stat per chunk file, about 3 µs each.
  Arrays in any other store (memory, remote) cannot be stamped that cheaply:
  their token gets a fresh random part, so their keys are never shared —
  never stale either. :func:`zarr_token` with ``contents=False`` names an
  array only by place and metadata: for outputs, whose earlier contents do
  not affect the work.
"""
from __future__ import annotations

import hashlib
import os
import uuid

import numpy as np
from dask.base import tokenize

from .backend import asnumpy, is_cupy_array

__all__ = ["key_prefix", "token", "zarr_token", "ZarrOutput", "local_root"]


def key_prefix(name: str, *inputs) -> str:
    """``"sketchla-<name>-<token(*inputs)>"``: the prefix of every key of one routine call."""
    return f"sketchla-{name}-{token(*inputs)}"


def token(*inputs) -> str:
    """``dask.base.tokenize`` of ``inputs`` with Zarr and CuPy arrays (also inside
    lists, tuples and dicts) replaced by :func:`zarr_token` / their host bytes."""
    return tokenize(*(_tokenable(x) for x in inputs))


def _tokenable(x):
    if isinstance(x, ZarrOutput):
        return zarr_token(x.array, contents=False)
    if _is_zarr(x):
        return zarr_token(x)
    if is_cupy_array(x):
        return ("cupy", asnumpy(x))
    if isinstance(x, (list, tuple)):
        return type(x).__name__, [_tokenable(v) for v in x]
    if isinstance(x, dict):
        return "dict", sorted((str(k), _tokenable(v)) for k, v in x.items())
    return x


class ZarrOutput:
    """Marks a Zarr array given to :func:`token` as an output: named by place and metadata only."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


def _is_zarr(x) -> bool:
    return type(x).__module__.split(".")[0] == "zarr" and hasattr(x, "store") and hasattr(x, "metadata")


def zarr_token(arr, contents: bool = True) -> tuple:
    """A token of the Zarr array ``arr``: its store's place, path, metadata and (``contents``)
    a stamp of its chunk files (see the module docstring)."""
    store = arr.store
    root = local_root(store)
    place = ("local", root) if root is not None else (type(store).__name__, id(store))
    meta = (tuple(arr.shape), tuple(arr.chunks), getattr(arr, "shards", None), np.dtype(arr.dtype).str,
            repr(arr.fill_value))
    ident = ("zarr", place, arr.path, meta)
    if not contents:
        return ident
    if root is None:
        return ident + (uuid.uuid4().hex,)  # contents unknown: never share the key
    return ident + (_files_stamp(os.path.join(root, *filter(None, arr.path.split("/")))),)


def local_root(store) -> str | None:
    """Directory of a Zarr ``LocalStore`` (``None`` for any other store)."""
    root = getattr(store, "root", None)
    if type(store).__name__ != "LocalStore" or root is None:
        return None
    return os.path.realpath(os.fspath(root))


def _files_stamp(directory: str) -> str:
    """Hash of ``(relative path, inode, size, mtime)`` of every file below ``directory``."""
    h = hashlib.blake2b(digest_size=16)
    stack = [directory]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
                continue
            st = e.stat(follow_symlinks=False)
            h.update(f"{os.path.relpath(e.path, directory)}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
