"""The stages SEIGH and SSVD share over one run store.

A decomposition run is a sequence of resumable stages over one
:class:`sketchla.store.RunStore`:

1. measurements (:func:`sketchla.measure`: per-chunk completion records),
2. orthonormalisation of the outer sketch(es) by streaming TSQR into Zarr
   (:func:`orthonormalize`),
3. thin products with the test matrices and the small core solve, whose
   results are saved with :func:`save_small`,

and each finished stage is recorded in the store, so re-running with the same
store continues where a crash left off and never recomputes finished work.
Every stage of a run follows one :class:`~sketchla.blocking.BlockPlan`
(:func:`sketch_plan`).
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
import weakref

import dask.array as da
import numpy as np

from ..backend import check_float_dtype, on_device
from ..blocking import BlockPlan
from ..graph_keys import token
from ..linalg import tsqr
from ..random import check_kind
from ..store import RunStore, check_verify
from ._checks import check_gpu, check_seed, check_sizes

log = logging.getLogger(__name__)


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


def sketch_plan(run: RunStore, name: str, plan: BlockPlan, D_in: int, D_out: int, n: int) -> BlockPlan:
    """``plan`` fixed for the ``D_out × n`` sketch ``run[name]`` (see :meth:`BlockPlan.for_sketch`):
    a resumed run keeps the blocking its stored sketch was made with."""
    return plan.for_sketch(D_in, D_out, n, existing=run[name] if name in run else None)


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


def sketch_rows(measured, row_block: int, cols: slice | None = None) -> da.Array:
    """The measured Zarr array (or its contiguous columns ``cols``) as a Dask
    array of full-width row blocks of ``row_block`` rows (its Zarr row chunks),
    one read per chunk row. Named by the array's contents as they are now
    (:mod:`sketchla.graph_keys`)."""
    c0, c1, step = (cols or slice(None)).indices(measured.shape[1])
    if step != 1:
        raise ValueError(f"cols={cols} must be a contiguous slice")
    view = measured if cols is None else _Columns(measured, c0, max(c0, c1))
    return da.from_array(view, chunks=(row_block, view.shape[1]), asarray=False, inline_array=True,
                         name=f"sketch-rows-{token(measured, c0, max(c0, c1), row_block)}")


def orthonormalize(run: RunStore, sketch: da.Array, name: str, plan: BlockPlan, client=None,
                   verify="size", gpu: bool = False):
    """Stage: ``Q ← qr(sketch)`` by streaming TSQR into ``run[name]`` (Alg. 1 l.4–5, Alg. 2 l.3).

    ``plan.row_block`` (fixed for the sketch): rows of ``Q``'s Zarr chunks and
    of the TSQR leaves (at least ``n``). ``gpu``: factorise CuPy blocks.
    """
    D, n = sketch.shape
    if run.get_stage(name, verify=verify) is not None:
        log.info("stage %s already complete in %s; skipping QR", name, run.path)
        return run.group[name]
    row_block = min(D, plan.row_block)
    out = run.array(name, (D, n), chunks=(row_block, n), dtype=sketch.dtype)
    log.info("orthonormalising %s (%d × %d) by TSQR", name, D, n)
    tsqr(on_device(sketch, gpu), out=out, client=client, block_rows=max(row_block, n), gpu=gpu)
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
    """The small arrays ``names`` of a run, in memory."""
    return [np.asarray(run.group[name][...]) for name in names]
