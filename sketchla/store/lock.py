"""The store's writer lock: one run writes a store at a time.

Stored at ``<path>/_lock``, a Zarr group whose attribute ``"sketchla_lock"``
names the owner (pid, host, boot id, machine id, process start time, a random
token, since when). It is created by building the whole group beside it
(``_lock.<token>``) and renaming it into place: atomic, and it fails if a lock
is there. A second run on the store gets
:class:`~sketchla.store.StoreLockedError` while the owner is alive; a lock
whose owner died on this host (SIGKILL, crash, reboot, its pid reused) is
detected as stale and taken over, under an ``flock`` on the store directory so
two runs cannot both take it over. A lock from another host cannot be checked
from here and is refused until broken by hand. Worker processes of the owning
run write chunks without taking the lock.

The seam. :class:`~sketchla.store.RunStore` uses a lock only through the
:class:`WriterLock` interface, the lock made by :func:`writer_lock` for its
path, and :func:`hold` (re-entrant holding within a process).
:class:`DirectoryLock` is the lock of a store in a directory;
:class:`~sketchla.store.lease.LeaseLock` (``lease.py``) that of a store at a
URL (object storage: a lease with a heartbeat and an expiry, taken with
conditional writes). :func:`writer_lock` chooses by the store's location.

The lock record is read as untrusted input: one that exists but is not a JSON
object naming an owner with the expected types raises
:class:`~sketchla.store.errors.StoreLockCorruptError` (a
:class:`StoreCorruptError` and a :class:`StoreLockedError`) naming the record,
never an ``AttributeError``; ``break_lock`` removes it.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import logging
import os
import shutil
import socket
import threading
import uuid
from typing import Protocol

from .atomic import read_json, remove_dir, write_group_atomic
from .errors import StoreLockCorruptError, StoreLockedError
from .layout import LOCK
from .location import as_location

__all__ = ["WriterLock", "DirectoryLock", "writer_lock", "hold"]

logger = logging.getLogger(__name__)

#: attribute of the lock group naming its owner
LOCK_ATTR = "sketchla_lock"


class WriterLock(Protocol):
    """What a store needs of its writer lock."""

    #: names the store within this process (two stores with one key share one hold)
    key: str

    def acquire(self) -> str:
        """Take the lock (or a stale one over) and return its token; :class:`StoreLockedError`
        if another live run holds it."""

    def release(self, token: str) -> None:
        """Give back the lock taken with ``token`` (leave it, logged, if it is no longer ours)."""

    def owner(self) -> dict | None:
        """The holder ``{pid, host, since, ...}``, or ``None`` if the store is not locked."""

    def ensure_free(self, doing: str) -> None:
        """Raise :class:`StoreLockedError` (``"<doing>: <who holds it>"``) unless no live run holds it."""

    def break_lock(self) -> dict | None:
        """Remove the lock whoever holds it; returns the removed owner."""


def writer_lock(store_path) -> WriterLock:
    """The writer lock of the store at ``store_path`` (a path, URL or location):
    :class:`DirectoryLock` for a directory, a lease (``lease.py``) for a URL."""
    loc = as_location(store_path)
    if loc.is_local:
        return DirectoryLock(loc.path)
    from .lease import LeaseLock

    return LeaseLock(loc)


def check_owner(owner, where: str, *, lease: bool = False) -> dict:
    """``owner`` (a lock record's ``"sketchla_lock"`` attribute) if it has the
    fields a lock writes, with their types; else :class:`StoreLockCorruptError`
    naming ``where``."""
    def bad(why):
        return StoreLockCorruptError(
            f"the lock record {where!r} is malformed ({why}): the store counts as locked by an unknown "
            "owner (its lock record is unreadable). If no run is using the store, remove the lock with "
            "sketchla.store.RunStore.break_lock(<store>)")

    if not isinstance(owner, dict):
        raise bad(f"its owner is a {type(owner).__name__}, not an object")
    types = {"pid": int, "host": str, "token": str, "since": str}
    if lease:
        types.update(expires=(int, float), lease_seconds=(int, float))
    for k, t in types.items():
        v = owner.get(k)
        if not isinstance(v, t) or isinstance(v, bool):
            raise bad(f"{k}={v!r}")
    return owner


# -- holding a lock within a process (re-entrant) ----------------------------
_HELD_LOCK = threading.RLock()
_HELD: dict[str, list] = {}  # lock key -> [depth, token]


@contextlib.contextmanager
def hold(lock: WriterLock):
    """Hold ``lock`` for the block; nested holds of the same store in this process
    share the first one's acquisition, which the last one to leave releases."""
    key = lock.key
    with _HELD_LOCK:
        held = _HELD.get(key)
        if held is not None:
            held[0] += 1
        else:
            _HELD[key] = [1, lock.acquire()]
    try:
        yield
    finally:
        with _HELD_LOCK:
            held = _HELD[key]
            held[0] -= 1
            if held[0] == 0:
                del _HELD[key]
                lock.release(held[1])


def refuse_if_held(store_path, doing: str) -> None:
    """Raise :class:`StoreLockedError` (``"<doing>: <who holds it>"``) if another live run holds
    the lock of the store at ``store_path``; reads only (a hold of this process counts as free).
    For work a run does before it takes the lock, e.g. its operator check."""
    lock = writer_lock(store_path)
    with _HELD_LOCK:
        if lock.key in _HELD:
            return
    lock.ensure_free(doing)


# -- who holds a lock, and is it alive ------------------------------------------
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


# -- the lock folder -------------------------------------------------------------
class DirectoryLock:
    """The lock folder ``<store>/_lock`` of a store on a local or shared file system."""

    def __init__(self, store_path: str):
        self.path = os.fspath(store_path)
        self.dir = os.path.join(self.path, LOCK)

    @property
    def key(self) -> str:
        return os.path.realpath(self.path)

    def _corrupt_note(self) -> str:
        return f" (the lock record {os.path.join(self.dir, 'zarr.json')!r} is unreadable or malformed)"

    def _record(self):
        """``(exists, owner or None)``; ``owner`` is checked (:func:`check_owner`) by the callers."""
        where = os.path.join(self.dir, "zarr.json")
        meta = read_json(where)
        if meta is None:
            return os.path.exists(self.dir), None
        attrs = meta.get("attributes") if isinstance(meta, dict) else None
        return True, (attrs.get(LOCK_ATTR) if isinstance(attrs, dict) else None)

    def owner(self) -> dict | None:
        exists, owner = self._record()
        if not exists:
            return None
        return check_owner(owner, os.path.join(self.dir, "zarr.json"))

    def _owner_or_corrupt(self):
        """``(exists, owner)``: ``owner`` is ``None`` for a missing or a malformed record."""
        exists, owner = self._record()
        try:
            return exists, (check_owner(owner, self.dir) if exists else None)
        except StoreLockCorruptError:
            return exists, None

    def acquire(self) -> str:
        """Create ``<store>/_lock`` for this process (taking over a stale one); return its token."""
        token = uuid.uuid4().hex
        for _ in range(20):
            # build the whole lock group beside it, then rename it into place: atomic, and
            # fails if a (non-empty) lock directory already exists
            tmp = os.path.join(self.path, f"{LOCK}.{token}")
            os.makedirs(tmp, exist_ok=True)
            write_group_atomic(tmp, {LOCK_ATTR: _me(token)})
            try:
                os.rename(tmp, self.dir)
                return token
            except OSError as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR):
                    raise
            exists, owner = self._owner_or_corrupt()
            if owner is None:
                if not exists:
                    continue  # released meanwhile
                raise StoreLockCorruptError(self._locked_message(None, None) + self._corrupt_note())
            alive = _owner_alive(owner)
            if alive is False:
                with _store_guard(self.path):
                    again = self._owner_or_corrupt()[1]
                    if again is not None and again.get("token") == owner.get("token"):
                        logger.warning("store %s: taking over the stale lock of pid %s on %s (that process is gone)",
                                       self.path, owner.get("pid"), owner.get("host"))
                        with contextlib.suppress(FileNotFoundError):
                            remove_dir(self.dir, f"{LOCK}.{uuid.uuid4().hex}.stale")
                continue
            raise StoreLockedError(self._locked_message(owner, alive))
        raise StoreLockedError(f"store {self.path!r}: could not take its lock (contention); try again")

    def release(self, token: str) -> None:
        owner = self._owner_or_corrupt()[1]
        if owner is None or owner.get("token") != token:
            logger.warning("store %s: its lock is no longer ours at release (taken over?); leaving it", self.path)
            return
        with contextlib.suppress(FileNotFoundError):
            remove_dir(self.dir, f"{LOCK}.{token}.released")

    def ensure_free(self, doing: str) -> None:
        exists, owner = self._owner_or_corrupt()
        if exists and owner is None:
            raise StoreLockCorruptError(f"{doing}: " + self._locked_message(None, None) + self._corrupt_note())
        if owner is not None:
            alive = _owner_alive(owner)
            if alive is not False:
                raise StoreLockedError(f"{doing}: " + self._locked_message(owner, alive))

    def break_lock(self) -> dict | None:
        owner = self._owner_or_corrupt()[1]
        if os.path.isdir(self.dir):
            logger.warning("breaking the lock of store %s (owner: %s)", self.path, owner)
            with contextlib.suppress(FileNotFoundError):
                remove_dir(self.dir, f"{LOCK}.{uuid.uuid4().hex}.broken")
        return owner

    def _locked_message(self, owner: dict | None, alive) -> str:
        if owner is None:
            who = "an unknown owner (its lock record is unreadable)"
        else:
            who = f"pid {owner.get('pid')} on host {owner.get('host')!r} (since {owner.get('since')})"
        why = ("" if alive else " whose liveness cannot be checked from this host")
        return (f"store {self.path!r} is being written by another run: {who}{why}. Two runs writing one "
                f"store at once could corrupt it. Wait for that run to finish, or, if it is certainly gone "
                f"(e.g. its machine crashed), remove the lock with "
                f"sketchla.store.RunStore.break_lock({self.path!r}) (or delete {self.dir!r}).")
