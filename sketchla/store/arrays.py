"""The run's Zarr arrays (``<path>/<name>``): how they are encoded, written and reopened.

Every array made by :meth:`RunStore.array <sketchla.store.RunStore.array>`
stores a CRC-32C of each encoded chunk (Zarr's ``crc32c`` codec), so a
damaged chunk that reaches a read raises instead of decoding garbage. Chunks
are not compressed (sketches are dense noise) and every chunk is written even
when it equals the fill value (skipping those needs a full comparison of each
chunk on every write). ``benchmarks/sketch_io.py`` measures both against the
former Zstandard level 0 store: writing a 134,154 x 256 float32 sketch took
0.70x the time and reading it 0.62x, for 1.32x the bytes on disk (most of that
the padding of the last, partial row chunk, which Zstandard compressed away; a
constant of at most one row chunk per column chunk).

An array is reopened only with the shape, chunks, dtype and attributes it was
made with (:func:`check_array`).
"""
from __future__ import annotations

import numpy as np
import zarr

from .errors import StoreMismatchError
from .layout import mismatch_message

__all__ = ["compressors", "write_every_chunk", "create_array", "check_array"]


def compressors():
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


def create_array(group: zarr.Group, name: str, shape: tuple, chunks: tuple, dtype: np.dtype,
                 attrs: dict | None) -> zarr.Array:
    """Make the array ``name`` in ``group`` with the store's encoding and JSON ``attrs``."""
    arr = group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=0,
                             compressors=compressors())
    if attrs:
        arr.attrs.update(attrs)
    return write_every_chunk(arr)


def check_array(node, where: str, name: str, shape: tuple, chunks: tuple, dtype: np.dtype,
                attrs: dict | None) -> zarr.Array:
    """The existing ``node`` (``name`` in the store at ``where``) for writing, if it
    is an array with this ``shape``, ``chunks``, ``dtype`` and (if given) ``attrs``;
    else :class:`StoreMismatchError`."""
    if not isinstance(node, zarr.Array):
        raise StoreMismatchError(f"{name!r} in {where!r} is a group, not an array")
    got = (tuple(node.shape), tuple(node.chunks), np.dtype(node.dtype))
    if got != (shape, chunks, dtype):
        raise StoreMismatchError(
            f"array {name!r} in {where!r} has shape/chunks/dtype {got[0]}/{got[1]}/{got[2]}, "
            f"requested {shape}/{chunks}/{dtype}"
        )
    if attrs is not None:
        stored = {k: node.attrs.get(k) for k in attrs}
        if stored != attrs:
            raise StoreMismatchError(mismatch_message(f"{where}/{name}", stored, attrs, store=where))
    return write_every_chunk(node)
