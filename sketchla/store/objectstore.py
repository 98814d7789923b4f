"""A store at a URL on an fsspec filesystem (object storage, usually): :class:`FsspecLocation`.

The counterpart of :class:`~sketchla.store.location.LocalLocation` (see
``location.py`` for what both offer and when each is used). Here:

* every record is one object written in one PUT (atomic on object stores);
  folders are key prefixes, listed with ``find`` (never from a cached
  listing: other processes write records);
* sizes come from one listing per array, CRC-32s from S3's stored checksum
  (``HEAD``) or, elsewhere, from reading the object;
* conditional writes (S3's ``If-None-Match: *`` and ``If-Match``) for the
  lease (``lease.py``); other filesystems are driven with check-then-write;
* what the filesystem raises for an unreachable endpoint, missing or refused
  credentials or a missing bucket becomes a clear error naming the URL
  (:meth:`FsspecLocation.errors`), before any work when a store is opened
  (:meth:`FsspecLocation.probe`).
"""
from __future__ import annotations

import contextlib
import errno
import json
import threading
import zlib

from .location import _PACKAGES, _SCHEME, BUCKET_PROTOCOLS, StoreURL, group_json_bytes

__all__ = ["FsspecLocation"]


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
