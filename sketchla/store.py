"""The Zarr layout of a run: parameters, thin arrays, per-chunk completion records.

A :class:`RunStore` is a Zarr v3 group at a directory ``path`` whose
attribute ``"sketchla"`` holds the run's ``params`` (JSON), ``seed``
(``params["seed"]`` if present), the library ``version`` and the creation
time. Opening it again with different params raises
:class:`StoreMismatchError` and leaves it untouched (DESIGN.md,
"Conventions").

Layout::

    <path>/zarr.json                 group; attrs["sketchla"] = {params, seed, version, created}
    <path>/<name>                    arrays made by RunStore.array (measurements, Q, ...)
    <path>/_done/<name>/<key>        one empty sub-group per completed chunk
    <path>/_stages/<name>            one sub-group per stage; attrs = the stage's info

Completion records are one tiny object per chunk (a Zarr group whose
``zarr.json`` is written in one go), so many worker processes may finish
chunks at once with no read-modify-write of shared metadata. A record is only
ever written after the chunk's data write has returned, so a killed task
leaves no record and its chunk is recomputed on resume.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil

import numpy as np
import zarr

from .backend import check_float_dtype

__all__ = ["RunStore", "StoreMismatchError"]

logger = logging.getLogger(__name__)

_ATTR = "sketchla"
_DONE = "_done"
_STAGES = "_stages"


class StoreMismatchError(ValueError):
    """An existing store was made with other parameters (or another layout)."""


def _jsonable(params, argname="params"):
    try:
        return json.loads(json.dumps(params, sort_keys=True, default=_json_default))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argname} must be JSON-serialisable: {exc}") from exc


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.dtype):
        return o.name
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _check_key(key, argname="key") -> str:
    s = str(key)
    if not s or "/" in s or s.startswith("__") or s in (".", ".."):
        raise ValueError(f"{argname}={key!r} is not a valid record key")
    return s


def _check_writable(path: str) -> None:
    """Raise PermissionError/ValueError naming ``path`` if it cannot be created or written."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if os.path.exists(probe) and not os.path.isdir(probe):
        raise ValueError(f"store path {path!r} is not usable: {probe!r} exists and is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"store path {path!r} is not writable (no write permission on {probe!r})")


class RunStore:
    """A run's Zarr group. Create with :meth:`open`."""

    def __init__(self, path: str, group: zarr.Group, params: dict, mode: str):
        self.path = path
        self.group = group
        self.params = params
        self.mode = mode

    # -- opening --------------------------------------------------------
    @classmethod
    def open(cls, path, params: dict | None = None, *, mode: str = "a") -> "RunStore":
        """Open or create the store at directory ``path``.

        ``mode``: ``"a"`` create or reopen (params must match), ``"r+"`` reopen
        only, ``"r"`` read only, ``"w"`` delete an existing store (only a
        sketchla store) and create a new one. ``params=None`` with ``"r"``/``"r+"``
        takes the stored params without checking.
        """
        if mode not in ("a", "r", "r+", "w"):
            raise ValueError(f"mode={mode!r} must be one of 'a', 'r', 'r+', 'w'")
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a directory path, got {type(path).__name__}")
        path = os.fspath(path)
        if params is None and mode in ("a", "w"):
            raise ValueError("params is required to create a store (mode 'a' or 'w')")
        jparams = None if params is None else _jsonable(params)
        if jparams is not None and not isinstance(jparams, dict):
            raise ValueError(f"params must be a dict, got {type(params).__name__}")

        exists = os.path.exists(os.path.join(path, "zarr.json"))
        if mode in ("r", "r+") and not exists:
            raise FileNotFoundError(f"no sketchla store at {path!r}")
        if not exists and os.path.isdir(path) and os.listdir(path):
            raise StoreMismatchError(f"store path {path!r} is a non-empty directory that is not a Zarr store; refusing to use it")
        if mode != "r":
            _check_writable(path)

        if exists:
            try:
                group = zarr.open_group(path, mode="r" if mode == "r" else "r+")
            except Exception as exc:
                raise StoreMismatchError(f"{path!r} is not a Zarr v3 group: {exc}") from exc
            meta = group.attrs.get(_ATTR)
            if not isinstance(meta, dict) or "params" not in meta:
                raise StoreMismatchError(f"{path!r} is a Zarr group but not a sketchla run store; refusing to use it")
            if mode == "w":
                logger.warning("mode='w': deleting the existing store at %s", path)
                shutil.rmtree(path)
                exists = False
            elif jparams is not None and meta["params"] != jparams:
                raise StoreMismatchError(_mismatch_message(path, meta["params"], jparams))
            else:
                return cls(path, group, meta["params"], mode)

        try:
            group = zarr.open_group(path, mode="w-")
        except (PermissionError, NotADirectoryError, FileExistsError) as exc:
            raise PermissionError(f"cannot create store at {path!r}: {exc}") from exc
        group.attrs[_ATTR] = {
            "params": jparams,
            "seed": jparams.get("seed"),
            "version": _version(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        }
        logger.info("created run store %s", path)
        return cls(path, group, jparams, mode)

    def __reduce__(self):
        return (_reopen, (self.path, self.mode))

    def __repr__(self):
        return f"RunStore({self.path!r}, params={self.params!r})"

    @property
    def info(self) -> dict:
        """The stored ``{params, seed, version, created}`` attribute."""
        return dict(self.group.attrs[_ATTR])

    # -- arrays -----------------------------------------------------------
    def array(self, name: str, shape, chunks, dtype, *, attrs: dict | None = None) -> zarr.Array:
        """Create the array ``name`` or open it if it exists with the same
        ``shape``, ``chunks`` and ``dtype`` (else :class:`StoreMismatchError`).
        ``attrs`` (JSON) are stored on creation and must match on reopening."""
        name = _check_name(name)
        shape = tuple(int(s) for s in shape)
        chunks = tuple(int(c) for c in chunks)
        if len(chunks) != len(shape) or any(c < 1 for c in chunks):
            raise ValueError(f"chunks={chunks} must be positive and match shape={shape}")
        dt = np.dtype(dtype)
        jattrs = None if attrs is None else _jsonable(attrs, "attrs")
        if name in self.group:
            arr = self.group[name]
            if not isinstance(arr, zarr.Array):
                raise StoreMismatchError(f"{name!r} in {self.path!r} is a group, not an array")
            got = (tuple(arr.shape), tuple(arr.chunks), np.dtype(arr.dtype))
            if got != (shape, chunks, dt):
                raise StoreMismatchError(
                    f"array {name!r} in {self.path!r} has shape/chunks/dtype {got[0]}/{got[1]}/{got[2]}, "
                    f"requested {shape}/{chunks}/{dt}"
                )
            if jattrs is not None:
                stored = {k: arr.attrs.get(k) for k in jattrs}
                if stored != jattrs:
                    raise StoreMismatchError(_mismatch_message(f"{self.path}/{name}", stored, jattrs))
            return arr
        self._require_writable()
        arr = self.group.create_array(name, shape=shape, chunks=chunks, dtype=dt, fill_value=0)
        if jattrs:
            arr.attrs.update(jattrs)
        return arr

    def __getitem__(self, name):
        return self.group[name]

    def __contains__(self, name):
        return name in self.group

    # -- completion records -----------------------------------------------
    def _done_path(self, name):
        return f"{_DONE}/{_check_name(name)}"

    def mark_done(self, name: str, key) -> None:
        """Record that chunk ``key`` of ``name`` is complete. Call only after the
        chunk's data write has returned. Safe to call from many processes."""
        self._require_writable()
        zarr.open_group(self.path, path=f"{self._done_path(name)}/{_check_key(key)}", mode="a")

    def is_done(self, name: str, key) -> bool:
        return os.path.exists(os.path.join(self.path, _DONE, _check_name(name), _check_key(key), "zarr.json"))

    def done_keys(self, name: str) -> set[str]:
        """Keys (as strings) of the completed chunks of ``name``."""
        d = os.path.join(self.path, _DONE, _check_name(name))
        if not os.path.isdir(d):
            return set()
        return {k for k in os.listdir(d) if os.path.exists(os.path.join(d, k, "zarr.json"))}

    def clear_done(self, name: str) -> None:
        """Forget all completion records of ``name`` (its data is kept)."""
        self._require_writable()
        shutil.rmtree(os.path.join(self.path, _DONE, _check_name(name)), ignore_errors=True)

    # -- stages -------------------------------------------------------------
    def set_stage(self, name: str, info: dict | None = None) -> None:
        """Record that stage ``name`` finished, with small JSON ``info``."""
        self._require_writable()
        g = zarr.open_group(self.path, path=f"{_STAGES}/{_check_name(name)}", mode="a")
        g.attrs.put({"info": _jsonable(info if info is not None else {}, "info"),
                     "finished": _dt.datetime.now(_dt.timezone.utc).isoformat()})

    def get_stage(self, name: str):
        """The ``info`` of a finished stage, or ``None`` if it has not finished."""
        p = os.path.join(self.path, _STAGES, _check_name(name), "zarr.json")
        if not os.path.exists(p):
            return None
        g = zarr.open_group(self.path, path=f"{_STAGES}/{name}", mode="r")
        attrs = g.attrs.asdict()
        return attrs.get("info") if "finished" in attrs else None

    def _require_writable(self):
        if self.mode == "r":
            raise PermissionError(f"store {self.path!r} was opened read-only (mode='r')")


def _check_name(name) -> str:
    if not isinstance(name, str) or not name or name.startswith("_") or "/" in name or name in (".", ".."):
        raise ValueError(f"name={name!r} must be a non-empty string without '/' that does not start with '_'")
    return name


def _reopen(path, mode):
    return RunStore.open(path, None, mode="r" if mode == "r" else "r+")


def _version() -> str:
    from . import __version__

    return __version__


def _mismatch_message(path, stored: dict, requested: dict) -> str:
    keys = sorted(set(stored) | set(requested))
    diffs = [k for k in keys if stored.get(k, "<missing>") != requested.get(k, "<missing>")]
    lines = [f"  {k}: stored={stored.get(k, '<missing>')!r} requested={requested.get(k, '<missing>')!r}"
             for k in diffs]
    return (f"store {path!r} was made with other parameters (differing keys: {', '.join(diffs)}):\n"
            + "\n".join(lines) + "\nuse another path, or mode='w' to replace it")
