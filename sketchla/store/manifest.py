"""Chunk-file manifests: what a record promises about the files it covers, and their check.

A manifest is ``{chunk key: [size in bytes, crc32] or None}`` for the chunk
files of one array (``None``: no file; arrays made by the store write every
chunk, but a store may hold arrays written by others with Zarr's default of
skipping chunks equal to the fill value). Completion records carry the
manifest of their chunk, stage records that of every chunk of the arrays the
stage wrote (see ``records.py``, where manifests are stored).

:func:`check_manifest` compares the files with one: ``verify="size"`` stats
them (missing, truncated or extended files; microseconds per chunk),
``verify="full"`` also re-reads them and compares the CRC-32 (any changed
byte).
"""
from __future__ import annotations

import itertools
import os
import zlib

__all__ = ["VERIFY_LEVELS", "check_verify", "chunk_manifest", "array_manifest", "check_manifest"]

#: verification levels of the chunk-file manifests (see the module docstring)
VERIFY_LEVELS = ("size", "full")


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


def array_manifest(store_path: str, name: str, arr) -> dict:
    """Manifest of every chunk of ``arr`` and of its metadata (``zarr.json``)."""
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
