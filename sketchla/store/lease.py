"""The writer lock of a store at a URL (object storage): a lease.

There are no renames, hard links, ``flock`` or process ids to check on
object storage, so the lock of such a store is a *lease*: one object
``<url>/_lock/zarr.json`` (the same Zarr group as the directory lock) whose
attribute ``"sketchla_lock"`` names the owner (pid, host, a random token, since
when) and the lease: ``lease_seconds``, ``expires`` (Unix time) and
``renewed``/``beats``.

* **Taking it.** The record is created with a conditional write: on S3 a PUT
  with ``If-None-Match: *``, which the store applies only if no record
  exists. If one exists and its lease has not expired, the run is refused with
  :class:`~sketchla.store.StoreLockedError` naming the owner and when its
  lease ends. An expired lease (its owner stopped renewing it: killed, hung,
  cut off) is taken over by replacing the record only if it is still the
  version that was read (S3: ``If-Match: <ETag>``), so of two runs taking over
  at once one wins. After taking it, the record is read back and must hold
  this run's token.
* **Holding it.** A daemon thread renews the lease every ``lease_seconds / 4``
  with a write conditional on the version it last wrote. If a renewal is
  refused (another run took the store over after this lease expired) or none
  succeeds before the lease ends, the lease is *lost*: logged as an error, and
  :class:`StoreLockedError` is raised when the run gives the lock back.
* **Giving it back** deletes the record (if it is still this run's).

Lease length: ``SKETCHLA_LEASE_SECONDS`` in the environment (default
:data:`DEFAULT_LEASE_SECONDS`, 60 s), read when a lock is taken. A run whose
owner died is taken over at most that long after its last renewal.

What is guaranteed where:

* **S3 and servers that apply S3's conditional writes** (AWS S3 since
  2024-08, MinIO, Ceph RGW recent versions): at most one run holds the lease
  at any time, provided the clocks of the hosts agree to well within the lease
  (expiry is judged by the reader's clock against the expiry the owner wrote;
  keep hosts on NTP).
* **moto's S3 server** (the tests) answers ``If-None-Match`` and ``If-Match``
  with 412 as S3 does, but checks and writes without holding a lock between
  them: of 16 simultaneous conditional creates, two succeeded in 1 trial of
  100 (measured with ``s3fs``). The lease still ends with one holder there:
  after taking the record it waits :data:`READ_BACK_DELAY` and reads it back,
  and a run that finds another token refuses (16 simultaneous takers: one
  holder in each of 40 trials on the loaded 2-core machine;
  ``tests/reliability/test_object_store.py`` runs 8 takers, 3 times).
* **Other fsspec filesystems** (``gs://``, ``az://``, ...: driven without
  conditions here) and S3-compatible servers that ignore the conditions: the
  record is created by check-then-write and read back. Two runs that start
  within about one round trip of each other can both believe they hold the
  lease; start one driver per store there. Every run on one store has the
  same parameters and writes the same bytes to each chunk (test matrices are
  pure functions of the seed), so such a race costs duplicated work, and the
  chunk manifests still catch any torn result.

Worker processes of the owning run write chunks without taking the lock, as
on local disk.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import threading
import time
import uuid

from .atomic import group_json
from .errors import StoreLockCorruptError, StoreLockedError
from .layout import LOCK
from .lock import LOCK_ATTR, _me, check_owner

__all__ = ["LeaseLock", "DEFAULT_LEASE_SECONDS", "lease_seconds"]

logger = logging.getLogger(__name__)

#: default lease length in seconds (``SKETCHLA_LEASE_SECONDS`` overrides it)
DEFAULT_LEASE_SECONDS = 60.0
#: the lock record, relative to the store
RECORD = f"{LOCK}/zarr.json"
#: seconds between taking the record and reading it back (outlasts the gap between a
#: non-atomic server's check and its write, see the module docstring)
READ_BACK_DELAY = 0.1


def lease_seconds() -> float:
    """The lease length for locks taken now: ``SKETCHLA_LEASE_SECONDS`` or the default."""
    raw = os.environ.get("SKETCHLA_LEASE_SECONDS")
    if raw is None or raw == "":
        return DEFAULT_LEASE_SECONDS
    try:
        v = float(raw)
    except ValueError:
        raise ValueError(f"SKETCHLA_LEASE_SECONDS={raw!r} must be a number of seconds") from None
    if not 0.2 <= v <= 86400:
        raise ValueError(f"SKETCHLA_LEASE_SECONDS={raw!r} must lie between 0.2 and 86400 seconds")
    return v


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _when(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")


class _Heartbeat:
    """Renews one held lease in a daemon thread until stopped."""

    def __init__(self, lock: "LeaseLock", owner: dict, etag):
        self.lock, self.owner, self.etag = lock, owner, etag
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sketchla-lease-{owner['token'][:8]}",
                                        daemon=True)
        self._thread.start()

    def _run(self):
        lease = float(self.owner["lease_seconds"])
        while not self._stop.wait(lease / 4):
            try:
                self._renew(lease)
            except Exception as exc:  # the network, mostly: try again at the next beat
                if time.time() >= self.owner["expires"]:
                    self.lost = f"no renewal succeeded before the lease expired (last error: {exc})"
                else:
                    logger.warning("store %s: renewing its lease failed (%s); retrying", self.lock.url, exc)
                    continue
            if self.lost:
                logger.error("store %s: this run lost its lease: %s", self.lock.url, self.lost)
                return

    def _renew(self, lease: float):
        loc = self.lock.loc
        new = dict(self.owner, expires=time.time() + lease, renewed=_now_iso(),
                   beats=int(self.owner.get("beats", 0)) + 1)
        if not loc.conditional_writes:  # read-compare-write: see the module docstring
            cur = self.lock._read()[0]
            if not isinstance(cur, dict) or cur.get("token") != self.owner["token"]:
                self.lost = f"the lock record now names {self.lock._who(cur)}"
                return
        etag = loc.replace_if(RECORD, _record_bytes(new), self.etag)
        if etag is None:
            cur = self.lock._read()[0]
            self.lost = f"another run took the store over: {self.lock._who(cur)}"
            return
        self.owner, self.etag = new, etag

    def stop(self):
        self._stop.set()
        self._thread.join()


#: held leases of this process: token -> heartbeat
_BEATS: dict[str, _Heartbeat] = {}


def _record_bytes(owner: dict) -> bytes:
    return json.dumps(group_json({LOCK_ATTR: owner})).encode()


class LeaseLock:
    """The lease ``<url>/_lock/zarr.json`` of a store on object storage (see the module docstring)."""

    def __init__(self, loc):
        self.loc = loc
        self.url = str(loc.url)
        self.where = f"{self.url}/{RECORD}"

    @property
    def key(self) -> str:
        return f"lease:{self.loc.lock_key}"

    # -- reading the record
    def _read(self):
        """``(owner or None, etag)``; ``owner`` checked (:func:`~sketchla.store.lock.check_owner`);
        ``(None, None)`` if there is no record."""
        data, etag = self.loc.read_bytes_etag(RECORD)
        if data is None:
            return None, None
        try:
            meta = json.loads(data)
        except ValueError:
            meta = None
        attrs = meta.get("attributes") if isinstance(meta, dict) else None
        owner = attrs.get(LOCK_ATTR) if isinstance(attrs, dict) else None
        return check_owner(owner, self.where, lease=True), etag

    def owner(self) -> dict | None:
        return self._read()[0]

    # -- the lock
    def acquire(self) -> str:
        token = uuid.uuid4().hex
        lease = lease_seconds()
        loc = self.loc
        with loc.errors("taking the store's lock"):
            for _ in range(20):
                me = dict(_me(token), lease_seconds=lease, expires=time.time() + lease, renewed=_now_iso(), beats=0)
                etag = loc.create_exclusive(RECORD, _record_bytes(me))
                if etag is None:  # a record is there: whose, and is its lease still running?
                    try:
                        owner, old = self._read()
                    except StoreLockCorruptError as exc:
                        raise StoreLockCorruptError(self._locked_message(None) + f" ({exc})") from None
                    if owner is None:
                        continue  # released meanwhile
                    if time.time() < owner["expires"]:
                        raise StoreLockedError(self._locked_message(owner))
                    logger.warning("store %s: taking over the expired lease of pid %s on %s (expired %s)",
                                   self.url, owner.get("pid"), owner.get("host"), _when(owner["expires"]))
                    me["expires"] = time.time() + lease
                    etag = loc.replace_if(RECORD, _record_bytes(me), old)
                    if etag is None:
                        continue  # another run took it over first (or renewed it): look again
                time.sleep(READ_BACK_DELAY)
                got, got_etag = self._read_back()
                if got is None or got.get("token") != token:
                    if got is None:
                        continue
                    raise StoreLockedError(self._locked_message(got))
                _BEATS[token] = _Heartbeat(self, me, got_etag or etag)
                return token
        raise StoreLockedError(f"store {self.url!r}: could not take its lock (contention); try again")

    def _read_back(self):
        try:
            return self._read()
        except StoreLockCorruptError:
            return None, None

    def release(self, token: str) -> None:
        beat = _BEATS.pop(token, None)
        if beat is not None:
            beat.stop()
        with self.loc.errors("giving back the store's lock"):
            try:
                owner = self._read()[0]
            except StoreLockCorruptError:
                owner = None
            if owner is not None and owner.get("token") == token:
                self.loc.delete(RECORD)
        if beat is not None and beat.lost:
            raise StoreLockedError(
                f"store {self.url!r}: this run lost its lease while it ran ({beat.lost}); another run may "
                "have written the store at the same time. Its chunks are deterministic, so the store is "
                "consistent if both had the same parameters; check it with "
                f"sketchla.store.RunStore.open({self.url!r}, mode='r').verify(), or run again with "
                "verify='full'")
        if owner is None or owner.get("token") != token:
            logger.warning("store %s: its lock is no longer ours at release (taken over?); leaving it", self.url)

    def ensure_free(self, doing: str) -> None:
        with self.loc.errors():
            try:
                owner = self._read()[0]
            except StoreLockCorruptError as exc:
                raise StoreLockCorruptError(f"{doing}: {exc}") from None
        if owner is not None and time.time() < owner["expires"]:
            raise StoreLockedError(f"{doing}: " + self._locked_message(owner))

    def break_lock(self) -> dict | None:
        with self.loc.errors():
            try:
                owner = self._read()[0]
            except StoreLockCorruptError:
                owner = None
            if self.loc.exists(RECORD):
                logger.warning("breaking the lock of store %s (owner: %s)", self.url, owner)
                self.loc.delete(RECORD)
        return owner

    # -- messages
    @staticmethod
    def _who(owner) -> str:
        if not isinstance(owner, dict):
            return "no owner"
        return f"pid {owner.get('pid')} on host {owner.get('host')!r} (since {owner.get('since')})"

    def _locked_message(self, owner: dict | None) -> str:
        if owner is None:
            who = "an unknown owner (its lock record is unreadable)"
            until = ""
        else:
            left = owner["expires"] - time.time()
            who = self._who(owner)
            until = (f"; its lease runs until {_when(owner['expires'])} ({left:.0f} s from now) unless that run "
                     "renews it")
        return (f"store {self.url!r} is being written by another run: {who}{until}. Two runs writing one "
                f"store at once could corrupt it. Wait for that run to finish; if it died, its lease expires "
                f"and the next run takes the store over; if it is certainly gone, remove the lock with "
                f"sketchla.store.RunStore.break_lock({self.url!r}).")
