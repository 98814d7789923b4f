"""``Lᵀ Y`` of a freshly measured column block, inside its measurement task (issue 18.4).

SEIGH's inner sketch ``M_I = Υᵀ Y`` (paper Alg. 2 line 2) needs the
inner-only columns of ``Y = A Ω`` only through ``Υᵀ``. Projecting them where
they are measured stores ``n_I`` numbers per column instead of ``D``
(:func:`sketchla.measure` with ``project=Υ``): the store of a single-pass run
then holds ``D · n_O`` numbers of sketch plus ``O(n_I²)``.

:func:`project_columns` computes ``L[:, :]ᵀ Y`` for the ``D × c`` block ``Y``
of the columns ``[col0, col0 + c)``, drawing the generated ``D × m`` factor
``L`` (a :class:`~sketchla.random.TestMatrix`) in row tiles of
:data:`~sketchla.random.TILE_ROWS` and column slabs of :data:`SLAB` columns,
each once per call. Cost per call: ``D · m`` numbers drawn and ``2 · D · m ·
c'`` flops (``c'``: ``c`` rounded out to whole groups); memory beside the
block: one ``TILE_ROWS × SLAB`` slab, one zero-padded ``TILE_ROWS × c'``
tile of the block and the ``m × c'`` result.

Bitwise reproducibility: every GEMM has one fixed shape — a tile of rows, a
slab of ``L``'s columns at fixed (absolute) positions, and a group of
:data:`GROUP` columns of ``Y`` at fixed (absolute) positions, zero-padded at
the block's edges — and the per-tile products are summed in float64 in tile
order. A column's result therefore does not depend on which other columns
share its task (the chunking) nor on the worker that ran it.
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module
from .random import TILE_ROWS

#: columns of ``L`` drawn and multiplied at a time (a slab: ``TILE_ROWS × SLAB`` numbers)
SLAB = 256
#: columns of ``Y`` per GEMM, at absolute positions ``[k·GROUP, (k+1)·GROUP)``
GROUP = 16


def project_columns(left, Y, col0: int, *, xp=None):
    """``leftᵀ Y`` (``m × c``, float64) for the block ``Y`` (``D × c``) of columns ``[col0, col0 + c)``.

    ``left``: a generated ``D × m`` factor with ``block(rows, cols, xp)``
    (:class:`~sketchla.random.TestMatrix`); ``Y``: NumPy or CuPy, the GEMMs in
    ``Y``'s dtype (``left`` is cast to it), the sums in float64. ``xp`` defaults
    to ``Y``'s array module.
    """
    xp = get_array_module(Y) if xp is None else xp
    D, c = (int(s) for s in Y.shape)
    m = int(left.shape[1])
    if int(left.shape[0]) != D:
        raise ValueError(f"left has {left.shape[0]} rows, the block {D}")
    g0 = (col0 // GROUP) * GROUP
    width = -(-(col0 + c - g0) // GROUP) * GROUP
    out = xp.zeros((m, width), dtype=xp.float64)
    rows = xp.zeros((min(D, TILE_ROWS), width), dtype=Y.dtype, order="F")  # one tile, zero-padded
    for r0 in range(0, D, TILE_ROWS):
        r1 = min(D, r0 + TILE_ROWS)
        if r1 - r0 != rows.shape[0]:
            rows = xp.zeros((r1 - r0, width), dtype=Y.dtype, order="F")
        rows[:, col0 - g0:col0 - g0 + c] = Y[r0:r1]
        for s0 in range(0, m, SLAB):
            s1 = min(m, s0 + SLAB)
            slab = left.block(slice(r0, r1), slice(s0, s1), xp=xp).astype(Y.dtype, copy=False)
            for k in range(0, width, GROUP):
                out[s0:s1, k:k + GROUP] += (slab.T @ rows[:, k:k + GROUP]).astype(xp.float64)
    return out[:, col0 - g0:col0 - g0 + c]


def projection_cost(left, c: int, *, rows: int | None = None, xp=np) -> float:
    """Seconds :func:`project_columns` takes for a ``D × c`` block, timed on one tile of rows.

    Draws one ``TILE_ROWS``-row tile of ``left`` (all its columns) and multiplies
    it with ``c`` columns, then scales by the number of tiles. The estimate the
    ``inner_sketch="auto"`` rule of :func:`sketchla.seigh` weighs against the
    operator's cost.
    """
    import time

    D, m = (int(s) for s in left.shape)
    rows = min(D, TILE_ROWS) if rows is None else int(rows)
    probe = _TileOf(left, rows)
    Y = xp.ones((rows, c), dtype=left.dtype, order="F")
    t0 = time.perf_counter()
    project_columns(probe, Y, 0, xp=xp)
    return (time.perf_counter() - t0) * (D / rows)


class _TileOf:
    """The first ``rows`` rows of a generated factor, with its ``block`` interface."""

    def __init__(self, left, rows: int):
        self.left, self.shape, self.dtype = left, (rows, int(left.shape[1])), left.dtype

    def block(self, rows, cols, xp=None):
        return self.left.block(rows, cols, xp=xp)
