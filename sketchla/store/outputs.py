"""Zarr arrays at a path or URL that are not run stores: the ``out=`` of the
streaming routines (``sketchla.tsqr``), on object storage too.

:func:`url_output` opens or creates the array at a URL with its
``storage_options``, after reaching the store (clear errors naming the URL for
a missing filesystem, an unreachable endpoint, missing credentials or bucket;
see ``location.py``), so a bad ``out=`` fails before any work. A ``file://``
URL comes back as its local path, for the caller's local-path code.
"""
from __future__ import annotations

import zarr

from .arrays import write_every_chunk
from .location import is_url, resolve

__all__ = ["url_output"]


def url_output(out, shape, dtype, chunk_rows: int, name: str = "out", storage_options: dict | None = None):
    """The writable Zarr array at the URL ``out`` (created with chunks
    ``(chunk_rows, n)``, no compressor, if nothing is there; an existing array is
    returned for the caller to check), or ``out`` as a local path string if it
    is one (``file://`` URLs included)."""
    if not is_url(out) and not storage_options:
        return out
    loc = resolve(out, storage_options)
    if loc.is_local:
        return loc.path
    url = str(loc.url)
    shape = tuple(int(s) for s in shape)
    with loc.errors(f"opening {name}"):
        loc.probe()
        exists = loc.exists("zarr.json")
        if exists:
            try:
                return write_every_chunk(zarr.open_array(store=loc.zarr_store(), mode="r+"))
            except (ConnectionError, PermissionError):
                raise
            except Exception as exc:
                raise ValueError(f"{name}={url!r} exists and is not a writable Zarr array ({exc}); "
                                 "give a new path or a zarr.Array") from exc
        chunks = (max(1, min(chunk_rows, shape[0])),) + shape[1:]
        try:
            return write_every_chunk(zarr.create_array(store=loc.zarr_store(), shape=shape, chunks=chunks,
                                                       dtype=dtype, compressors=None, fill_value=0.0))
        except (ConnectionError, PermissionError):
            raise
        except Exception as exc:
            raise ValueError(f"cannot create {name} at {url!r}: {exc}") from exc
