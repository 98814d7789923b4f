"""Files the experiments write and check: JSON replaced atomically, content digests.

* :func:`write_json` — ``obj`` as indented JSON, written through a temporary
  file and ``os.replace`` (a crash never leaves half a file); NumPy values
  and paths are converted by :func:`json_default`.
* :func:`file_digest` — SHA-256 of a file's bytes: what names a checkpoint or
  a stored Hessian sample in recipes, caches and SEIGH store names.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import sketchla as sk

__all__ = ["json_default", "write_json", "file_digest"]


def json_default(o):
    """``default=`` hook of :func:`json.dumps`: paths as strings, NumPy values as
    :func:`sketchla.json_default` converts them for run stores."""
    if isinstance(o, Path):
        return str(o)
    return sk.json_default(o)


def write_json(path, obj) -> None:
    """Write ``obj`` to ``path`` through a temporary file and ``os.replace``: a crash
    never leaves a half-written JSON file behind."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=json_default, allow_nan=True))
    os.replace(tmp, path)


def file_digest(path) -> str:
    """SHA-256 (hex) of a file's bytes (a mnist16 checkpoint is ~30 KB, a ResNet-18 one ~47 MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
