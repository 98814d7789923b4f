"""Row-band reads of a run store's own arrays straight from their chunk files (issue 18.5).

The streamed passes (TSQR, thin products, ``Q U``) read bands of rows across
all columns of a sketch whose Zarr chunks are ``(row_block, chunk)`` with a
measurement's few columns (``chunk`` = 4 in ``benchmarks/seigh_scale.py``):
a band of a 512-column sketch is 128 chunk files. Through Zarr's array API
such a band takes 1.36–1.45× the time of this module's read, CRC-32C checked
as Zarr does (``benchmarks/sketch_io.py`` Table 3, same run, 2-core project
machine: 1.14 vs 1.55 GB/s for 524,288 × 512 float32 in 2^15 × 4 chunks).

:func:`read_region` reads the chunk files itself where it knows their exact
encoding — the encoding :func:`.arrays.create_array` gives every array of a
run store: Zarr v3, little-endian raw bytes in C order followed by a CRC-32C
(Zarr's ``bytes`` + ``crc32c`` codecs), default chunk keys, on a local file
system — and calls ``array[rows, cols]`` for anything else (object stores,
compressed or foreign arrays). The result is the same: the same bytes
decoded, a chunk whose CRC-32C does not match raises ``ValueError`` with
Zarr's message (``"... checksum do not match ..."``), and a chunk file that
does not exist reads as the fill value, as in Zarr.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["read_region"]


def _layout(array):
    """``(directory of the array, metadata)`` where :func:`read_region` may read the files, else None."""
    try:
        from zarr.codecs import BytesCodec, Crc32cCodec
        from zarr.storage import LocalStore

        meta = array.metadata
        if getattr(meta, "zarr_format", None) != 3 or not isinstance(array.store, LocalStore) or array.ndim != 2:
            return None
        codecs = tuple(meta.codecs)
        if len(codecs) != 2 or not isinstance(codecs[0], BytesCodec) or not isinstance(codecs[1], Crc32cCodec):
            return None
        endian = getattr(codecs[0].endian, "value", codecs[0].endian)
        dtype = np.dtype(array.dtype)
        if endian not in (None, "little") or dtype.byteorder == ">" or dtype.hasobject:
            return None
        if type(meta.chunk_key_encoding).__name__ != "DefaultChunkKeyEncoding":
            return None
        return os.path.join(str(array.store.root), array.path), meta
    except (AttributeError, ImportError, TypeError):
        return None


def read_region(array, rows: slice, cols: slice) -> np.ndarray:
    """``array[rows, cols]`` (contiguous slices, step 1) as a C-ordered NumPy array.

    Read from the chunk files directly where :func:`_layout` allows (module
    docstring), else through Zarr.
    """
    layout = _layout(array)
    if layout is None:
        return array[rows, cols]
    import google_crc32c

    root, meta = layout
    D, n = (int(s) for s in array.shape)
    r0, r1, _ = rows.indices(D)
    c0, c1, _ = cols.indices(n)
    r1, c1 = max(r0, r1), max(c0, c1)
    cr, cc = (int(s) for s in array.chunks)
    dtype = np.dtype(array.dtype).newbyteorder("<")
    out = np.empty((r1 - r0, c1 - c0), dtype=np.dtype(array.dtype))
    size = cr * cc * dtype.itemsize
    for i in range(r0 // cr, -(-r1 // cr)):
        a0, a1 = max(r0, i * cr), min(r1, (i + 1) * cr)
        for j in range(c0 // cc, -(-c1 // cc)):
            b0, b1 = max(c0, j * cc), min(c1, (j + 1) * cc)
            dest = out[a0 - r0:a1 - r0, b0 - c0:b1 - c0]
            path = os.path.join(root, *meta.encode_chunk_key((i, j)).split("/"))
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                dest[...] = meta.fill_value
                continue
            body = np.frombuffer(data, dtype=np.uint8)
            if body.size != size + 4:
                raise ValueError(f"chunk {path} holds {body.size} bytes, expected {size + 4} "
                                 f"({cr}×{cc} {dtype} and a CRC-32C)")
            stored = bytes(body[-4:])
            computed = np.uint32(google_crc32c.value(body[:-4])).tobytes()
            if computed != stored:
                raise ValueError(f"Stored and computed checksum do not match. Stored: {stored!r}. "
                                 f"Computed: {computed!r}. (chunk file {path})")
            chunk = body[:-4].view(dtype).reshape(cr, cc)
            dest[...] = chunk[a0 - i * cr:a1 - i * cr, b0 - j * cc:b1 - j * cc]
    return out
