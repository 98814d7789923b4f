""":class:`RunStore`: one run's store, opened with its parameters checked.

The store's root ``<path>/zarr.json`` holds the attribute ``"sketchla"``:
the run's ``params`` (JSON), ``seed`` (``params["seed"]`` if present), the
library ``version`` and the creation time. Opening it again with different
params raises :class:`~sketchla.store.StoreMismatchError` and leaves it
untouched (DESIGN.md, "Conventions"). Everything else is delegated: the
arrays to ``arrays.py``, the completion and stage records to ``records.py``
(manifests: ``manifest.py``), the writer lock to ``lock.py`` (``lease.py`` on
object storage); ``layout.py`` says where each lives, ``location.py`` on which
filesystem (a local directory, or a URL with ``storage_options``).

Replacing a store: :meth:`RunStore.delete` is the one documented way (the
hints of :class:`~sketchla.store.StoreMismatchError` name it): it refuses a
store that a live run holds and anything that is not a sketchla store.

The root attribute is read as untrusted input: ``params`` of another type
than a JSON object raises :class:`~sketchla.store.StoreCorruptError` naming
the root metadata, never ``AttributeError``.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os

import numpy as np
import zarr

from . import records
from .arrays import check_array, create_array, write_every_chunk
from .errors import StoreCorruptError, StoreMismatchError
from .layout import ATTR, LOCK, check_name, jsonable, mismatch_message
from .location import resolve
from .lock import hold, writer_lock
from .manifest import check_verify

__all__ = ["RunStore"]

logger = logging.getLogger(__name__)


class RunStore:
    """A run's Zarr group. Create with :meth:`open`."""

    def __init__(self, path: str, group: zarr.Group, params: dict, mode: str, location=None):
        self.path = path
        self.group = group
        self.params = params
        self.mode = mode
        self.location = resolve(path) if location is None else location

    # -- opening --------------------------------------------------------
    @classmethod
    def open(cls, path, params: dict | None = None, *, mode: str = "a",
             storage_options: dict | None = None) -> "RunStore":
        """Open or create the store at ``path``: a directory, or a URL (``s3://``,
        ``gs://``, ``az://``, ``file://``, any scheme fsspec knows) with
        ``storage_options`` for its filesystem (endpoint, credentials, ...).

        ``mode``: ``"a"`` create or reopen (params must match), ``"r+"`` reopen
        only, ``"r"`` read only, ``"w"`` delete an existing store (only a
        sketchla store) and create a new one. ``params=None`` with ``"r"``/``"r+"``
        takes the stored params without checking.

        Raises :class:`StoreMismatchError` (other params, not a sketchla store,
        a foreign non-empty directory) before anything is written,
        :class:`StoreCorruptError` if the stored params are not a JSON object,
        and :class:`StoreLockedError` for ``mode="w"`` on a store a live run
        holds. A URL whose filesystem is not installed, an unreachable
        endpoint, missing credentials or a missing bucket raise a clear error
        naming the URL (``ImportError``, ``ConnectionError``,
        ``PermissionError``, ``FileNotFoundError``). Two processes creating the
        same new store at once get one store (the root metadata is created
        atomically and exclusively; on object storage by a conditional write).
        """
        if mode not in ("a", "r", "r+", "w"):
            raise ValueError(f"mode={mode!r} must be one of 'a', 'r', 'r+', 'w'")
        if not isinstance(path, (str, os.PathLike)) and not hasattr(path, "is_local"):
            raise TypeError(f"path must be a directory path, got {type(path).__name__}")
        loc = resolve(path, storage_options)
        path = loc.url
        if params is None and mode in ("a", "w"):
            raise ValueError("params is required to create a store (mode 'a' or 'w')")
        jparams = None if params is None else jsonable(params)
        if jparams is not None and not isinstance(jparams, dict):
            raise ValueError(f"params must be a dict, got {type(params).__name__}")

        replace = mode == "w"
        with loc.errors("opening the store"):
            for _attempt in range(100):
                if not loc.is_local:
                    loc.probe()  # reach it first: endpoint, credentials, bucket (clear errors, nothing written)
                exists = loc.exists("zarr.json")
                if mode in ("r", "r+") and not exists:
                    raise FileNotFoundError(f"no sketchla store at {path!r}")
                if not exists and loc.foreign_entries():
                    raise StoreMismatchError(f"store path {path!r} is a non-empty directory that is not a Zarr "
                                             "store; refusing to use it")
                if mode != "r":
                    loc.check_writable()

                if exists:
                    try:
                        group = zarr.open_group(loc.zarr_store(read_only=mode == "r"),
                                                mode="r" if mode == "r" else "r+", zarr_format=3)
                    except (ImportError, ConnectionError, PermissionError):
                        raise
                    except Exception as exc:
                        raise StoreMismatchError(f"{path!r} is not a Zarr v3 group: {exc}") from exc
                    meta = group.attrs.get(ATTR)
                    if not isinstance(meta, dict) or "params" not in meta:
                        if meta is not None:
                            raise StoreCorruptError(f"the sketchla attribute of {_root_meta(path)!r} is malformed "
                                                    f"({type(meta).__name__}, no 'params'); the store cannot be "
                                                    "used")
                        raise StoreMismatchError(f"{path!r} is a Zarr group but not a sketchla run store; "
                                                 "refusing to use it")
                    if not isinstance(meta["params"], dict):
                        raise StoreCorruptError(
                            f"the stored params in {_root_meta(path)!r} are a {type(meta['params']).__name__}, "
                            "not a JSON object; the store is damaged (replace it with "
                            f"sketchla.store.RunStore.delete({str(path)!r}))")
                    if replace:
                        writer_lock(loc).ensure_free("mode='w' would delete a store in use")
                        logger.warning("mode='w': deleting the existing store at %s", path)
                        loc.remove_all()
                        replace = False  # a store created meanwhile by another process is reopened, not deleted
                    elif jparams is not None and meta["params"] != jparams:
                        raise StoreMismatchError(mismatch_message(path, meta["params"], jparams))
                    else:
                        return cls(path, group, meta["params"], mode, loc)

                meta = {"params": jparams, "seed": jparams.get("seed"), "version": _version(),
                        "created": _dt.datetime.now(_dt.timezone.utc).isoformat()}
                if loc.create_group_exclusive({ATTR: meta}):
                    logger.info("created run store %s", path)
                    return cls(path, zarr.open_group(loc.zarr_store(), mode="r+", zarr_format=3), jparams, mode, loc)
                # another process created the store at the same moment: reopen it (params are compared)
        raise RuntimeError(f"could not open or create the store at {path!r} (concurrent changes)")

    @classmethod
    def delete(cls, path, *, storage_options: dict | None = None) -> None:
        """Delete the sketchla store at ``path`` (a directory or URL), to replace it.

        The one documented way to start a store afresh (the hint of
        :class:`StoreMismatchError` names it). Refuses with
        :class:`StoreLockedError` while a live run holds the store (it takes the
        lock first, so no run can start meanwhile), and with
        :class:`StoreMismatchError` if ``path`` is not a sketchla store (nothing
        else is ever deleted). A missing store is no error.
        """
        loc = resolve(path, storage_options)
        with loc.errors("deleting the store"):
            if not loc.is_local:
                loc.probe()
            if not loc.exists("zarr.json"):
                if loc.foreign_entries():
                    raise StoreMismatchError(f"{str(loc.url)!r} is not a sketchla run store; not deleting it")
                return
        store = cls.open(loc, None, mode="r+")  # refuses what is not a sketchla store
        lock = writer_lock(loc)
        with hold(lock):  # refused while a live run holds it; no run starts while this deletes
            logger.warning("deleting the run store %s", store.path)
            loc.remove_all(keep=LOCK)
        if loc.is_local:  # the folder, empty once the lock was given back (a store made meanwhile is kept)
            with contextlib.suppress(OSError):
                os.rmdir(loc.path)

    def __reduce__(self):
        return (_reopen, (self.location, self.mode))

    def __repr__(self):
        return f"RunStore({self.path!r}, params={self.params!r})"

    @property
    def info(self) -> dict:
        """The stored ``{params, seed, version, created}`` attribute."""
        return dict(self.group.attrs[ATTR])

    # -- arrays -----------------------------------------------------------
    def array(self, name: str, shape, chunks, dtype, *, attrs: dict | None = None) -> zarr.Array:
        """Create the array ``name`` or open it if it exists with the same
        ``shape``, ``chunks`` and ``dtype`` (else :class:`StoreMismatchError`).
        ``attrs`` (JSON) are stored on creation and must match on reopening."""
        name = check_name(name)
        shape = tuple(int(s) for s in shape)
        chunks = tuple(int(c) for c in chunks)
        if len(chunks) != len(shape) or any(c < 1 for c in chunks):
            raise ValueError(f"chunks={chunks} must be positive and match shape={shape}")
        dt = np.dtype(dtype)
        jattrs = None if attrs is None else jsonable(attrs, "attrs")
        if name in self.group:
            return check_array(self.group[name], self.path, name, shape, chunks, dt, jattrs)
        self._require_writable()
        return create_array(self.group, name, shape, chunks, dt, jattrs)

    def __getitem__(self, name):
        return self.group[name]

    def open_array(self, name: str) -> zarr.Array:
        """The array ``name`` for writing, opened afresh from the store (as workers open it)."""
        return write_every_chunk(open_array(self.location, check_name(name)))

    def __contains__(self, name):
        return name in self.group

    # -- completion records (written by workers: records.write_done_record) --
    def done_keys(self, name: str) -> set[str]:
        """Keys (as strings) of the completed chunks of ``name`` (records not verified)."""
        return records.done_keys(self.location, check_name(name))

    def verify_done(self, name: str, keys=None, verify="size") -> dict[str, str]:
        """Check the completed chunks ``keys`` (default: all) of ``name`` against their manifests.

        Returns ``{key: problem}`` for every chunk whose record is unreadable or
        whose files are missing, truncated, extended (``verify="size"``) or
        changed (``verify="full"``, CRC-32 of every file). Records written
        without a manifest are trusted. Cost: one ``stat`` per chunk file
        (``"size"``), plus reading the files once (``"full"``).
        """
        level = check_verify(verify)
        name = check_name(name)
        if level is None:
            return {}
        return records.verify_done(self.location, name, keys, level)

    def forget_done(self, name: str, key) -> None:
        """Drop the completion record of chunk ``key`` of ``name`` (it will be recomputed)."""
        self._require_writable()
        records.forget_done(self.location, check_name(name), key)

    def forget_all_done(self, name: str) -> None:
        """Drop every completion record of ``name``: its files are about to change or go (a stage
        that replaces an array band by band), so no record may vouch for them any more."""
        self._require_writable()
        name = check_name(name)
        for key in list(self.done_keys(name)):
            records.forget_done(self.location, name, key)

    def drop_array(self, name: str) -> None:
        """Delete the array ``name``, its chunk files and its completion records."""
        self.forget_all_done(name)
        self.location.remove_record(check_name(name))

    # -- stages -------------------------------------------------------------
    def set_stage(self, name: str, info: dict | None = None, *, arrays=()) -> None:
        """Record that stage ``name`` finished, with small JSON ``info`` and the
        manifest of every chunk file of the arrays ``arrays`` (names in this
        store) that the stage's result depends on; :meth:`get_stage` checks them."""
        self._require_writable()
        records.write_stage(self.location, self.group, check_name(name), info, [check_name(a) for a in arrays])

    def get_stage(self, name: str, *, verify="size"):
        """The ``info`` of a finished stage, or ``None`` if it has not finished.

        The files of the arrays recorded with the stage are checked
        (``verify``: ``"size"``, ``"full"`` or ``False``, as in
        :meth:`verify_done`). A damaged stage is forgotten (logged; it will be
        recomputed) in a writable store and raises :class:`StoreCorruptError`
        in a read-only one.
        """
        name = check_name(name)
        info, problems = records.read_stage(self.location, name, check_verify(verify))
        if not problems:
            return info
        msg = (f"stage {name!r} of store {self.path!r} is damaged: " + "; ".join(problems[:5])
               + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
        if self.mode == "r":
            raise StoreCorruptError(msg + "; open the store writable and re-run the computation "
                                    "with the same parameters to recompute it")
        logger.warning("%s; it will be recomputed", msg)
        self.clear_stage(name)
        return None

    def clear_stage(self, name: str) -> None:
        """Forget that stage ``name`` finished (its arrays are kept)."""
        self._require_writable()
        records.forget_stage(self.location, check_name(name))

    def stages(self) -> list[str]:
        return records.stage_names(self.location)

    # -- integrity and the writer lock ---------------------------------------
    def verify(self, verify="full") -> dict[str, str]:
        """Check every completion record and stage manifest; nothing is changed.

        Returns ``{"<array>/<chunk key>" or "stage <name>": problem}`` (empty if
        the store is sound).
        """
        return records.verify_all(self.location, check_verify(verify) or "size")

    @contextlib.contextmanager
    def lock(self):
        """Hold the store's writer lock for the block (re-entrant within a process).

        Raises :class:`StoreLockedError` if another live process holds it; a
        lock left by a dead process on this host is taken over (logged). The
        lock is a directory ``<path>/_lock`` naming its owner, created by an
        atomic rename, and removed on exit (see ``lock.py``); on object storage
        a lease with a heartbeat and an expiry (``lease.py``).
        """
        self._require_writable()
        with hold(writer_lock(self.location)):
            yield self

    def lock_owner(self) -> dict | None:
        """The owner ``{pid, host, since, ...}`` of the store's lock (on object storage also
        ``expires``, ``lease_seconds``), or ``None`` if unlocked;
        :class:`~sketchla.store.StoreLockCorruptError` naming the record if it is malformed."""
        return writer_lock(self.location).owner()

    @staticmethod
    def break_lock(path, *, storage_options: dict | None = None) -> dict | None:
        """Remove the lock of the store at ``path`` whoever holds it; returns the
        removed owner. Only for a lock whose owner is certainly gone."""
        return writer_lock(resolve(path, storage_options)).break_lock()

    def _require_writable(self):
        if self.mode == "r":
            raise PermissionError(f"store {self.path!r} was opened read-only (mode='r')")


def _root_meta(path) -> str:
    return f"{path}/zarr.json"


def open_array(store_path, name: str, mode: str = "r+") -> zarr.Array:
    """The Zarr array ``name`` of the store at ``store_path`` (a path, URL or
    location): what a worker task holding only the store's path opens to
    write its chunk (with :func:`~sketchla.store.write_every_chunk`)."""
    loc = resolve(store_path)
    if loc.is_local:
        return zarr.open_array(loc.path, path=name, mode=mode, zarr_format=3)
    return zarr.open_array(loc.zarr_store(read_only=mode == "r"), path=name, mode=mode, zarr_format=3)


def _reopen(location, mode):
    return RunStore.open(location, None, mode="r" if mode == "r" else "r+")


def _version() -> str:
    from .. import __version__

    return __version__
