"""How streamed work is cut into blocks: one :class:`BlockPlan` per run.

Every streaming routine works on blocks, and one decision fixes their sizes
(the memory rule: a task holds ``O(row_block · n + n²)`` numbers whatever
``D`` is). A :class:`BlockPlan` holds it, with one name per quantity:

``chunk``
    Columns per measurement task (:func:`sketchla.measure`): each task
    measures ``op @ test[:, j0:j0 + chunk]`` and writes whole Zarr chunks of
    that width. The user-facing ``chunk=`` of ``measure``/``seigh``/``ssvd``.
``row_block``
    Rows per block: the Zarr row chunk of the thin ``D × n`` arrays a run
    stores (sketches, ``Q``), and the height of the row blocks that TSQR and
    the thin products stream over them — equal, since Zarr decodes whole
    chunks (a shorter block would decode each chunk again, once per block
    that touches it). The user-facing
    ``row_block=`` of ``measure`` and ``block_rows=`` of ``tsqr``/``lstsq``/
    ``inner``/``matmul``.
``block_bytes``
    The one byte budget (default :data:`BLOCK_BYTES`, 64 MiB): how much one
    block of a task may hold. Unset ``chunk`` and ``row_block`` are derived
    from it (the methods below say how).

A run fixes its plan once (:meth:`BlockPlan.for_sketch`): from the caller's
arguments and these defaults, or — when the store already holds the sketch —
from that array's chunks, and hands the same plan to the measurement, the QR
and the thin products.
"""
from __future__ import annotations

import dataclasses
import numbers

import numpy as np

__all__ = ["BlockPlan", "BLOCK_BYTES", "MAX_CHUNK", "SKETCH_ROW_BLOCK", "MEASURE_BLOCKS", "check_count"]

#: the default byte budget of one block
BLOCK_BYTES = 64 * 2**20
#: most columns per measurement task by default (keeps resume granularity and parallelism)
MAX_CHUNK = 64
#: default row block of a stored sketch: the block height the streaming passes pick for a
#: few hundred float32 columns, and a divisor of the test-matrix tile (2**16 rows)
SKETCH_ROW_BLOCK = 2**15
#: a measurement task holds its test block and the operator's output, each up to two budgets
#: (float64 bound: the block as generated or returned, and its converted copy)
MEASURE_BLOCKS = 4


def check_count(value, argname: str, what: str) -> int:
    """``value`` as a positive int: ``TypeError`` for a non-integer, ``ValueError`` below 1,
    each naming ``argname`` (and ``what`` it counts)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argname} must be a positive int or None, got {value!r} ({what})")
    if value < 1:
        raise ValueError(f"{argname} must be >= 1, got {value} ({what})")
    return int(value)


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    """Block sizes of one run; ``None`` fields are derived from ``block_bytes``.

    Parameters
    ----------
    chunk : columns per measurement task, or ``None``.
    row_block : rows per block (stored thin arrays' row chunks and streamed
        blocks), or ``None``.
    block_bytes : the byte budget of one block.
    """

    chunk: int | None = None
    row_block: int | None = None
    block_bytes: int = BLOCK_BYTES

    def __post_init__(self):
        if self.chunk is not None:
            object.__setattr__(self, "chunk", check_count(self.chunk, "chunk", "columns per measurement task"))
        if self.row_block is not None:
            object.__setattr__(self, "row_block", check_count(self.row_block, "row_block", "rows per block"))
        object.__setattr__(self, "block_bytes", check_count(self.block_bytes, "block_bytes", "bytes per block"))

    # -- measurements (paper Alg. 1 lines 1-3, Alg. 2 lines 1-2) --------------
    def measure_chunk(self, D_in: int, D_out: int, n: int) -> int:
        """Columns per measurement task of ``op @ test`` (``test``: ``D_in × n``, output ``D_out × n``).

        ``chunk`` if set; else as many as keep the test block and the output
        (float64 bound) within :data:`MEASURE_BLOCKS` budgets, at most
        :data:`MAX_CHUNK`. Never more than ``n``, never below 1.
        """
        if self.chunk is not None:
            return min(self.chunk, int(n))
        per_col = 8 * (int(D_in) + int(D_out))
        return int(max(1, min(n, MAX_CHUNK, MEASURE_BLOCKS * self.block_bytes // max(per_col, 1))))

    def sketch_row_block(self, D_out: int) -> int:
        """Row chunk of a stored ``D_out × n`` sketch: ``row_block`` or :data:`SKETCH_ROW_BLOCK`, at most ``D_out``."""
        return int(min(self.row_block or SKETCH_ROW_BLOCK, D_out))

    def for_sketch(self, D_in: int, D_out: int, n: int, existing=None) -> "BlockPlan":
        """This plan with ``chunk`` and ``row_block`` fixed for measuring a ``D_out × n`` sketch.

        ``existing``: the sketch a store already holds (a Zarr array); its
        chunks fill what this plan leaves unset, so a resumed run keeps the
        blocking it started with.
        """
        chunk, row_block = self.chunk, self.row_block
        if existing is not None and hasattr(existing, "chunks"):
            chunk = existing.chunks[1] if chunk is None else chunk
            row_block = existing.chunks[0] if row_block is None else row_block
        plan = dataclasses.replace(self, chunk=chunk, row_block=row_block)
        return dataclasses.replace(plan, chunk=plan.measure_chunk(D_in, D_out, n),
                                   row_block=plan.sketch_row_block(D_out))

    # -- streamed passes over thin arrays (linalg) ----------------------------
    def budget_rows(self, n_cols: int, itemsize: int) -> int:
        """Rows of an ``n_cols``-wide block of ``itemsize``-byte numbers that fit one budget (≥ 1)."""
        return max(1, self.block_bytes // max(1, int(n_cols) * int(itemsize)))

    def stream_rows(self, n_cols: int, itemsize: int, *, n_rows: int | None = None,
                    align: int | None = None) -> int:
        """Rows per streamed block of a ``D × n_cols`` pass: ``row_block`` if set, else
        :meth:`budget_rows`, at least ``n_cols`` (so a block's R factor is square), rounded
        down to a multiple of ``align`` (the input's Zarr chunk height) when that is
        smaller, and at most ``n_rows``."""
        if self.row_block is not None:
            return self.row_block
        rows = max(self.budget_rows(n_cols, itemsize), int(n_cols), 1)
        if align and align < rows:
            rows = (rows // align) * align
        if n_rows is not None:
            rows = min(rows, max(int(n_rows), 1))
        return int(rows)

    def budget_cols(self, n_rows: int, itemsize: int, n_cols: int) -> int:
        """Columns of an ``n_rows``-high block that fit one budget, in ``[1, max(n_cols, 1)]``."""
        return max(1, min(max(int(n_cols), 1), self.block_bytes // (int(n_rows) * int(itemsize))))

    # -- thin products with generated test matrices ---------------------------
    @staticmethod
    def generator_rows(D: int, row_block: int | None, tile_rows: int) -> int:
        """Row block for generating a test matrix in the thin products (and the
        height of their streamed blocks).

        Whole row tiles of :class:`sketchla.random.TestMatrix` (``tile_rows``
        rows): a block that ends inside a tile would redraw that tile's prefix
        for every block, so generation (for cheap operators the largest cost of
        the thin products) is done once per tile. ``row_block`` is the sketch's:
        where one of ``row_block``, ``tile_rows`` divides the other, the block
        is the larger of the two, so a generated block is read against whole
        sketch chunks and never sliced (a slice of a Dask block is copied).
        Otherwise generated tiles are sliced to ``row_block``. One block per
        thread is held at a time: ``block × (n_test + n_sketch)`` numbers.
        """
        unit = tile_rows
        if row_block is not None:
            row_block = int(row_block)
            if max(row_block, tile_rows) % min(row_block, tile_rows) == 0:
                unit = max(row_block, tile_rows)
        return min(max(D, 1), unit)

    def thin_blocking(self, D: int, tile_rows: int) -> tuple[int, int]:
        """``(generator rows, block rows)`` of the thin products over a ``D``-row sketch
        stored in ``row_block`` chunks (this plan's; fixed by :meth:`for_sketch`): test
        matrices are generated in blocks of :meth:`generator_rows` and the products
        stream blocks of that height where it is whole sketch chunks, else of ``row_block``."""
        if self.row_block is None:
            raise ValueError("thin_blocking needs the plan of a stored sketch (BlockPlan.for_sketch)")
        g = self.generator_rows(D, self.row_block, tile_rows)
        return g, (g if g % self.row_block == 0 or g == D else self.row_block)

    def thin_row_block(self, n_cols: int, dtype) -> int:
        """Row chunk of a stored ``D × n_cols`` result that no sketch fixes (e.g.
        eigenvectors ``Q U``): ``row_block`` if set, else one budget's rows."""
        if self.row_block is not None:
            return self.row_block
        return self.budget_rows(n_cols, np.dtype(dtype).itemsize)
