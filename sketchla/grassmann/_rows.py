"""Gather a few rows of a tall D×n basis without touching the others.

Used by the mask metrics (paper Eq. 3 only needs the rows a mask selects) so
that a Dask- or Zarr-backed eigenbasis with millions of rows is never loaded:
only the chunks holding the requested rows are read.
"""
from __future__ import annotations

import numpy as np

from ._validate import is_dask, is_zarr, to_host


def gather_rows(Q, rows: np.ndarray, ncols: int) -> np.ndarray:
    """Return ``Q[rows, :ncols]`` as a float64 NumPy array, rows in the given order.

    Parameters
    ----------
    Q : (D, n) NumPy, CuPy, Dask or Zarr array
    rows : (m,) int64 NumPy array of distinct indices in [0, D)
    ncols : int, 1 <= ncols <= n

    Returns
    -------
    (m, ncols) float64 ndarray on the host. Memory: O(m·ncols) plus, for
    Dask/Zarr, one chunk at a time.
    """
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    srt = rows[order]
    if is_zarr(Q):
        block = _gather_zarr(Q, srt, ncols)
    elif is_dask(Q):
        block = Q[srt, :ncols].compute()
    else:
        from ..backend import get_array_module

        xp = get_array_module(Q)
        block = Q[xp.asarray(srt), :ncols]
    block = to_host(block).astype(np.float64, copy=False)
    out = np.empty_like(block)
    out[order] = block
    return out


def _gather_zarr(Q, srt: np.ndarray, ncols: int) -> np.ndarray:
    """Sorted rows from a Zarr array, one row-chunk at a time.

    A single ``oindex`` over rows spread across all chunks lets Zarr decode
    every chunk concurrently (peak memory ≈ the whole array); reading chunk
    by chunk keeps the peak at one chunk.
    """
    step = int(Q.chunks[0])
    which = srt // step
    cuts = np.flatnonzero(np.diff(which)) + 1
    parts = [np.asarray(Q.oindex[grp, slice(0, ncols)]) for grp in np.split(srt, cuts)]
    return np.concatenate(parts, axis=0)
