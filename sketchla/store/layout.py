"""What is stored where in a run's directory, and how the run's parameters are kept.

A run store is a Zarr v3 group at a directory ``path``::

    <path>/zarr.json                 group; attrs["sketchla"] = {params, seed, version, created}
    <path>/<name>                    arrays made by RunStore.array (measurements, Q, ...)  -> arrays.py
    <path>/_done/<name>/<key>        one sub-group per completed chunk; attrs["files"] = its manifest
    <path>/_stages/<name>            one sub-group per finished stage; attrs = its info (+ manifest)
                                                                                           -> records.py
    <path>/_lock                     present while a run writes the store; attrs = the owner  -> lock.py

Names of arrays and stages never start with ``_`` (:func:`check_name`), so
they cannot collide with the bookkeeping entries. The parameters are stored as
JSON (:func:`jsonable`); opening a store with other parameters is refused with
the message of :func:`mismatch_message`, whose hint names the one way to
replace a store (:func:`replace_hint`: ``RunStore.delete``).
"""
from __future__ import annotations

import json

import numpy as np

__all__ = ["ATTR", "DONE", "STAGES", "LOCK", "check_name", "check_key", "json_default", "jsonable",
           "mismatch_message", "replace_hint"]

#: root attribute holding {params, seed, version, created}
ATTR = "sketchla"
#: folder of the per-chunk completion records
DONE = "_done"
#: folder of the stage records
STAGES = "_stages"
#: the writer lock's folder
LOCK = "_lock"


def check_name(name) -> str:
    """``name`` if it is a valid array or stage name (else ``ValueError``)."""
    if not isinstance(name, str) or not name or name.startswith("_") or "/" in name or name in (".", ".."):
        raise ValueError(f"name={name!r} must be a non-empty string without '/' that does not start with '_'")
    return name


def check_key(key, argname="key") -> str:
    """``str(key)`` if it is a valid record key (a chunk index, usually; else ``ValueError``)."""
    s = str(key)
    if not s or "/" in s or s.startswith("__") or s in (".", ".."):
        raise ValueError(f"{argname}={key!r} is not a valid record key")
    return s


def json_default(o):
    """``default=`` hook of :func:`json.dumps` for NumPy integers, floats, arrays and dtypes."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.dtype):
        return o.name
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def jsonable(params, argname="params"):
    """``params`` as they read back from JSON (tuples as lists, NumPy scalars as numbers)."""
    try:
        return json.loads(json.dumps(params, sort_keys=True, default=json_default))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argname} must be JSON-serialisable: {exc}") from exc


def replace_hint(store) -> str:
    """How to replace the store at ``store``: the one documented way (``RunStore.delete``)."""
    opts = ", storage_options=<the same>" if getattr(store, "storage_options", None) else ""
    return (f"use another path, or delete this store with sketchla.store.RunStore.delete({str(store)!r}{opts}) "
            "and run again")


def mismatch_message(path, stored: dict, requested: dict, store=None) -> str:
    """Why a store (or an array's attributes) at ``path`` cannot be reused: the
    differing keys, and how to replace the store (``store``: its root, default ``path``)."""
    if not isinstance(stored, dict):
        stored = {"<stored value>": stored}
    keys = sorted(set(stored) | set(requested))
    diffs = [k for k in keys if stored.get(k, "<missing>") != requested.get(k, "<missing>")]
    lines = [f"  {k}: stored={stored.get(k, '<missing>')!r} requested={requested.get(k, '<missing>')!r}"
             for k in diffs]
    return (f"store {path!r} was made with other parameters (differing keys: {', '.join(diffs)}):\n"
            + "\n".join(lines) + "\n" + replace_hint(path if store is None else store))
