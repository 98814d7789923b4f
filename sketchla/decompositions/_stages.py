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
import os

import dask.array as da
import numpy as np

from ..backend import check_flag, check_float_dtype, check_gpu, on_device
from ..blocking import BlockPlan
from ..executor import check_client
from ..graph_keys import token
from ..linalg import matmul, tsqr
from ..measurement import verify_operator
from ..random import check_kind, check_seed
from ..store import RunStore, StoreMismatchError, check_verify, open_temporary
from ..store.fastread import read_region
from ..store.lock import refuse_if_held
from ._checks import check_n_probes, check_operator_id

log = logging.getLogger(__name__)


def open_run(store, params: dict, storage_options=None) -> RunStore:
    """Open (or create) the run store; ``store=None`` makes a temporary one.

    A temporary store lives in a fresh directory removed when nothing refers
    to it any more: the store, its result, or an array the result handed out
    (:mod:`sketchla.store.lifetime`).
    ``storage_options``: for a store URL (issue 21; see :mod:`sketchla.store`).
    """
    if store is None:
        if storage_options:
            raise ValueError("storage_options were given without a store URL (store=None makes a local temporary store)")
        return open_temporary(params)
    if isinstance(store, RunStore):
        store = store.path  # a StoreURL keeps the store's storage_options
    return RunStore.open(store, params, storage_options=storage_options)


def check_store_arg(store):
    """``store=``: ``None``, a path or URL (str or ``os.PathLike``) or a :class:`RunStore`."""
    if store is not None and not isinstance(store, (str, os.PathLike, RunStore)):
        raise TypeError(f"store must be a directory path or URL, a RunStore or None, got {type(store).__name__}")
    return store


def start_run(algorithm: str, shape, sizes, seed, dtype, test_kind, verify, store, gpu=False,
              storage_options=None, *, client=None, chunk=None, n_probes=0, progress=True, operator_id=None):
    """Check every argument of SEIGH / SSVD and open their run store.

    ``shape`` is the operator's ``(D_L, D_R)``; ``sizes`` the checked
    :class:`._sizes.Sizes`. Everything is validated *before* the store is
    created with these parameters, so a bad call leaves no store behind. A
    single-pass run's parameters are those stores have always held; a
    multi-pass run adds ``passes`` and ``method``.

    Returns ``(run, seed, dtype)`` with the checked values.
    """
    seed = check_seed(seed)
    dt = check_float_dtype(dtype)
    check_kind(test_kind, "test_kind")
    check_verify(verify)
    check_gpu(gpu)
    check_client(client)
    BlockPlan(chunk=chunk)
    check_n_probes(n_probes)
    check_flag(progress, "progress")
    check_operator_id(operator_id)
    check_store_arg(store)
    params = {
        "algorithm": algorithm, "shape": [int(shape[0]), int(shape[1])], "n_outer": sizes.n_outer,
        "n_inner": sizes.n_inner, "seed": seed, "dtype": str(dt), "test_kind": test_kind, **sizes.params(),
    }
    return open_run(store, params, storage_options), seed, dt


#: the stage record holding the ``operator_id`` a caller gave (see :func:`check_identity`)
OPERATOR_STAGE = "operator"


def _recorded_operator_id(run: RunStore):
    info = run.get_stage(OPERATOR_STAGE, verify=False)
    return info.get("operator_id") if isinstance(info, dict) else None


def check_identity(run: RunStore, operator_id, measurements, client, verify) -> None:
    """Refuse an operator other than the one the run in ``run`` was made with.

    The operator identity of a run store (docs/ARCHITECTURE.md, "Operator
    identity"). Called before the store's lock is taken, so a refusal
    (:class:`~sketchla.store.StoreMismatchError`) leaves the store untouched;
    a store another live run holds is refused first (``StoreLockedError``),
    before anything is applied.

    * ``operator_id`` given (the caller's name for the operator, e.g. a digest
      of a checkpoint and a data sample): refused if the store records another
      one; otherwise the caller's word is taken and nothing is applied.
    * ``operator_id=None``: the first of ``measurements`` — ``(op, test, name)``
      in the order to try — that holds a measured chunk is checked by
      :func:`sketchla.measurement.verify_operator` (one more application of
      ``op`` to one column). A new store has nothing to check.

    The run's own measurements then need no check of their own
    (``measure(..., check_operator=False)``).
    """
    if operator_id is not None:
        stored = _recorded_operator_id(run)
        if stored is not None and stored != operator_id:
            raise StoreMismatchError(
                f"store {run.path!r} holds a run of the operator with operator_id={stored!r}, not "
                f"{operator_id!r}; use another store for another operator")
        return
    # a store another live run writes is refused before the check applies the operator
    refuse_if_held(run.location, "this run is refused")
    with checksum_hint(run):  # the check reads one stored column
        for op, test, name in measurements:
            if verify_operator(op, test, run, name, client=client, verify=verify) is not None:
                return


def record_identity(run: RunStore, operator_id) -> None:
    """Record the caller's ``operator_id`` in the run store (under its lock) if it is not recorded yet."""
    if operator_id is None or _recorded_operator_id(run) == operator_id:
        return
    if run.stages() or any(not k.startswith("_") for k in run.group.keys()):
        log.info("operator_id=%r recorded for the existing run in %s on the caller's word (not checked)",
                 operator_id, run.path)
    run.set_stage(OPERATOR_STAGE, {"operator_id": operator_id})


def sketch_plan(run: RunStore, name: str, plan: BlockPlan, D_in: int, D_out: int, n: int) -> BlockPlan:
    """``plan`` fixed for the ``D_out × n`` sketch ``run[name]`` (see :meth:`BlockPlan.for_sketch`):
    a resumed run keeps the blocking its stored sketch was made with."""
    return plan.for_sketch(D_in, D_out, n, existing=run[name] if name in run else None)


class _Columns:
    """Columns ``[c0, c1)`` of a Zarr array as a read-only array-like for
    :func:`dask.array.from_array`: a block read decodes only the Zarr chunks
    of those columns (:func:`sketchla.store.fastread.read_region`), and nothing
    is sliced (copied) after the read."""

    def __init__(self, array, c0: int, c1: int):
        self.array, self.c0, self.c1 = array, int(c0), int(c1)
        self.shape = (int(array.shape[0]), self.c1 - self.c0)
        self.dtype = array.dtype
        self.ndim = 2

    def __getitem__(self, key):
        r, c = key
        start, stop, _ = c.indices(self.shape[1])
        return read_region(self.array, r, slice(self.c0 + start, self.c0 + stop))


def sketch_rows(measured, row_block: int, cols: slice | None = None) -> da.Array:
    """The measured Zarr array (or its contiguous columns ``cols``) as a Dask
    array of full-width row blocks of ``row_block`` rows (its Zarr row chunks),
    one read per chunk row. Named by the array's contents as they are now
    (:mod:`sketchla.graph_keys`)."""
    c0, c1, step = (cols or slice(None)).indices(measured.shape[1])
    if step != 1:
        raise ValueError(f"cols={cols} must be a contiguous slice")
    view = _Columns(measured, c0, max(c0, c1))  # read from the chunk files (store.fastread)
    return da.from_array(view, chunks=(row_block, view.shape[1]), asarray=False, inline_array=True,
                         name=f"sketch-rows-{token(measured, c0, max(c0, c1), row_block)}")


def orthonormalize(run: RunStore, sketch: da.Array, name: str, plan: BlockPlan, client=None,
                   verify="size", gpu: bool = False, col_chunk: int | None = None):
    """Stage: ``Q ← qr(sketch)`` by streaming TSQR into ``run[name]`` (Alg. 1 l.4–5, Alg. 2 l.3).

    ``plan.row_block`` (fixed for the sketch): rows of ``Q``'s Zarr chunks and
    of the TSQR leaves (at least ``n``). ``col_chunk``: columns of ``Q``'s Zarr
    chunks (default ``n``, full rows); a basis that is measured next (a pass of
    a multi-pass run) is stored in the plan's ``chunk`` so that a measurement
    task reads only its own columns. ``gpu``: factorise CuPy blocks.
    """
    D, n = sketch.shape
    if run.get_stage(name, verify=verify) is not None:
        log.info("stage %s already complete in %s; skipping QR", name, run.path)
        return run.group[name]
    row_block = min(D, plan.row_block)
    out = run.array(name, (D, n), chunks=(row_block, min(n, col_chunk or n)), dtype=sketch.dtype)
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


def save_small(run: RunStore, stage: str, arrays: dict, depends=(), info: dict | None = None) -> None:
    """Write small in-memory results (core factors, spectra) and mark ``stage`` done.

    The stage record holds the manifest of these arrays and of the stored
    arrays ``depends`` (e.g. ``Q``) the result is made of, so reopening a run
    whose files were damaged recomputes them instead of using them; ``info``
    adds small JSON facts (e.g. the core's condition numbers).
    """
    for key, value in arrays.items():
        value = np.asarray(value)
        arr = run.array(key, value.shape, chunks=value.shape or (1,), dtype=value.dtype)
        arr[...] = value
    run.set_stage(stage, {"arrays": sorted(arrays), **(info or {})}, arrays=[*sorted(arrays), *depends])


def load_small(run: RunStore, names) -> list[np.ndarray]:
    """The small arrays ``names`` of a run, in memory."""
    return [np.asarray(run.group[name][...]) for name in names]


def stored_columns(arrays, row_block: int) -> da.Array:
    """Stored ``D × n_j`` arrays side by side (``D × Σ n_j``) as a Dask array of full-width
    row blocks of ``row_block`` rows (:func:`sketch_rows` of each)."""
    parts = [sketch_rows(a, row_block) for a in arrays]
    return parts[0] if len(parts) == 1 else da.concatenate(parts, axis=1)


def store_product(run: RunStore, name: str, arrays, coeffs, plan: BlockPlan, client=None, gpu: bool = False):
    """Stage ``name``: ``[arrays…] @ coeffs`` (a small in-memory ``Σ n_j × r``) streamed into the
    store (:func:`sketchla.linalg.matmul`) in ``plan``'s row blocks and column chunks (so the
    result can be measured next, e.g. Ritz vectors whose residuals are wanted). Skipped if done."""
    if run.get_stage(name) is not None:
        return run.group[name]
    D, r = int(arrays[0].shape[0]), int(coeffs.shape[1])
    rb = min(D, plan.row_block)
    out = run.array(name, (D, r), chunks=(rb, min(r, plan.chunk or r)), dtype=arrays[0].dtype)
    matmul(on_device(stored_columns(arrays, rb), gpu), np.asarray(coeffs).astype(arrays[0].dtype), out=out,
           client=client, block_rows=rb, gpu=gpu)
    run.set_stage(name, {"shape": [D, r]}, arrays=[name])
    return out
