"""Atomic file operations that every record of a store is written and removed with.

A reader sees a record whole or not at all: JSON is written to a temporary
file beside its target and renamed into place (:func:`write_json_atomic`), a
new store's root metadata is created exclusively by a hard link
(:func:`create_group_exclusive`), and a record folder is renamed away before it
is deleted (:func:`remove_dir`). Temporary files end in ``.partial``. This is
the one module that touches the file system for the records, the lock and the
root metadata (Zarr itself writes the arrays).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid

__all__ = ["group_json", "write_json_atomic", "write_group_atomic", "ensure_group_json", "read_json",
           "remove_dir", "rmtree_quiet", "create_group_exclusive"]


def group_json(attributes: dict) -> dict:
    """The ``zarr.json`` of a Zarr v3 group with ``attributes``."""
    return {"attributes": attributes, "zarr_format": 3, "node_type": "group"}


def write_json_atomic(path: str, obj) -> None:
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


def write_group_atomic(folder: str, attributes: dict) -> None:
    """Make ``folder`` a Zarr v3 group with ``attributes`` in one atomic write of its ``zarr.json``."""
    write_json_atomic(os.path.join(folder, "zarr.json"), group_json(attributes))


def ensure_group_json(root: str, rel: str) -> None:
    """Make ``root/rel`` and its parents up to ``root`` Zarr v3 groups (if they are not yet)."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        p = os.path.join(root, *parts[:i], "zarr.json")
        if not os.path.exists(p):
            write_json_atomic(p, group_json({}))


def read_json(path: str):
    """Parsed JSON at ``path``, or ``None`` if it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def remove_dir(path: str, new_name: str) -> None:
    """Atomically move ``path`` out of the way (to ``new_name`` beside it), then delete it."""
    gone = os.path.join(os.path.dirname(path), new_name)
    os.rename(path, gone)
    shutil.rmtree(gone, ignore_errors=True)


def rmtree_quiet(path: str) -> None:
    """Remove a record directory atomically (rename first, so no half-removed record is seen)."""
    if os.path.isdir(path):
        with contextlib.suppress(FileNotFoundError):
            remove_dir(path, f".{os.path.basename(path)}.{uuid.uuid4().hex}.removed")


def create_group_exclusive(path: str, attributes: dict) -> bool:
    """Create the root ``zarr.json`` of a group with its attributes in one atomic,
    exclusive step (a hard link of a complete temporary file). ``False`` if a
    ``zarr.json`` appeared there first (another process created the store)."""
    os.makedirs(path, exist_ok=True)
    target = os.path.join(path, "zarr.json")
    tmp = os.path.join(path, f".zarr.json.{uuid.uuid4().hex}.partial")
    with open(tmp, "w") as f:
        json.dump(group_json(attributes), f)
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
