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
  ``cloud`` extras). Single objects are written in one PUT, which object
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
at :meth:`FsspecLocation.probe` (called when a store is opened) an unreachable
endpoint (``ConnectionError``), missing or refused credentials
(``PermissionError``) or a bucket that does not exist (``FileNotFoundError``),
each naming the URL.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import threading
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


# --------------------------------------------------------------------------- fsspec
#: parent groups known to exist, per store URL (saves a HEAD per completion record)
_KNOWN_GROUPS: set[tuple[str, str]] = set()
_KNOWN_LOCK = threading.Lock()


class FsspecLocation:
    """A store at a URL on an fsspec filesystem (object storage, usually)."""

    is_local = False

    def __init__(self, url: str, storage_options: dict | None = None):
        self.storage_options = dict(storage_options or {})
        self.protocol = _SCHEME.match(url).group(1).lower()
        self.url = StoreURL(url.rstrip("/") if url.rstrip("/") != f"{self.protocol}:/" else url,
                           self.storage_options)
        self._fs = None
        self.root = None
        self._filesystem_class()  # a missing or unknown filesystem fails now, before any work

    def __repr__(self):
        return f"FsspecLocation({str(self.url)!r})"

    def __reduce__(self):
        return (FsspecLocation, (str(self.url), self.storage_options))

    @property
    def lock_key(self) -> str:
        ep = self.storage_options.get("endpoint_url") or \
            (self.storage_options.get("client_kwargs") or {}).get("endpoint_url") or ""
        return f"{self.url}@{ep}"

    @property
    def bucket(self) -> str | None:
        return self.fs_root().split("/")[0] if self.protocol in BUCKET_PROTOCOLS else None

    def _filesystem_class(self):
        import fsspec

        try:
            return fsspec.get_filesystem_class(self.protocol)
        except ImportError as exc:
            pkg = _PACKAGES.get(self.protocol)
            hint = (f"pip install 'sketchla[{'s3' if pkg == 's3fs' else 'cloud'}]' (or {pkg})" if pkg
                    else "install the fsspec filesystem package for it")
            raise ImportError(f"store URL {str(self.url)!r}: no filesystem for '{self.protocol}://' is installed "
                              f"({exc}); {hint}") from exc
        except ValueError as exc:
            raise ValueError(f"store URL {str(self.url)!r}: no fsspec filesystem knows the scheme "
                             f"'{self.protocol}://' ({exc})") from exc

    @property
    def fs(self):
        if self._fs is None:
            import fsspec

            # no listing cache: records are written by other processes (workers), and a cached
            # listing would hide them (a stale size or existence) from this one
            opts = {"use_listings_cache": False, **self.storage_options}
            with self.errors("connecting"):
                fs, root = fsspec.core.url_to_fs(str(self.url), **opts)
            self._fs, self.root = fs, root.rstrip("/")
        return self._fs

    def fs_root(self) -> str:
        self.fs  # noqa: B018 (sets root)
        return self.root

    def join(self, rel: str = "") -> str:
        root = self.fs_root()
        return f"{root}/{rel}" if rel else root

    # -- Zarr
    def zarr_store(self, read_only: bool = False):
        from zarr.storage import FsspecStore

        with self.errors("opening with Zarr"):
            return FsspecStore.from_url(str(self.url), storage_options=dict(self.storage_options) or None,
                                        read_only=read_only)

    # -- errors
    @contextlib.contextmanager
    def errors(self, doing: str = ""):
        """Translate what the filesystem raises for a bad endpoint, credentials or
        bucket into a clear error naming the URL (other errors pass unchanged)."""
        try:
            yield
        except (ImportError, ValueError, TypeError, KeyError):
            raise
        except Exception as exc:
            new = _translate(exc, str(self.url), self.bucket if self._fs is not None else None, doing)
            if new is None:
                raise
            raise new from exc

    # -- the store as a whole
    def probe(self) -> list[str]:
        """Reach the store: list its top level (names, ``[]`` if it does not exist yet).

        Fails with a clear error naming the URL if the endpoint cannot be
        reached, the credentials are missing or refused, or the bucket does
        not exist; nothing is written.
        """
        fs = self.fs
        with self.errors("reaching the store"):
            fs.invalidate_cache(self.join())
            try:
                entries = fs.ls(self.join(), detail=False)
            except FileNotFoundError:
                entries = []
                b = self.bucket
                if b is not None and not fs.exists(b):
                    raise FileNotFoundError(errno.ENOENT, f"bucket {b!r} does not exist", b) from None
        root = self.join()
        return [e[len(root) + 1:] if e.startswith(root + "/") else e.rsplit("/", 1)[-1]
                for e in entries if e.rstrip("/") != root]

    def exists(self, rel: str) -> bool:
        with self.errors():
            return self.fs.exists(self.join(rel))

    def foreign_entries(self) -> list[str]:
        return [e for e in self.probe() if not e.endswith(".partial")]

    def check_writable(self) -> None:
        """Reaching the store is checked by :meth:`probe`; write permission shows at the
        first write (creating the store or taking its lock), still before any work."""
        self.probe()

    def create_group_exclusive(self, attributes: dict) -> bool:
        """Create the root ``zarr.json`` unless one exists (a conditional write where the store offers one)."""
        with self.errors("creating the store"):
            return self.create_exclusive("zarr.json", group_json_bytes(attributes)) is not None

    def remove_all(self, keep: str | None = None) -> None:
        """Delete every object of the store (the root metadata first: it stops being a
        store at once); ``keep``: a top-level folder to leave (the lock, while it is held)."""
        with self.errors("deleting the store"):
            self.delete("zarr.json")
            objs = [o for o in self._find("") if keep is None or not o.startswith(self.join(keep) + "/")]
            if objs:
                self.fs.rm(objs)
        with _KNOWN_LOCK:
            for k in [k for k in _KNOWN_GROUPS if k[0] == self.lock_key]:
                _KNOWN_GROUPS.discard(k)

    # -- single objects, with conditions where the store offers them
    @property
    def conditional_writes(self) -> bool:
        """Whether this filesystem is driven with real conditional writes
        (S3's ``If-None-Match: *`` / ``If-Match``); else fsspec's check-then-write."""
        return type(self.fs).__module__.split(".")[0] == "s3fs"

    def read_bytes_etag(self, rel: str) -> tuple[bytes | None, str | None]:
        """``(content, version tag)`` of one object read in one request (``(None, None)``
        if it does not exist); the tag is ``None`` where the store gives none."""
        p = self.join(rel)
        with self.errors():
            try:
                if self.conditional_writes:
                    from fsspec.asyn import sync

                    bucket, key, _ = self.fs.split_path(p)
                    return sync(self.fs.loop, _s3_get, self.fs, bucket, key)
                return self.fs.cat_file(p), None
            except FileNotFoundError:
                return None, None

    def create_exclusive(self, rel: str, data: bytes) -> str | None:
        """Write ``data`` to ``rel`` only if no object is there. Returns the new
        object's tag (``""`` if unknown), or ``None`` if one existed.

        On S3 this is one conditional PUT (``If-None-Match: *``): of two
        simultaneous creates the store lets exactly one succeed. Elsewhere it is
        fsspec's check-then-write, which two simultaneous writers can both pass
        (the lease reads its record back to catch the usual case, see ``lease.py``).
        """
        p = self.join(rel)
        if not self.conditional_writes:
            if self.fs.exists(p):
                return None
            return _etag(self.fs.pipe_file(p, data))
        try:
            out = self.fs.pipe_file(p, data, mode="create")
        except FileExistsError:
            return None
        except OSError as exc:  # a refused condition that the filesystem did not map to FileExistsError
            if _precondition_failed(exc):
                return None
            raise
        return _etag(out)

    def replace_if(self, rel: str, data: bytes, etag: str | None) -> str | None:
        """Overwrite ``rel`` only if it is still the version ``etag`` (S3's ``If-Match``:
        one request). Elsewhere (or without a tag) it is written unconditionally.
        Returns the new tag, or ``None`` if the object changed meanwhile."""
        p = self.join(rel)
        if self.conditional_writes and etag:
            try:
                out = self.fs.pipe_file(p, data, IfMatch=etag)
            except (FileNotFoundError, FileExistsError):
                return None
            except OSError as exc:
                if _precondition_failed(exc):
                    return None
                raise
            return _etag(out)
        return _etag(self.fs.pipe_file(p, data))

    def delete(self, rel: str) -> None:
        with self.errors(), contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.join(rel))

    # -- records (small JSON objects)
    def read_json(self, rel: str):
        try:
            with self.errors():
                data = self.fs.cat_file(self.join(rel))
        except FileNotFoundError:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None

    def write_json(self, rel: str, obj) -> None:
        with self.errors("writing a record"):
            self.fs.pipe_file(self.join(rel), json.dumps(obj).encode())

    def ensure_groups(self, rel: str) -> None:
        from .atomic import group_json

        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            k = (self.lock_key, sub)
            if k in _KNOWN_GROUPS:
                continue
            if not self.exists(f"{sub}/zarr.json"):
                self.write_json(f"{sub}/zarr.json", group_json({}))
            with _KNOWN_LOCK:
                _KNOWN_GROUPS.add(k)

    def _find(self, rel: str, detail: bool = False):
        p = self.join(rel)
        with self.errors("listing the store"):
            self.fs.invalidate_cache(p)
            try:
                return self.fs.find(p, detail=detail)
            except FileNotFoundError:
                return {} if detail else []

    def record_names(self, rel: str) -> list[str]:
        prefix = self.join(rel) + "/"
        names = set()
        for obj in self._find(rel):
            tail = obj[len(prefix):] if obj.startswith(prefix) else None
            if tail and tail.count("/") == 1 and tail.endswith("/zarr.json") and not tail.startswith("."):
                names.add(tail.split("/")[0])
        return sorted(names)

    def subfolders(self, rel: str) -> list[str]:
        prefix = self.join(rel) + "/"
        names = set()
        for obj in self._find(rel):
            tail = obj[len(prefix):] if obj.startswith(prefix) else ""
            if "/" in tail and not tail.startswith("."):
                names.add(tail.split("/")[0])
        return sorted(names)

    def remove_record(self, rel: str) -> None:
        self.delete(f"{rel}/zarr.json")  # the record is gone in one step ...
        with self.errors(), contextlib.suppress(FileNotFoundError):
            rest = self._find(rel)
            if rest:
                self.fs.rm(rest)  # ... then anything else that was under it

    # -- chunk objects
    def sizes(self, rel: str) -> dict[str, int]:
        """``{key below rel: size}`` of every object below ``rel`` (one listing, not a request per object)."""
        prefix = self.join(rel) + "/"
        return {k[len(prefix):]: int(v.get("size") or 0) for k, v in self._find(rel, detail=True).items()
                if k.startswith(prefix)}

    def size(self, rel: str) -> int | None:
        with self.errors():
            try:
                return int(self.fs.info(self.join(rel))["size"])
            except FileNotFoundError:
                return None

    def size_crc32(self, rel: str) -> tuple[int, int] | None:
        """``(size, crc32)`` of one object, ``None`` if it does not exist.

        On S3 the CRC-32 that S3 computed and stored when the object was
        uploaded (botocore sends one with every PUT, and S3 checks it) is read
        with the object's metadata (``HEAD``, ``ChecksumMode=ENABLED``): no data
        is transferred, and a changed object has a changed checksum. Where
        there is none (other servers, older clients, multipart uploads) the
        object is read and its CRC-32 computed here.
        """
        with self.errors():
            if self.conditional_writes:
                got = self._s3_stored_crc32(rel)
                if got is not None:
                    return None if got == "missing" else got
            try:
                data = self.fs.cat_file(self.join(rel))
            except FileNotFoundError:
                return None
        return len(data), zlib.crc32(data)

    def _s3_stored_crc32(self, rel: str):
        """``(size, crc32)`` from S3's stored full-object CRC-32, ``"missing"`` for no
        object, ``None`` where S3 holds no such checksum for it."""
        import base64

        bucket, key, _ = self.fs.split_path(self.join(rel))
        try:
            head = self.fs.call_s3("head_object", Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except FileNotFoundError:
            return "missing"
        value = head.get("ChecksumCRC32")
        if not value or "-" in value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
            return None
        try:
            return int(head["ContentLength"]), int.from_bytes(base64.b64decode(value), "big")
        except (KeyError, ValueError, TypeError):
            return None


async def _s3_get(fs, bucket: str, key: str):
    resp = await fs._call_s3("get_object", Bucket=bucket, Key=key)
    body = resp["Body"]
    try:
        data = await body.read()
    finally:
        body.close()
    return data, resp.get("ETag")


def _etag(resp) -> str:
    if isinstance(resp, dict):
        return resp.get("ETag") or ""
    return ""


def _precondition_failed(exc: BaseException) -> bool:
    text = str(exc)
    return "PreconditionFailed" in text or "pre-conditions you specified did not hold" in text or "412" in text


def _translate(exc: BaseException, url: str, bucket, doing: str):
    """A clear error naming ``url`` for an unreachable endpoint, missing or refused
    credentials or a missing bucket; ``None`` to let ``exc`` pass unchanged."""
    where = f"store URL {url!r}" + (f" ({doing})" if doing else "")
    names = {c.__name__ for c in type(exc).__mro__}
    text = str(exc)
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionClosedError",
                "ServerDisconnectedError", "ConnectionError", "ConnectionRefusedError", "TimeoutError"} \
            or (isinstance(exc, OSError) and exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH,
                                                            errno.ENETUNREACH, errno.ETIMEDOUT)):
        return ConnectionError(f"{where}: cannot reach the object store: {text} (check endpoint_url / the "
                               "network, and that the server is running)")
    if "NoCredentialsError" in names or "Unable to locate credentials" in text:
        return PermissionError(f"{where}: no credentials were found: {text}; pass them in storage_options "
                               "(e.g. {'key': ..., 'secret': ...}) or set them in the environment "
                               "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role)")
    if isinstance(exc, PermissionError) or names & {"ClientError", "NoAuthTokenError"} and \
            any(s in text for s in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden")):
        return PermissionError(f"{where}: access denied: {text} (check the credentials and the bucket's policy)")
    if isinstance(exc, FileNotFoundError) and ("bucket" in text.lower() and "not exist" in text.lower()):
        b = f" {bucket!r}" if bucket else ""
        return FileNotFoundError(errno.ENOENT, f"{where}: the bucket{b} does not exist ({text}); create it first")
    return None
