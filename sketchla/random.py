"""Seeded random test matrices whose every entry is a pure function of its position.

The sketches of paper Alg. 1/2 (``Omega``, ``Upsilon``) are ``D x n`` random
matrices far too large to hold or to ship to workers. A :class:`TestMatrix` is
a tiny picklable *spec* ``(shape, seed, name, kind, dtype)``; any block of it
is generated where it is needed.

Determinism (docs/ARCHITECTURE.md, "Conventions")
--------------------------------------
The matrix is cut into *atoms*: one column ``j`` times one row tile ``t`` of a
fixed :data:`TILE_ROWS` rows (the last tile of a column may be shorter). Atom
``(t, j)`` is drawn from ``numpy.random.Generator(numpy.random.Philox(key))``
with a 128-bit key hashed (BLAKE2b, not Python's salted ``hash``) from
``(seed, name, kind, t, j)``. Hence

* any block ``M[r0:r1, c0:c1]`` equals the same slice of the full matrix, so
  results do not depend on chunk sizes, worker count or retried tasks;
* a row block costs ``O(ceil(rows / TILE_ROWS) * TILE_ROWS * cols)`` work,
  independent of ``D`` (streamed thin products ``Upsilon^T Y`` need this);
* entries are always drawn in float64 on the host with NumPy; ``float32``
  matrices are the float64 matrix rounded to float32. With ``xp=cupy`` the
  host block is copied to the GPU, so CPU and GPU blocks are bitwise equal.

Kinds and scaling: ``"gaussian"`` entries are standard normal N(0, 1);
``"rademacher"`` and ``"signs"`` entries are +-1 with probability 1/2. There is
**no** ``1/sqrt(n)`` or ``1/sqrt(D)`` normalisation (the sketched
decompositions are invariant to it). ``"signs"`` takes its entries from the
bits of the Philox stream, 64 per draw, where ``"rademacher"`` draws a byte
per entry and ``"gaussian"`` a float64: the cheapest to generate (figures:
``benchmarks/sketch_io.py``, README), which matters where the test matrices
are regenerated for the thin products of SEIGH/SSVD and the operator is cheap.
``"rademacher"`` keeps its values for the stores made with it.
"""
from __future__ import annotations

import hashlib
import math
import struct

import numpy as np

from .backend import check_float_dtype
from .blocking import BlockPlan

__all__ = ["TestMatrix", "TILE_ROWS", "KINDS", "MAX_SEED", "check_seed"]

#: Rows per atom; fixed forever, since changing it changes every matrix.
TILE_ROWS = 2**16
KINDS = ("gaussian", "rademacher", "signs")
#: the largest seed: seeds are hashed as signed 64-bit integers (``_philox_key``)
MAX_SEED = 2**63 - 1


def check_seed(seed, argname: str = "seed") -> int:
    """``seed`` as an int in ``[0, MAX_SEED]``; ``ValueError`` naming ``argname`` otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{argname}={seed!r} must be a non-negative integer below 2**63")
    return int(seed)


def check_kind(kind, argname: str = "kind") -> str:
    """Validate a test-matrix kind (one of :data:`KINDS`); ``argname`` names it in the error."""
    if kind not in KINDS:
        raise ValueError(f"{argname}={kind!r} must be one of {KINDS}")
    return kind


def _philox_key(seed: int, name: str, kind: str, tile: int, col: int) -> np.ndarray:
    """128-bit Philox key for atom ``(tile, col)`` (stable across processes and platforms)."""
    h = hashlib.blake2b(digest_size=16, person=b"sketchla-tm-v1")
    h.update(struct.pack("<q", seed))
    h.update(kind.encode())
    h.update(b"\0")
    h.update(name.encode("utf-8"))
    h.update(b"\0")
    h.update(struct.pack("<qq", tile, col))
    return np.frombuffer(h.digest(), dtype="<u8").astype(np.uint64)


def _normalize_slice(s, n: int, argname: str) -> tuple[int, int]:
    if isinstance(s, (int, np.integer)) and not isinstance(s, bool):
        i = int(s) + (n if s < 0 else 0)
        if not 0 <= i < n:
            raise ValueError(f"{argname}={s} is out of range for size {n}")
        return i, i + 1
    if not isinstance(s, slice):
        raise TypeError(f"{argname} must be a slice or an int, got {type(s).__name__}")
    start, stop, step = s.indices(n)
    if step != 1:
        raise ValueError(f"{argname}={s} has step {s.step}; only contiguous blocks are supported")
    return start, max(start, stop)


class TestMatrix:
    """Spec of a ``D x n`` seeded random test matrix; blocks are generated on demand.

    Parameters
    ----------
    shape : (D, n)
    seed : int
        Non-negative run seed.
    name : str
        Matrix name (e.g. ``"Omega_O"``); matrices with different names are
        independent.
    kind : ``"gaussian"`` (N(0, 1) entries), ``"rademacher"`` or ``"signs"``
        (+-1 entries; ``"signs"`` is the faster generator, see the module docstring).
    dtype : ``"float32"`` (default) or ``"float64"``.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, shape, *, seed, name, kind="gaussian", dtype="float32"):
        try:
            D, n = (int(s) for s in shape)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"shape={shape!r} must be a pair of non-negative ints (D, n)") from exc
        if D < 0 or n < 0:
            raise ValueError(f"shape={shape!r} must be non-negative")
        seed = check_seed(seed)
        if not isinstance(name, str) or not name:
            raise ValueError(f"name={name!r} must be a non-empty string")
        check_kind(kind)
        self.shape = (D, n)
        self.seed = int(seed)
        self.name = name
        self.kind = kind
        self.dtype = check_float_dtype(dtype, "dtype")

    # -- identity -------------------------------------------------------
    def spec(self) -> dict:
        """JSON-able description; two matrices with equal specs are equal."""
        return {
            "shape": list(self.shape), "seed": self.seed, "name": self.name,
            "kind": self.kind, "dtype": self.dtype.name, "tile_rows": TILE_ROWS,
            "generator": "philox-blake2b-v1",
        }

    @classmethod
    def from_spec(cls, spec: dict) -> "TestMatrix":
        """The matrix :meth:`spec` describes (e.g. read back from a stored array's attributes)."""
        return cls(spec["shape"], seed=spec["seed"], name=spec["name"], kind=spec["kind"], dtype=spec["dtype"])

    def __eq__(self, other):
        return isinstance(other, TestMatrix) and self.spec() == other.spec()

    def __hash__(self):
        return hash(tuple(sorted((k, str(v)) for k, v in self.spec().items())))

    def __dask_tokenize__(self):
        return ("sketchla.TestMatrix", tuple(sorted((k, str(v)) for k, v in self.spec().items())))

    def __repr__(self):
        return (f"TestMatrix(shape={self.shape}, seed={self.seed}, name={self.name!r}, "
                f"kind={self.kind!r}, dtype={self.dtype.name!r})")

    @property
    def ndim(self) -> int:
        return 2

    # -- generation -----------------------------------------------------
    def _atom(self, tile: int, col: int, lo: int, hi: int) -> np.ndarray:
        """Rows ``[lo, hi)`` (relative to the tile) of atom ``(tile, col)`` in float64."""
        # The generators fill sequentially, so drawing only the first ``hi``
        # values of the tile gives exactly the prefix of the full-tile draw
        # (tested): a block ending inside a tile does not pay for the rest.
        rng = np.random.Generator(np.random.Philox(key=_philox_key(self.seed, self.name, self.kind, tile, col)))
        if self.kind == "gaussian":
            vals = rng.standard_normal(hi)
        elif self.kind == "rademacher":
            vals = rng.integers(0, 2, size=hi, dtype=np.int8).astype(np.float64) * 2.0 - 1.0
        else:  # signs: bit i of the stream (64 per little-endian word) is entry i; 1 -> -1
            return _signs(rng.bit_generator.random_raw(-(-hi // 64)), lo, hi)
        return vals[lo:hi]

    def block(self, rows=slice(None), cols=slice(None), xp=None):
        """Return ``M[rows, cols]`` as a (Fortran-ordered) array of ``self.dtype``.

        ``rows``/``cols`` are contiguous slices (or ints, giving a length-1
        axis). ``xp`` is ``numpy`` (default) or ``cupy``: the block is always
        drawn on the host and copied to the GPU for cupy, so both agree bitwise.
        Cost: ``O(ceil(rows / TILE_ROWS) * TILE_ROWS * cols)``.
        """
        D, n = self.shape
        r0, r1 = _normalize_slice(rows, D, "rows")
        c0, c1 = _normalize_slice(cols, n, "cols")
        out = np.empty((r1 - r0, c1 - c0), dtype=self.dtype, order="F")
        if r1 > r0:
            t0, t1 = r0 // TILE_ROWS, (r1 - 1) // TILE_ROWS
            for jj, col in enumerate(range(c0, c1)):
                for t in range(t0, t1 + 1):
                    base = t * TILE_ROWS
                    lo, hi = max(r0, base) - base, min(r1, base + TILE_ROWS) - base
                    out[base + lo - r0: base + hi - r0, jj] = self._atom(t, col, lo, hi)
        if xp is not None and xp is not np:
            return xp.asarray(out)
        return out

    def __getitem__(self, key):
        if not isinstance(key, tuple) or len(key) != 2:
            raise TypeError("index a TestMatrix with two slices, e.g. M[r0:r1, c0:c1]")
        return self.block(key[0], key[1])

    def toarray(self, xp=None):
        """The whole matrix in memory (only for small matrices)."""
        return self.block(slice(None), slice(None), xp=xp)

    def columns(self, start: int, stop: int) -> "TestMatrixColumns":
        """Columns ``start:stop`` as a matrix of their own (e.g. ``Ω_I`` of paper Alg. 1, the
        columns of ``Ω`` after ``Ω_O``): its blocks are those of this matrix, so nothing else is drawn."""
        return TestMatrixColumns(self, start, stop)

    def to_dask(self, row_block=None, chunk=None):
        """Dask array view; each block generated independently by :meth:`block`.

        ``row_block`` rows and ``chunk`` columns per Dask block (the names of
        :class:`~sketchla.blocking.BlockPlan`). Defaults: ``row_block = min(D,
        16 * TILE_ROWS)``, ``chunk`` so that a block fits the plan's byte budget.
        """
        import dask.array as da
        from dask.base import tokenize

        D, n = self.shape
        row_block = min(max(D, 1), 16 * TILE_ROWS) if row_block is None else int(row_block)
        if row_block < 1:
            raise ValueError(f"row_block={row_block} must be >= 1")
        if chunk is None:
            chunk = BlockPlan().budget_cols(row_block, self.dtype.itemsize, n)
        chunk = int(chunk)
        if chunk < 1:
            raise ValueError(f"chunk={chunk} must be >= 1")
        rchunks = _split(D, row_block)
        cchunks = _split(n, chunk)
        name = "sketchla-testmatrix-" + tokenize(self, rchunks, cchunks)
        dsk = {}
        r_off = np.concatenate([[0], np.cumsum(rchunks)]).astype(int)
        c_off = np.concatenate([[0], np.cumsum(cchunks)]).astype(int)
        for i in range(len(rchunks)):
            for j in range(len(cchunks)):
                dsk[(name, i, j)] = (
                    _block_task, self, int(r_off[i]), int(r_off[i + 1]), int(c_off[j]), int(c_off[j + 1])
                )
        meta = np.empty((0, 0), dtype=self.dtype)
        return da.Array(dsk, name, chunks=(rchunks, cchunks), dtype=self.dtype, meta=meta)


class TestMatrixColumns:
    """Columns ``start:stop`` of a :class:`TestMatrix`, with the same ``block`` interface
    (``shape``, ``dtype``, ``block(rows, cols, xp)``); a streamed product draws only these."""

    __test__ = False

    def __init__(self, parent: TestMatrix, start: int, stop: int):
        c0, c1 = _normalize_slice(slice(start, stop), parent.shape[1], "columns")
        self.parent, self.start = parent, c0
        self.shape = (parent.shape[0], c1 - c0)
        self.dtype = parent.dtype

    @property
    def ndim(self) -> int:
        return 2

    def block(self, rows=slice(None), cols=slice(None), xp=None):
        c0, c1 = _normalize_slice(cols, self.shape[1], "cols")
        return self.parent.block(rows, slice(self.start + c0, self.start + c1), xp=xp)

    def spec(self) -> dict:
        """JSON-able description: the parent's spec and the columns taken."""
        return {**self.parent.spec(), "columns": [self.start, self.start + self.shape[1]]}

    def __eq__(self, other):
        return isinstance(other, TestMatrixColumns) and self.spec() == other.spec()

    def __hash__(self):
        return hash((hash(self.parent), self.start, self.shape[1]))

    def __dask_tokenize__(self):
        return ("sketchla.TestMatrixColumns", self.parent.__dask_tokenize__(), self.start, self.shape[1])

    def __repr__(self):
        return f"{self.parent!r}.columns({self.start}, {self.start + self.shape[1]})"


def _signs(words: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Entries ``[lo, hi)`` of the sign stream ``1 - 2·bit`` of the uint64 ``words``.

    Returned as float32 (±1 are exact in every float dtype, so the values are
    those of the float64 matrix) to halve the memory traffic of the copy-out.
    """
    bits = np.unpackbits(words.astype("<u8", copy=False).view(np.uint8), count=hi, bitorder="little")
    return 1.0 - 2.0 * bits[lo:hi].astype(np.float32)


def _block_task(tm: TestMatrix, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    return tm.block(slice(r0, r1), slice(c0, c1))


def _split(total: int, size: int) -> tuple[int, ...]:
    if total == 0:
        return (0,)
    k = math.ceil(total / size)
    return tuple(min(size, total - i * size) for i in range(k))
