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
byte). On object storage (a store at a URL, ``location.py``) the sizes come
from one listing of the array's objects and the CRCs from the store: on S3
the CRC-32 it computed and checked at upload (read with the object's
metadata), elsewhere by reading the object.

Manifests are read from the store and so are untrusted: an entry whose key is
not a chunk key inside the array (``../../etc/passwd``, an absolute path) or
whose value is not ``[size, crc32]`` is reported as a problem and never
opened.
"""
from __future__ import annotations

import itertools
import numbers

from .location import as_location, key_parts

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


def _file_entry(loc, rel: str):
    """Manifest entry of one chunk file: ``[size, crc32]``, or ``None`` if it does not exist."""
    got = loc.size_crc32(rel)
    return None if got is None else [got[0], got[1]]


def chunk_manifest(store_path, name: str, arr, coords) -> dict:
    """Manifest ``{chunk key: [size, crc32] | None}`` of the chunks ``coords`` of
    array ``name`` (Zarr array ``arr``) in the store at ``store_path`` (a path or URL)."""
    loc = as_location(store_path)
    enc = arr.metadata.encode_chunk_key
    out = {}
    for c in coords:
        key = enc(tuple(int(i) for i in c))
        out[key] = _file_entry(loc, f"{name}/{key}")
    return out


def array_manifest(store_path, name: str, arr) -> dict:
    """Manifest of every chunk of ``arr`` and of its metadata (``zarr.json``)."""
    out = chunk_manifest(store_path, name, arr, itertools.product(*(range(n) for n in arr.cdata_shape)))
    out["zarr.json"] = _file_entry(as_location(store_path), f"{name}/zarr.json")
    return out


def _valid_entry(want) -> bool:
    """``None`` or ``[size >= 0, crc32 or None]`` (as :func:`_file_entry` writes them)."""
    if want is None:
        return True
    if not isinstance(want, (list, tuple)) or len(want) != 2:
        return False
    size, crc = want
    ints = (numbers.Integral,)
    return (isinstance(size, ints) and not isinstance(size, bool) and size >= 0
            and (crc is None or (isinstance(crc, ints) and not isinstance(crc, bool))))


def check_manifest(store_path, name: str, files, level: str, sizes=None) -> list[str]:
    """Problems (human-readable, empty if none) of the files of ``name`` against ``files``.

    ``level="size"`` compares each file's size; ``"full"`` also its CRC-32.
    ``sizes``: ``{chunk key: size}`` of the array's objects from one listing
    (object stores); by default a local store stats each file and an object
    store lists the array's objects once per call. Entries that are not chunk
    keys inside the array, or malformed, are problems and are not opened.
    """
    loc = as_location(store_path)
    if not isinstance(files, dict):
        return [f"{name}: its manifest is malformed ({type(files).__name__}, not a mapping)"]
    if sizes is None:
        sizes = loc.sizes(name)  # None for a local store: stat each file
    problems = []
    for key, want in files.items():
        if key_parts(key) is None:
            problems.append(f"{name}: manifest entry {key!r} is not a chunk key inside the store; not checked")
            continue
        if not _valid_entry(want):
            problems.append(f"{name}/{key}: malformed manifest entry {want!r}")
            continue
        rel = f"{name}/{key}"
        size = loc.size(rel) if sizes is None else sizes.get(key)
        if want is None:  # no file was written (chunk equal to the fill value)
            if size is not None:
                problems.append(f"{name}/{key} exists but no file was written for this chunk")
            continue
        if size is None:
            problems.append(f"{name}/{key} is missing")
            continue
        if size != want[0]:
            problems.append(f"{name}/{key} has {size} bytes, {want[0]} were written")
        elif level == "full" and want[1] is not None:
            got = loc.size_crc32(rel)
            if got is None:
                problems.append(f"{name}/{key} is missing")
            elif got[1] != want[1]:
                problems.append(f"{name}/{key} fails its CRC-32 checksum (contents changed)")
    return problems
