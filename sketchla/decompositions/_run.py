"""Plumbing shared by SEIGH and SSVD: validation, the run store, stage records.

A decomposition run is a sequence of resumable stages over one
:class:`sketchla.store.RunStore`:

1. measurements (``sketchla.measure``: per-chunk completion records),
2. orthonormalisation of the outer sketch(es) by streaming TSQR into Zarr,
3. thin products with the test matrices and the small core solve,

and each finished stage is recorded in the store, so re-running with the same
store continues where a crash left off and never recomputes finished work.
"""
from __future__ import annotations

import contextlib
import logging
import numbers
import tempfile
import uuid
import weakref

import dask.array as da
import numpy as np

from .. import backend
from ..backend import check_float_dtype
from ..cluster import client_context
from ..random import TILE_ROWS, check_kind
from ..store import RunStore, check_verify

log = logging.getLogger(__name__)

#: target bytes of one row block of a thin (D × n) array
_BLOCK_BYTES = 64 * 2**20


@contextlib.contextmanager
def schedulers(client, op=None, sketch_bytes: int = 0):
    """Resolve ``client`` once (see :mod:`sketchla.cluster`) for a whole run.

    Yields ``(for_measure, for_linalg)``: what :func:`sketchla.measure` takes
    (a Client or ``"threads"``) and what the :mod:`sketchla.linalg` routines
    take (a Client, or ``None`` for the in-process scheduler). A cluster
    created here is closed when the run ends. With ``client=None``, an
    in-memory operator (not a recipe) whose sketch is at most 64 MiB runs on
    the threaded scheduler — starting a LocalCluster would cost seconds, more
    than the whole computation (the rule :func:`sketchla.measure` applies).
    """
    from distributed import Client

    from ..operators import RecipeOperator

    small = op is not None and not isinstance(op, RecipeOperator) and sketch_bytes <= _BLOCK_BYTES
    with client_context(client, small=small) as c:
        yield c, (c if isinstance(c, Client) else None)


def check_sizes(n_outer, n_inner, D: int) -> tuple[int, int]:
    """Validate ``1 ≤ n_outer ≤ n_inner ≤ D`` (paper Alg. 1/2 inputs)."""
    for name, v in (("n_outer", n_outer), ("n_inner", n_inner)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {v!r}")
        if v <= 0:
            raise ValueError(f"{name}={v} must be positive")
    if n_outer > n_inner:
        raise ValueError(f"n_outer={n_outer} must not exceed n_inner={n_inner} (paper Alg. 1/2: n_O ≤ n_I)")
    if n_inner > D:
        raise ValueError(f"n_inner={n_inner} must not exceed the operator dimension {D}")
    return int(n_outer), int(n_inner)


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    return int(seed)


def row_chunk(n_cols: int, dtype) -> int:
    """Rows per block so that one ``rows × n_cols`` block is about 64 MiB."""
    return max(1, _BLOCK_BYTES // (max(1, n_cols) * np.dtype(dtype).itemsize))


def generator_rows(D: int, rows: int | None = None) -> int:
    """Row block for generating a test matrix in the thin products (and the
    height of their streamed blocks).

    Whole row tiles of :class:`sketchla.random.TestMatrix` (``TILE_ROWS``
    rows): a block that ends inside a tile would redraw that tile's prefix
    for every block, so generation (for cheap operators the largest cost of
    the thin products) is done once per tile. ``rows`` is the sketch's Zarr
    row chunk (:func:`stream_rows`): where one of ``rows``, ``TILE_ROWS``
    divides the other, the block is the larger of the two, so a generated
    block is read against whole sketch chunks and never sliced (a slice of a
    Dask block is copied). Otherwise generated tiles are sliced to ``rows``.
    One block per thread is held at a time: ``block × (n_test + n_sketch)``
    numbers.
    """
    unit = TILE_ROWS
    if rows is not None:
        rows = int(rows)
        if max(rows, TILE_ROWS) % min(rows, TILE_ROWS) == 0:
            unit = max(rows, TILE_ROWS)
    return min(max(D, 1), unit)


def thin_blocking(D: int, rows: int) -> tuple[int, int]:
    """``(generator rows, block rows)`` of the thin products over a sketch with
    Zarr row chunks ``rows``: test matrices are generated in blocks of
    :func:`generator_rows` and the products stream blocks of that height where
    it is whole sketch chunks, else of ``rows``."""
    g = generator_rows(D, rows)
    return g, (g if g % rows == 0 or g == D else rows)


def open_run(store, params: dict, storage_options=None) -> RunStore:
    """Open (or create) the run store; ``store=None`` makes a temporary one.

    A temporary store lives in a fresh directory removed when the returned
    object is garbage collected (results keep a reference to it).
    ``storage_options``: for a store URL (issue 21; see :mod:`sketchla.store`).
    """
    if store is None:
        if storage_options:
            raise ValueError("storage_options were given without a store URL (store=None makes a local temporary store)")
        tmp = tempfile.TemporaryDirectory(prefix="sketchla-run-")
        run = RunStore.open(tmp.name + "/run.zarr", params)
        run._tmpdir = tmp  # keep the directory alive with the store
        weakref.finalize(run, tmp.cleanup)
        return run
    if isinstance(store, RunStore):
        store = store.path  # a StoreURL keeps the store's storage_options
    return RunStore.open(store, params, storage_options=storage_options)


def check_gpu(gpu) -> bool:
    """Validate a ``gpu=`` argument: a bool, and ``True`` only where CuPy sees a CUDA device."""
    if not isinstance(gpu, (bool, np.bool_)):
        raise TypeError(f"gpu must be True or False, got {gpu!r}")
    if gpu and not backend.cupy_available():  # looked up at call time (tests patch it)
        raise ValueError("gpu=True needs CuPy and a CUDA device (pip install '.[gpu]'); "
                         "none is available in this process")
    return bool(gpu)


def on_device(x: da.Array, gpu: bool) -> da.Array:
    """``x`` with CuPy blocks when ``gpu`` (each block copied to the device as it is
    computed), else ``x`` unchanged. The linalg routines pick their array module
    from the blocks, so QR and thin products then run on the GPU."""
    if not gpu:
        return x
    import cupy

    return x.map_blocks(cupy.asarray, dtype=x.dtype, meta=cupy.empty((0,) * x.ndim, dtype=x.dtype))


def start_run(algorithm: str, shape, n_outer, n_inner, n_max: int, seed, dtype, test_kind, verify, store,
              gpu=False, storage_options=None):
    """Check the common arguments of SEIGH / SSVD and open their run store.

    ``shape`` is the operator's ``(D_L, D_R)``; ``n_max`` bounds
    ``n_outer ≤ n_inner ≤ n_max``. Everything is validated *before* the store
    is created with these parameters, so a bad call leaves no store behind.

    Returns ``(run, n_outer, n_inner, seed, dtype)`` with the checked values.
    """
    n_outer, n_inner = check_sizes(n_outer, n_inner, n_max)
    seed = check_seed(seed)
    dt = check_float_dtype(dtype)
    check_kind(test_kind, "test_kind")
    check_verify(verify)
    check_gpu(gpu)
    params = {
        "algorithm": algorithm, "shape": [int(shape[0]), int(shape[1])], "n_outer": n_outer,
        "n_inner": n_inner, "seed": seed, "dtype": str(dt), "test_kind": test_kind,
    }
    return open_run(store, params, storage_options), n_outer, n_inner, seed, dt


def stream_rows(measured) -> int:
    """Row-block height for every streamed pass of a run: the measurement's Zarr chunk rows.

    The sketch is written in column chunks of ``rows`` rows; Zarr decodes
    whole chunks, so a pass with shorter row blocks would decode each chunk
    several times (measured: 32× the I/O with 2**18-row chunks read in
    8192-row blocks). ``Q`` is stored with the same row chunks.
    """
    return int(measured.chunks[0])


class _Columns:
    """Columns ``[c0, c1)`` of a Zarr array as a read-only array-like for
    :func:`dask.array.from_array`: a block read decodes only the Zarr chunks
    of those columns, and nothing is sliced (copied) after the read."""

    def __init__(self, array, c0: int, c1: int):
        self.array, self.c0, self.c1 = array, int(c0), int(c1)
        self.shape = (int(array.shape[0]), self.c1 - self.c0)
        self.dtype = array.dtype
        self.ndim = 2

    def __getitem__(self, key):
        r, c = key
        start, stop, _ = c.indices(self.shape[1])
        return self.array[r, self.c0 + start:self.c0 + stop]


def sketch_rows(measured, cols: slice | None = None) -> da.Array:
    """The measured Zarr array (or its contiguous columns ``cols``) as a Dask
    array of full-width row blocks, one read per chunk row."""
    rows = stream_rows(measured)
    if cols is None:
        return da.from_zarr(measured, chunks=(rows, measured.shape[1]))
    c0, c1, step = cols.indices(measured.shape[1])
    if step != 1:
        raise ValueError(f"cols={cols} must be a contiguous slice")
    view = _Columns(measured, c0, max(c0, c1))
    return da.from_array(view, chunks=(rows, view.shape[1]), asarray=False, inline_array=True,
                         name=f"sketch-cols-{uuid.uuid4().hex}")


def orthonormalize(run: RunStore, sketch: da.Array, name: str, client=None,
                   verify="size", rows: int | None = None, gpu: bool = False):
    """Stage: ``Q ← qr(sketch)`` by streaming TSQR into ``run[name]`` (Alg. 1 l.4–5, Alg. 2 l.3).

    ``rows``: row-block height of the TSQR leaves and of ``Q``'s Zarr chunks
    (default: about 64 MiB per block). ``gpu``: factorise CuPy blocks.
    """
    from ..linalg import tsqr

    D, n = sketch.shape
    if run.get_stage(name, verify=verify) is not None:
        log.info("stage %s already complete in %s; skipping QR", name, run.path)
        return run.group[name]
    rows = min(D, rows or row_chunk(n, sketch.dtype))
    out = run.array(name, (D, n), chunks=(rows, n), dtype=sketch.dtype)
    log.info("orthonormalising %s (%d × %d) by TSQR", name, D, n)
    tsqr(on_device(sketch, gpu), out=out, client=client, block_rows=max(rows, n), gpu=gpu)
    run.set_stage(name, {"shape": [D, n]}, arrays=[name])  # with the manifest of Q's chunk files
    return out


@contextlib.contextmanager
def checksum_hint(run: RunStore):
    """Add an actionable note to the error Zarr raises when a stored chunk fails
    its CRC-32C on read (a file changed in place after it was written)."""
    try:
        yield
    except Exception as exc:
        if "checksum do not match" in str(exc) and hasattr(exc, "add_note"):
            exc.add_note(
                f"sketchla: a chunk of the run store {run.path!r} was changed after it was written "
                "(CRC-32C mismatch), so it was not used. Run again with verify='full' to find and "
                f"recompute the damaged chunks, or sketchla.store.RunStore.open({run.path!r}, mode='r')"
                ".verify() to list them.")
        raise


def save_small(run: RunStore, stage: str, arrays: dict, depends=()) -> None:
    """Write small in-memory results (core factors, spectra) and mark ``stage`` done.

    The stage record holds the manifest of these arrays and of the stored
    arrays ``depends`` (e.g. ``Q``) the result is made of, so reopening a run
    whose files were damaged recomputes them instead of using them.
    """
    for key, value in arrays.items():
        value = np.asarray(value)
        arr = run.array(key, value.shape, chunks=value.shape or (1,), dtype=value.dtype)
        arr[...] = value
    run.set_stage(stage, {"arrays": sorted(arrays)}, arrays=[*sorted(arrays), *depends])


def load_small(run: RunStore, names) -> list[np.ndarray]:
    return [np.asarray(run.group[name][...]) for name in names]


def dtype_param(dtype) -> str:
    return str(check_float_dtype(dtype))
