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
    <path>/_done/<name>/<key>        one sub-group per completed chunk; attrs["files"] = its manifest
    <path>/_stages/<name>            one sub-group per stage; attrs = the stage's info (+ manifest)
    <path>/_lock                     present while a run writes the store; attrs = the owner

Completion records are one tiny object per chunk (a Zarr group whose
``zarr.json`` is written in one go, by an atomic rename), so many worker
processes may finish chunks at once with no read-modify-write of shared
metadata. A record is only ever written after the chunk's data write has
returned, so a killed task leaves no record and its chunk is recomputed on
resume.

Integrity. A record carries a *manifest* of the chunk files it covers:
``{chunk key: [size in bytes, crc32] or None}`` (``None``: no file; arrays
made here write every chunk, but a store may hold arrays written by others
with Zarr's default of skipping chunks equal to the fill value). :meth:`RunStore.verify_done`
compares the files with it — ``verify="size"`` stats them (missing,
truncated or extended files; microseconds per chunk), ``verify="full"`` also
re-reads them and compares the CRC-32 (any changed byte). A record that fails
is dropped, so the chunk is recomputed instead of silently used. Stages may
carry the manifest of the arrays they wrote (:meth:`RunStore.set_stage`,
``arrays=``) and are checked the same way by :meth:`RunStore.get_stage`.
Every array made by :meth:`RunStore.array` also stores a CRC-32C of each
encoded chunk (Zarr's ``crc32c`` codec), so a damaged chunk that reaches a
read raises instead of decoding garbage. Chunks are not compressed (sketches
are dense noise) and every chunk is written even when it equals the fill
value (skipping those needs a full comparison of each chunk on every write).
``benchmarks/sketch_io.py`` measures both against the former Zstandard level
0 store: writing a 134,154 x 256 float32 sketch took 0.70x the time and
reading it 0.62x, for 1.32x the bytes on disk (most of that the padding of
the last, partial row chunk, which Zstandard compressed away; a constant of
at most one row chunk per column chunk).

Exclusive writers. :meth:`RunStore.lock` (used by ``measure``, ``seigh`` and
``ssvd``) creates ``<path>/_lock`` naming the owner (pid, host, boot id,
process start time). A second run on the store gets :class:`StoreLockedError`
while the owner is alive; a lock whose owner died on this host (SIGKILL,
crash, reboot) is detected as stale and taken over. Worker processes of the
owning run write chunks without taking the lock.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import logging
import os
import shutil
import socket
import threading
import uuid
import zlib

import numpy as np
import zarr

__all__ = ["RunStore", "StoreMismatchError", "StoreLockedError", "StoreCorruptError", "check_verify",
           "json_default"]

logger = logging.getLogger(__name__)

_ATTR = "sketchla"
_DONE = "_done"
_STAGES = "_stages"
_LOCK = "_lock"
_LOCK_ATTR = "sketchla_lock"
#: verification levels of the chunk-file manifests (see the module docstring)
VERIFY_LEVELS = ("size", "full")


class StoreMismatchError(ValueError):
    """An existing store was made with other parameters (or another layout)."""


class StoreLockedError(RuntimeError):
    """Another live run holds the store's lock (two writers at once are refused)."""


class StoreCorruptError(RuntimeError):
    """Files of a completed chunk or stage no longer match their recorded manifest."""


def check_verify(verify):
    """Normalise a ``verify=`` argument: ``"size"``, ``"full"``, or ``None`` for no check.

    ``True`` means ``"full"``; ``False``/``None``/``"none"`` mean no check.
    """
    if verify is None or verify is False or verify == "none":
        return None
    if verify is True:
        return "full"
    if isinstance(verify, str) and verify in VERIFY_LEVELS:
        return verify
    raise ValueError(f"verify={verify!r} must be 'size' (stat the chunk files), 'full' (also "
                     "checksum them) or False (trust the completion records)")


def _jsonable(params, argname="params"):
    try:
        return json.loads(json.dumps(params, sort_keys=True, default=json_default))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argname} must be JSON-serialisable: {exc}") from exc


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


# -- atomic JSON metadata, chunk-file manifests ---------------------------
_GROUP_JSON = {"attributes": {}, "zarr_format": 3, "node_type": "group"}


def _write_json_atomic(path: str, obj) -> None:
    """Write ``obj`` as JSON to ``path`` via a temporary file and ``os.replace``
    (readers see the old file or the whole new one, never a torn one)."""
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(path)}.{uuid.uuid4().hex}.partial")
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _ensure_group_json(root: str, rel: str) -> None:
    """Make ``root/rel`` and its parents up to ``root`` Zarr v3 groups (if they are not yet)."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        p = os.path.join(root, *parts[:i], "zarr.json")
        if not os.path.exists(p):
            _write_json_atomic(p, _GROUP_JSON)


def _read_json(path: str):
    """Parsed JSON at ``path``, or ``None`` if it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _file_crc32(path: str) -> tuple[int, int]:
    """``(size, crc32)`` of a file, read in 4 MiB pieces."""
    crc, size = 0, 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 22)
            if not b:
                return size, crc
            size += len(b)
            crc = zlib.crc32(b, crc)


def _file_entry(path: str):
    """Manifest entry of one chunk file: ``[size, crc32]``, or ``None`` if it does not exist."""
    try:
        size, crc = _file_crc32(path)
    except FileNotFoundError:
        return None
    return [size, crc]


def chunk_manifest(store_path: str, name: str, arr, coords) -> dict:
    """Manifest ``{chunk key: [size, crc32] | None}`` of the chunks ``coords`` of
    array ``name`` (Zarr array ``arr``) in the store directory ``store_path``."""
    enc = arr.metadata.encode_chunk_key
    out = {}
    for c in coords:
        key = enc(tuple(int(i) for i in c))
        out[key] = _file_entry(os.path.join(store_path, name, *key.split("/")))
    return out


def _array_manifest(store_path: str, name: str, arr) -> dict:
    """Manifest of every chunk of ``arr`` and of its metadata (``zarr.json``)."""
    import itertools

    out = chunk_manifest(store_path, name, arr, itertools.product(*(range(n) for n in arr.cdata_shape)))
    out["zarr.json"] = _file_entry(os.path.join(store_path, name, "zarr.json"))
    return out


def check_manifest(store_path: str, name: str, files: dict, level: str) -> list[str]:
    """Problems (human-readable, empty if none) of the files of ``name`` against ``files``.

    ``level="size"`` stats each file; ``"full"`` also compares its CRC-32.
    """
    problems = []
    for key, want in files.items():
        p = os.path.join(store_path, name, *key.split("/"))
        if want is None:  # no file was written (chunk equal to the fill value)
            if os.path.exists(p):
                problems.append(f"{name}/{key} exists but no file was written for this chunk")
            continue
        try:
            size = os.stat(p).st_size
        except FileNotFoundError:
            problems.append(f"{name}/{key} is missing")
            continue
        if size != want[0]:
            problems.append(f"{name}/{key} has {size} bytes, {want[0]} were written")
        elif level == "full" and want[1] is not None and _file_crc32(p)[1] != want[1]:
            problems.append(f"{name}/{key} fails its CRC-32 checksum (contents changed)")
    return problems


def write_done_record(store_path: str, name: str, key, files: dict | None = None) -> None:
    """Write the completion record of chunk ``key`` of ``name`` (with its file
    manifest) in one atomic step. Used by worker processes, which hold only the path."""
    key = _check_key(key)
    _ensure_group_json(store_path, f"{_DONE}/{name}")
    attrs = {} if files is None else {"files": files}
    _write_json_atomic(os.path.join(store_path, _DONE, name, key, "zarr.json"),
                       {"attributes": attrs, "zarr_format": 3, "node_type": "group"})


# -- the writer lock ---------------------------------------------------------
_HELD_LOCK = threading.RLock()
_HELD: dict[str, list] = {}  # realpath -> [depth, token]


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _machine_id():
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(p) as f:
                v = f.read().strip()
            if v:
                return v
        except OSError:
            pass
    return None


def _pid_start(pid: int):
    """Start time of process ``pid`` (clock ticks since boot), or ``None`` if unknown."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            stat = f.read()
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _me(token: str) -> dict:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "boot_id": _boot_id(), "machine_id": _machine_id(),
            "pid_start": _pid_start(pid), "token": token,
            "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _owner_alive(owner: dict):
    """``True`` (alive), ``False`` (certainly dead: stale lock) or ``None`` (cannot tell: other host)."""
    if owner.get("host") != socket.gethostname():
        return None
    boot = _boot_id()
    if owner.get("boot_id") and boot and owner["boot_id"] != boot:
        # same host name, other boot: dead if it is the same machine (same machine id)
        mid = _machine_id()
        return False if (mid and owner.get("machine_id") == mid) else None
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    start = _pid_start(pid)
    if start is not None and owner.get("pid_start") is not None and start != owner["pid_start"]:
        return False  # the pid was reused by a newer process
    return True


def _read_lock_owner(store_path: str):
    meta = _read_json(os.path.join(store_path, _LOCK, "zarr.json"))
    if not isinstance(meta, dict):
        return None
    owner = meta.get("attributes", {}).get(_LOCK_ATTR)
    return owner if isinstance(owner, dict) else None


def _remove_dir(path: str, new_name: str) -> None:
    """Atomically move ``path`` out of the way (to ``new_name`` beside it), then delete it."""
    gone = os.path.join(os.path.dirname(path), new_name)
    os.rename(path, gone)
    shutil.rmtree(gone, ignore_errors=True)


@contextlib.contextmanager
def _store_guard(store_path: str):
    """Exclusive ``flock`` on the store directory (same-host mutual exclusion for
    breaking a stale lock); a no-op where ``flock`` is not available."""
    try:
        import fcntl

        fd = os.open(store_path, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # releases the flock


def _locked_message(store_path: str, owner: dict | None, alive) -> str:
    if owner is None:
        who = "an unknown owner (its lock record is unreadable)"
    else:
        who = f"pid {owner.get('pid')} on host {owner.get('host')!r} (since {owner.get('since')})"
    why = ("" if alive else " whose liveness cannot be checked from this host")
    return (f"store {store_path!r} is being written by another run: {who}{why}. Two runs writing one "
            f"store at once could corrupt it. Wait for that run to finish, or, if it is certainly gone "
            f"(e.g. its machine crashed), remove the lock with "
            f"sketchla.store.RunStore.break_lock({store_path!r}) (or delete {os.path.join(store_path, _LOCK)!r}).")


def _acquire_lock(store_path: str) -> str:
    """Create ``<store>/_lock`` for this process (taking over a stale one); return its token."""
    lock_dir = os.path.join(store_path, _LOCK)
    token = uuid.uuid4().hex
    for _ in range(20):
        # build the whole lock group beside it, then rename it into place: atomic, and
        # fails if a (non-empty) lock directory already exists
        tmp = os.path.join(store_path, f"{_LOCK}.{token}")
        os.makedirs(tmp, exist_ok=True)
        _write_json_atomic(os.path.join(tmp, "zarr.json"),
                           {"attributes": {_LOCK_ATTR: _me(token)}, "zarr_format": 3, "node_type": "group"})
        try:
            os.rename(tmp, lock_dir)
            return token
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
                raise
        owner = _read_lock_owner(store_path)
        if owner is None:
            if not os.path.exists(lock_dir):
                continue  # released meanwhile
            raise StoreLockedError(_locked_message(store_path, None, None))
        alive = _owner_alive(owner)
        if alive is False:
            with _store_guard(store_path):
                again = _read_lock_owner(store_path)
                if again is not None and again.get("token") == owner.get("token"):
                    logger.warning("store %s: taking over the stale lock of pid %s on %s (that process is gone)",
                                   store_path, owner.get("pid"), owner.get("host"))
                    with contextlib.suppress(FileNotFoundError):
                        _remove_dir(lock_dir, f"{_LOCK}.{uuid.uuid4().hex}.stale")
            continue
        raise StoreLockedError(_locked_message(store_path, owner, alive))
    raise StoreLockedError(f"store {store_path!r}: could not take its lock (contention); try again")


def _release_lock(store_path: str, token: str) -> None:
    owner = _read_lock_owner(store_path)
    if owner is None or owner.get("token") != token:
        logger.warning("store %s: its lock is no longer ours at release (taken over?); leaving it", store_path)
        return
    with contextlib.suppress(FileNotFoundError):
        _remove_dir(os.path.join(store_path, _LOCK), f"{_LOCK}.{token}.released")


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

        Raises :class:`StoreMismatchError` (other params, not a sketchla store,
        a foreign non-empty directory) before anything is written, and
        :class:`StoreLockedError` for ``mode="w"`` on a store a live run holds.
        Two processes creating the same new store at once get one store (the
        root metadata is created atomically and exclusively).
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

        replace = mode == "w"
        for _attempt in range(100):
            exists = os.path.exists(os.path.join(path, "zarr.json"))
            if mode in ("r", "r+") and not exists:
                raise FileNotFoundError(f"no sketchla store at {path!r}")
            if not exists and os.path.isdir(path) and _foreign_entries(path):
                raise StoreMismatchError(f"store path {path!r} is a non-empty directory that is not a Zarr store; "
                                         "refusing to use it")
            if mode != "r":
                _check_writable(path)

            if exists:
                try:
                    group = zarr.open_group(path, mode="r" if mode == "r" else "r+", zarr_format=3)
                except Exception as exc:
                    raise StoreMismatchError(f"{path!r} is not a Zarr v3 group: {exc}") from exc
                meta = group.attrs.get(_ATTR)
                if not isinstance(meta, dict) or "params" not in meta:
                    raise StoreMismatchError(f"{path!r} is a Zarr group but not a sketchla run store; "
                                             "refusing to use it")
                if replace:
                    owner = _read_lock_owner(path)
                    if owner is not None and _owner_alive(owner) is not False:
                        raise StoreLockedError("mode='w' would delete a store in use: "
                                               + _locked_message(path, owner, _owner_alive(owner)))
                    logger.warning("mode='w': deleting the existing store at %s", path)
                    shutil.rmtree(path)
                    replace = False  # a store created meanwhile by another process is reopened, not deleted
                elif jparams is not None and meta["params"] != jparams:
                    raise StoreMismatchError(_mismatch_message(path, meta["params"], jparams))
                else:
                    return cls(path, group, meta["params"], mode)

            meta = {"params": jparams, "seed": jparams.get("seed"), "version": _version(),
                    "created": _dt.datetime.now(_dt.timezone.utc).isoformat()}
            try:
                created = _create_group_exclusive(path, {_ATTR: meta})
            except (PermissionError, NotADirectoryError, FileExistsError) as exc:
                raise PermissionError(f"cannot create store at {path!r}: {exc}") from exc
            if created:
                logger.info("created run store %s", path)
                return cls(path, zarr.open_group(path, mode="r+", zarr_format=3), jparams, mode)
            # another process created the store at the same moment: reopen it (params are compared)
        raise RuntimeError(f"could not open or create the store at {path!r} (concurrent changes)")

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
            return write_every_chunk(arr)
        self._require_writable()
        arr = self.group.create_array(name, shape=shape, chunks=chunks, dtype=dt, fill_value=0,
                                      compressors=_compressors())
        if jattrs:
            arr.attrs.update(jattrs)
        return write_every_chunk(arr)

    def __getitem__(self, name):
        return self.group[name]

    def __contains__(self, name):
        return name in self.group

    # -- completion records -----------------------------------------------
    def _done_path(self, name):
        return f"{_DONE}/{_check_name(name)}"

    def mark_done(self, name: str, key, files: dict | None = None) -> None:
        """Record that chunk ``key`` of ``name`` is complete, with the manifest
        ``files`` of its chunk files (see :func:`chunk_manifest`; ``None``: no
        manifest, the record cannot be verified). Call only after the chunk's
        data write has returned. Safe to call from many processes."""
        self._require_writable()
        write_done_record(self.path, _check_name(name), key, files)

    def is_done(self, name: str, key) -> bool:
        return os.path.exists(os.path.join(self.path, _DONE, _check_name(name), _check_key(key), "zarr.json"))

    def done_keys(self, name: str) -> set[str]:
        """Keys (as strings) of the completed chunks of ``name`` (records not verified)."""
        d = os.path.join(self.path, _DONE, _check_name(name))
        if not os.path.isdir(d):
            return set()
        return {k for k in os.listdir(d)
                if not k.startswith(".") and os.path.exists(os.path.join(d, k, "zarr.json"))}

    def verify_done(self, name: str, keys=None, verify="size") -> dict[str, str]:
        """Check the completed chunks ``keys`` (default: all) of ``name`` against their manifests.

        Returns ``{key: problem}`` for every chunk whose record is unreadable or
        whose files are missing, truncated, extended (``verify="size"``) or
        changed (``verify="full"``, CRC-32 of every file). Records written
        without a manifest are trusted. Cost: one ``stat`` per chunk file
        (``"size"``), plus reading the files once (``"full"``).
        """
        level = check_verify(verify)
        name = _check_name(name)
        if level is None:
            return {}
        keys = self.done_keys(name) if keys is None else {_check_key(k) for k in keys}
        bad = {}
        for k in sorted(keys, key=lambda x: (len(x), x)):
            meta = _read_json(os.path.join(self.path, _DONE, name, k, "zarr.json"))
            if not isinstance(meta, dict) or not isinstance(meta.get("attributes", {}), dict):
                bad[k] = "its completion record is unreadable"
                continue
            files = meta.get("attributes", {}).get("files")
            if files is None:
                continue
            if not isinstance(files, dict):
                bad[k] = "its completion record has no valid manifest"
                continue
            problems = check_manifest(self.path, name, files, level)
            if problems:
                bad[k] = "; ".join(problems)
        return bad

    def forget_done(self, name: str, key) -> None:
        """Drop the completion record of chunk ``key`` of ``name`` (it will be recomputed)."""
        self._require_writable()
        _rmtree_quiet(os.path.join(self.path, _DONE, _check_name(name), _check_key(key)))

    def clear_done(self, name: str) -> None:
        """Forget all completion records of ``name`` (its data is kept)."""
        self._require_writable()
        shutil.rmtree(os.path.join(self.path, _DONE, _check_name(name)), ignore_errors=True)

    # -- stages -------------------------------------------------------------
    def set_stage(self, name: str, info: dict | None = None, *, arrays=()) -> None:
        """Record that stage ``name`` finished, with small JSON ``info`` and the
        manifest of every chunk file of the arrays ``arrays`` (names in this
        store) that the stage's result depends on; :meth:`get_stage` checks them."""
        self._require_writable()
        name = _check_name(name)
        files = {}
        for a in arrays:
            arr = self.group[_check_name(a)]
            files[a] = _array_manifest(self.path, a, arr)
        attrs = {"info": _jsonable(info if info is not None else {}, "info"),
                 "finished": _dt.datetime.now(_dt.timezone.utc).isoformat()}
        if files:
            attrs["files"] = files
        _ensure_group_json(self.path, _STAGES)
        _write_json_atomic(os.path.join(self.path, _STAGES, name, "zarr.json"),
                           {"attributes": attrs, "zarr_format": 3, "node_type": "group"})

    def get_stage(self, name: str, *, verify="size"):
        """The ``info`` of a finished stage, or ``None`` if it has not finished.

        The files of the arrays recorded with the stage are checked
        (``verify``: ``"size"``, ``"full"`` or ``False``, as in
        :meth:`verify_done`). A damaged stage is forgotten (logged; it will be
        recomputed) in a writable store and raises :class:`StoreCorruptError`
        in a read-only one.
        """
        name = _check_name(name)
        level = check_verify(verify)
        p = os.path.join(self.path, _STAGES, name, "zarr.json")
        if not os.path.exists(p):
            return None
        meta = _read_json(p)
        attrs = meta.get("attributes") if isinstance(meta, dict) else None
        if not isinstance(attrs, dict):
            problems = [f"the record of stage {name!r} is unreadable"]
        elif "finished" not in attrs:
            return None
        else:
            problems = []
            if level is not None:
                for a, man in (attrs.get("files") or {}).items():
                    problems += check_manifest(self.path, a, man, level)
        if not problems:
            return attrs.get("info")
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
        _rmtree_quiet(os.path.join(self.path, _STAGES, _check_name(name)))

    def stages(self) -> list[str]:
        d = os.path.join(self.path, _STAGES)
        return sorted(k for k in os.listdir(d) if not k.startswith(".")
                      and os.path.exists(os.path.join(d, k, "zarr.json"))) \
            if os.path.isdir(d) else []

    # -- integrity and the writer lock ---------------------------------------
    def verify(self, verify="full") -> dict[str, str]:
        """Check every completion record and stage manifest; nothing is changed.

        Returns ``{"<array>/<chunk key>" or "stage <name>": problem}`` (empty if
        the store is sound).
        """
        level = check_verify(verify) or "size"
        out = {}
        d = os.path.join(self.path, _DONE)
        for name in (sorted(os.listdir(d)) if os.path.isdir(d) else []):
            if os.path.isdir(os.path.join(d, name)) and not name.startswith("."):
                for k, why in self.verify_done(name, verify=level).items():
                    out[f"{name}/{k}"] = why
        for st in self.stages():
            meta = _read_json(os.path.join(self.path, _STAGES, st, "zarr.json"))
            attrs = meta.get("attributes") if isinstance(meta, dict) else None
            if not isinstance(attrs, dict):
                out[f"stage {st}"] = "unreadable record"
                continue
            problems = [p for a, man in (attrs.get("files") or {}).items()
                        for p in check_manifest(self.path, a, man, level)]
            if problems:
                out[f"stage {st}"] = "; ".join(problems)
        return out

    @contextlib.contextmanager
    def lock(self):
        """Hold the store's writer lock for the block (re-entrant within a process).

        Raises :class:`StoreLockedError` if another live process holds it; a
        lock left by a dead process on this host is taken over (logged). The
        lock is a directory ``<path>/_lock`` naming its owner, created by an
        atomic rename, and removed on exit.
        """
        self._require_writable()
        key = os.path.realpath(self.path)
        with _HELD_LOCK:
            held = _HELD.get(key)
            if held is not None:
                held[0] += 1
            else:
                _HELD[key] = [1, _acquire_lock(self.path)]
        try:
            yield self
        finally:
            with _HELD_LOCK:
                held = _HELD[key]
                held[0] -= 1
                if held[0] == 0:
                    del _HELD[key]
                    _release_lock(self.path, held[1])

    def lock_owner(self) -> dict | None:
        """The owner ``{pid, host, since, ...}`` of the store's lock, or ``None`` if unlocked."""
        return _read_lock_owner(self.path)

    @staticmethod
    def break_lock(path) -> dict | None:
        """Remove the lock of the store at ``path`` whoever holds it; returns the
        removed owner. Only for a lock whose owner is certainly gone."""
        path = os.fspath(path)
        owner = _read_lock_owner(path)
        if os.path.isdir(os.path.join(path, _LOCK)):
            logger.warning("breaking the lock of store %s (owner: %s)", path, owner)
            with contextlib.suppress(FileNotFoundError):
                _remove_dir(os.path.join(path, _LOCK), f"{_LOCK}.{uuid.uuid4().hex}.broken")
        return owner

    def _require_writable(self):
        if self.mode == "r":
            raise PermissionError(f"store {self.path!r} was opened read-only (mode='r')")


def _rmtree_quiet(path: str) -> None:
    """Remove a record directory atomically (rename first, so no half-removed record is seen)."""
    if os.path.isdir(path):
        with contextlib.suppress(FileNotFoundError):
            _remove_dir(path, f".{os.path.basename(path)}.{uuid.uuid4().hex}.removed")


def _compressors():
    """Only a CRC-32C of every encoded chunk (no compression, see the module
    docstring), so a damaged chunk raises on read instead of decoding garbage."""
    from zarr.codecs import Crc32cCodec

    return (Crc32cCodec(),)


def write_every_chunk(arr: zarr.Array) -> zarr.Array:
    """``arr`` set to write every chunk, also one equal to the fill value.

    Zarr's default skips such chunks, which costs a full comparison of each
    chunk with the fill value on every write; a sketch chunk is practically
    never constant, so the comparison is overhead (most of the write-time
    saving measured by ``benchmarks/sketch_io.py``).
    """
    return arr.with_config({"write_empty_chunks": True})


def _foreign_entries(path: str) -> list[str]:
    """Entries of a directory that are not in-flight temporary files of a store being created."""
    return [e for e in os.listdir(path) if not e.endswith(".partial")]


def _create_group_exclusive(path: str, attributes: dict) -> bool:
    """Create the root ``zarr.json`` of a group with its attributes in one atomic,
    exclusive step (a hard link of a complete temporary file). ``False`` if a
    ``zarr.json`` appeared there first (another process created the store)."""
    os.makedirs(path, exist_ok=True)
    target = os.path.join(path, "zarr.json")
    tmp = os.path.join(path, f".zarr.json.{uuid.uuid4().hex}.partial")
    with open(tmp, "w") as f:
        json.dump({"attributes": attributes, "zarr_format": 3, "node_type": "group"}, f)
    try:
        os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    except OSError as exc:  # file systems without hard links
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        try:
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f, open(tmp) as src:
            f.write(src.read())
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


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
