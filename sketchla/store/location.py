"""Where a store lives: a local directory, or a URL on any filesystem fsspec knows.

:func:`resolve` turns what a caller gives as a store (a path, an
``os.PathLike``, a ``file://``, ``s3://``, ``gs://``, ``az://``, ... URL, with
``storage_options`` for the filesystem) into a :class:`LocalLocation` or an
:class:`FsspecLocation`. Everything else in :mod:`sketchla.store` reads and
writes the store's records through these two; Zarr reads and writes the
arrays through :meth:`zarr_store`.

* A local path (or a ``file://`` URL, which is turned into one) keeps every
  guarantee of the local store: atomic renames, hard links, ``flock``, the
  directory lock of ``lock.py``. Nothing of fsspec is imported for it.
* A URL goes through fsspec (``s3fs``, ``gcsfs``, ``adlfs``: the ``s3`` and
  ``cloud`` extras): :class:`~sketchla.store.objectstore.FsspecLocation`
  (``objectstore.py``). Single objects are written in one PUT, which object
  stores apply atomically (readers see the old or the whole new object), so a
  record needs no rename; a record is removed by deleting its ``zarr.json``
  first. The writer lock is a lease (``lease.py``).

A store's :attr:`~sketchla.store.RunStore.path` is a ``str``: the directory for
a local store, the URL for others, as a :class:`StoreURL`, a ``str`` that also
carries the ``storage_options``. Code that hands only the path to Dask workers
(``sketchla.measure``) therefore reaches the same store with the same
credentials and endpoint there.

Bad input fails here, before any work: a scheme with no installed filesystem
(``ImportError`` naming the package), an unknown scheme (``ValueError``), and
at ``FsspecLocation.probe`` (called when a store is opened) an unreachable
endpoint (``ConnectionError``), missing or refused credentials
(``PermissionError``) or a bucket that does not exist (``FileNotFoundError``),
each naming the URL.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import zlib

__all__ = ["StoreURL", "LocalLocation", "FsspecLocation", "resolve", "as_location", "is_url"]

#: schemes whose first path component is a bucket (or container) that must exist
BUCKET_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"})
#: which package provides the filesystem of a scheme (for the install hint)
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs",
             "abfss": "adlfs", "adl": "adlfs", "oss": "ossfs"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
#: one path component of a key inside the store (what Zarr and the records use)
_PART = re.compile(r"^[A-Za-z0-9_.\-]+$")


def is_url(path) -> bool:
    """``True`` if ``path`` is a string with a URL scheme (``s3://...``, ``file://...``)."""
    return isinstance(path, str) and _SCHEME.match(path) is not None


def key_parts(key) -> list[str] | None:
    """The components of a relative key inside the store, or ``None`` if it is not one
    (empty, absolute, ``.``/``..``, a backslash or other characters a chunk key never has)."""
    if not isinstance(key, str) or not key:
        return None
    parts = key.split("/")
    if any(p in ("", ".", "..") or not _PART.match(p) for p in parts):
        return None
    return parts


class StoreURL(str):
    """A store URL that carries its ``storage_options`` (see the module docstring).

    Compares, hashes and prints as the plain URL (options, which may hold
    credentials, are never shown); pickles with its options.
    """

    storage_options: dict

    def __new__(cls, url: str, storage_options: dict | None = None):
        self = super().__new__(cls, url)
        self.storage_options = dict(storage_options or {})
        return self

    def __reduce__(self):
        return (StoreURL, (str(self), self.storage_options))


def resolve(path, storage_options: dict | None = None):
    """The location of a store given as ``path`` (see the module docstring).

    ``storage_options`` go to the fsspec filesystem of a URL (and add to those
    a :class:`StoreURL` carries); they are refused for a local path.
    """
    if isinstance(path, (LocalLocation, FsspecLocation)):
        if storage_options:
            raise ValueError("storage_options given twice (the store location already has them)")
        return path
    if storage_options is not None and not isinstance(storage_options, dict):
        raise TypeError(f"storage_options must be a dict, got {type(storage_options).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a directory path or a URL, got {type(path).__name__}")
    if not is_url(path):
        if storage_options:
            raise ValueError(f"storage_options are for URLs (s3://..., gs://...); {os.fspath(path)!r} is a "
                             "local path")
        return LocalLocation(os.fspath(path))
    opts = {**getattr(path, "storage_options", {}), **(storage_options or {})}
    protocol = _SCHEME.match(path).group(1).lower()
    if protocol in ("file", "local"):
        if opts:
            raise ValueError(f"storage_options are for remote URLs; {str(path)!r} is a local file URL")
        return LocalLocation(_file_url_path(path))
    return FsspecLocation(str(path), opts)


def as_location(store_path):
    """``store_path`` (a path, URL, :class:`StoreURL` or location) as a location."""
    return resolve(store_path)


def _file_url_path(url: str) -> str:
    from urllib.parse import unquote, urlparse

    p = urlparse(url)
    if p.netloc not in ("", "localhost"):
        raise ValueError(f"{url!r}: a file:// URL must name a local path (file:///dir/run.zarr)")
    return unquote(p.path)


def group_json_bytes(attributes: dict) -> bytes:
    from .atomic import group_json

    return json.dumps(group_json(attributes)).encode()


# --------------------------------------------------------------------------- local
class LocalLocation:
    """A store in a directory of a local or shared POSIX file system (the original store)."""

    is_local = True

    def __init__(self, path: str):
        self.path = path

    @property
    def url(self) -> str:
        """What messages name and :attr:`RunStore.path` holds: the path as given."""
        return self.path

    @property
    def lock_key(self) -> str:
        return os.path.realpath(self.path)

    def __repr__(self):
        return f"LocalLocation({self.path!r})"

    def __reduce__(self):
        return (LocalLocation, (self.path,))

    def join(self, rel: str = "") -> str:
        return os.path.join(self.path, *rel.split("/")) if rel else self.path

    # -- Zarr
    def zarr_store(self, read_only: bool = False):
        return self.path

    # -- the store as a whole
    def probe(self) -> None:
        """Nothing to do: local paths are checked by :func:`check_writable`."""

    def exists(self, rel: str) -> bool:
        return os.path.exists(self.join(rel))

    def foreign_entries(self) -> list[str]:
        """Entries of the store directory that are not in-flight temporary files of a store being created."""
        if not os.path.isdir(self.path):
            return []
        return [e for e in os.listdir(self.path) if not e.endswith(".partial")]

    def check_writable(self) -> None:
        """Raise PermissionError/ValueError naming the path if it cannot be created or written."""
        probe = os.path.abspath(self.path)
        while not os.path.exists(probe):
            parent = os.path.dirname(probe)
            if parent == probe:
                break
            probe = parent
        if os.path.exists(probe) and not os.path.isdir(probe):
            raise ValueError(f"store path {self.path!r} is not usable: {probe!r} exists and is not a directory")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise PermissionError(f"store path {self.path!r} is not writable (no write permission on {probe!r})")

    def create_group_exclusive(self, attributes: dict) -> bool:
        from .atomic import create_group_exclusive

        try:
            return create_group_exclusive(self.path, attributes)
        except (PermissionError, NotADirectoryError, FileExistsError) as exc:
            raise PermissionError(f"cannot create store at {self.path!r}: {exc}") from exc

    def remove_all(self, keep: str | None = None) -> None:
        """Delete the store (its root metadata first, so it stops being a store at
        once); ``keep``: an entry to leave (the lock, while it is held)."""
        import shutil

        if keep is None:
            shutil.rmtree(self.path)
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.join("zarr.json"))
        for e in os.listdir(self.path):
            if e != keep:
                p = os.path.join(self.path, e)
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(p)

    @contextlib.contextmanager
    def errors(self, doing: str = ""):
        yield

    # -- records (small JSON objects)
    def read_json(self, rel: str):
        from .atomic import read_json

        return read_json(self.join(rel))

    def write_json(self, rel: str, obj) -> None:
        from .atomic import write_json_atomic

        write_json_atomic(self.join(rel), obj)

    def ensure_groups(self, rel: str) -> None:
        from .atomic import ensure_group_json

        ensure_group_json(self.path, rel)

    def record_names(self, rel: str) -> list[str]:
        """Sub-folders ``k`` of ``rel`` holding a ``k/zarr.json`` (the records), not hidden ones."""
        d = self.join(rel)
        if not os.path.isdir(d):
            return []
        return [k for k in os.listdir(d) if not k.startswith(".") and os.path.exists(os.path.join(d, k, "zarr.json"))]

    def subfolders(self, rel: str) -> list[str]:
        d = self.join(rel)
        if not os.path.isdir(d):
            return []
        return [k for k in os.listdir(d) if not k.startswith(".") and os.path.isdir(os.path.join(d, k))]

    def remove_record(self, rel: str) -> None:
        from .atomic import rmtree_quiet

        rmtree_quiet(self.join(rel))

    def delete(self, rel: str) -> None:
        """Remove the file ``rel`` (a chunk), if it exists."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.join(rel))

    # -- chunk files
    def sizes(self, rel: str):
        """``None``: a local store stats each file (:meth:`size`) instead of listing."""
        return None

    def size(self, rel: str) -> int | None:
        try:
            return os.stat(self.join(rel)).st_size
        except FileNotFoundError:
            return None

    def size_crc32(self, rel: str) -> tuple[int, int] | None:
        """``(size, crc32)`` of a file, read in 4 MiB pieces; ``None`` if it does not exist."""
        crc, size = 0, 0
        try:
            f = open(self.join(rel), "rb")
        except FileNotFoundError:
            return None
        with f:
            while True:
                b = f.read(1 << 22)
                if not b:
                    return size, crc
                size += len(b)
                crc = zlib.crc32(b, crc)


from .objectstore import FsspecLocation  # noqa: E402  (re-exported; it builds on the names above)
