"""Measure a linear operator against a test matrix: a Dask graph of column chunks into Zarr.

``measure(op, Omega, store, "Y")`` computes ``Y = A @ Omega`` (``D_L x n``;
paper Alg. 1 line 2, Alg. 2 lines 1-2) — or ``A^* @ Upsilon`` (``D_R x n``,
``adjoint=True``; Alg. 1 line 1 as ``(Upsilon^* A)^*``) — as one Dask task
per column chunk ``[j0, j1)``. Each task

1. gets the operator on its worker (the operator is one key of the graph, so
   it is shipped once per worker, not once per task; ``setup()`` runs once per
   worker process; recipe operators are built once per process),
2. generates ``Omega[:, j0:j1]`` itself from the :class:`~sketchla.random.TestMatrix`
   spec (nothing large is shipped),
3. applies the operator, checks the output shape and finiteness (NaN/Inf ->
   :class:`NonFiniteMeasurementError` naming the chunk and its columns),
4. writes the block into its region of the Zarr array ``store[name]``, whose
   chunks are ``(row_block, chunk)``, so every task writes whole Zarr chunks
   (no two tasks share one),
5. and only then writes the chunk's completion record, holding the manifest
   (size and CRC-32) of the chunk files it wrote.

Re-running on the same store computes only the chunks without a record, so an
interrupted run resumes where it stopped; a store holding ``name`` made from
another test matrix or operator shape is refused. Before skipping a recorded
chunk its files are checked against the manifest (``verify="size"``: a stat
per file; ``"full"``: also the CRC-32): a missing, truncated or changed chunk
is logged and recomputed, never silently used. The driver holds the store's
writer lock (:meth:`~sketchla.store.RunStore.lock`) for the whole call, so a
second run on the same store is refused while this one is alive. Since every block of the
test matrix is a pure function of (seed, name, position), the result does not
depend on chunk size, worker count or retries — bitwise, as long as the
operator's own arithmetic on a column does not depend on the batch size (true
for sparse and column-wise operators; BLAS GEMM may differ in the last bits
between batch sizes).

Memory per task: ``O((D_L + D_R) * chunk)`` plus the operator's own needs.
"""
from __future__ import annotations

import logging
import math
import sys
import time
import uuid

import numpy as np

from .backend import asnumpy, check_float_dtype
from .operators import LinearOperator, aslinearoperator
from .random import TestMatrix
from .store import RunStore, check_verify, chunk_manifest, open_array, write_done_record, write_every_chunk

__all__ = ["measure", "NonFiniteMeasurementError", "default_chunk"]

logger = logging.getLogger(__name__)

#: bytes a chunk task may use for its test block and output (float64 upper bound)
DEFAULT_CHUNK_BYTES = 256 * 2**20
#: most columns per chunk by default (keeps resume granularity and parallelism)
DEFAULT_MAX_CHUNK = 64
#: most rows per Zarr chunk by default. The sketch is written in column chunks
#: but read back in *row* blocks (TSQR, thin products): Zarr decodes whole
#: chunks, so a row block shorter than a chunk reads the chunk again and again
#: (2**18-row chunks read by 8192-row blocks cost 32x the I/O in the 10M-row
#: benchmark). 2**15 rows is the row-block height the streaming routines pick
#: for a few hundred float32 columns, and a divisor of the test-matrix tile.
DEFAULT_ROW_BLOCK = 2**15


class NonFiniteMeasurementError(FloatingPointError, ValueError):
    """The operator returned NaN or Inf for a chunk of columns."""


def default_chunk(D_in: int, D_out: int, n: int, budget: int = DEFAULT_CHUNK_BYTES) -> int:
    """Columns per task so that test block + output fit ``budget`` bytes (float64), at most 64."""
    per_col = 8 * (int(D_in) + int(D_out))
    return int(max(1, min(n, DEFAULT_MAX_CHUNK, budget // max(per_col, 1))))


def _xp_from_name(xp_name):
    if xp_name in (None, "numpy"):
        return np
    if xp_name == "cupy":
        import cupy

        return cupy
    raise ValueError(f"xp={xp_name!r} must be 'numpy' or 'cupy'")


def _record(store_path: str, name: str, key, arr, j: int) -> None:
    """Completion record of chunk ``j``: the manifest of its Zarr chunk files
    (every row block of column chunk ``j``)."""
    n_row_chunks = arr.cdata_shape[0]
    files = chunk_manifest(store_path, name, arr, [(r, j) for r in range(n_row_chunks)])
    write_done_record(store_path, name, key, files)


def _storage_note(exc, store_path):
    """A hint for the errors a full or unwritable store gives."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                                                   errno.EPERM):
        return (f"sketchla.measure: the run store {store_path!r} could not be written ({exc.strerror or exc}); "
                "this chunk was not recorded as complete. Free space or fix permissions, then call again "
                "with the same store: recorded chunks are kept, the rest is recomputed")
    return None


def _measure_chunk(op, test, store_path, name, j, j0, j1, adjoint, check_finite, xp_name, dtype):
    """One task: measure columns ``[j0, j1)`` and write them, then record chunk ``j``."""
    t0 = time.perf_counter()
    try:
        xp = _xp_from_name(xp_name)
        if isinstance(test, TestMatrix):
            X = test.block(slice(None), slice(j0, j1), xp=xp)
        else:  # an in-memory block shipped with the task
            X = xp.asarray(test)
        Y = op.rmatmat(X) if adjoint else op.matmat(X)
        Y = asnumpy(Y).astype(dtype, copy=False)
        if check_finite and not np.isfinite(Y).all():
            bad = int(Y.size - np.count_nonzero(np.isfinite(Y)))
            raise NonFiniteMeasurementError(
                f"operator returned {bad} non-finite value(s) (NaN/Inf) in chunk {j} "
                f"(columns {j0}:{j1}) of measurement {name!r}"
            )
        # store_path: RunStore.path, a directory or a URL (a StoreURL carrying its storage_options)
        arr = write_every_chunk(open_array(store_path, name))
        arr[:, j0:j1] = Y
        _record(store_path, name, j, arr, j)  # only after the data write returned
    except Exception as exc:  # attach which chunk failed, keep the exception type
        if hasattr(exc, "add_note") and not isinstance(exc, NonFiniteMeasurementError):
            exc.add_note(f"sketchla.measure: while measuring chunk {j} (columns {j0}:{j1}) of {name!r}")
            note = _storage_note(exc, store_path)
            if note:
                exc.add_note(note)
        raise
    return j, time.perf_counter() - t0


def _identity(x):
    return x


def _test_spec(test, D_in):
    if isinstance(test, TestMatrix):
        return test.spec()
    from dask.base import tokenize

    return {"in_memory_array": tokenize(test), "shape": list(test.shape), "dtype": test.dtype.name}


def measure(op, test, store, name, *, adjoint=False, chunk=None, row_block=None, client=None,
            progress=True, check_finite=True, xp=None, verify="size"):
    """Measure ``op @ test`` (or ``op^* @ test`` with ``adjoint=True``) into ``store[name]``.

    Parameters
    ----------
    op : anything :func:`~sketchla.operators.aslinearoperator` accepts; ``(D_L, D_R)``.
    test : :class:`~sketchla.random.TestMatrix` of shape ``(D_R, n)`` (``(D_L, n)``
        for ``adjoint=True``), or a small in-memory NumPy array of that shape
        (its column blocks are shipped with the tasks).
    store : :class:`~sketchla.store.RunStore`.
    name : array name in the store (no ``/``, not starting with ``_``).
    chunk : columns per task (default: from a 256 MiB budget, at most 64;
        an existing array's chunking is reused).
    row_block : rows per Zarr chunk (default ``min(D_out, 2**15)``).
    client : see :mod:`sketchla.cluster`: a ``distributed.Client``, an
        address ``"tcp://..."``, ``False``/``"threads"``/``"sync"`` for an
        in-process scheduler, ``None`` for the default client if one exists,
        else threads for small in-memory operators, else an embedded
        ``LocalCluster`` (closed on return).
    progress : show Dask's progress bar (threads) or a tqdm bar (distributed;
        falls back to log lines), and log the dashboard link.
    check_finite : raise :class:`NonFiniteMeasurementError` naming the chunk
        on NaN/Inf.
    xp : ``"numpy"`` (default) or ``"cupy"``: the array module of the test
        blocks handed to the operator (results are written from the host).
    verify : how recorded chunks are checked before being skipped: ``"size"``
        (default; a ``stat`` per chunk file: missing, truncated or extended
        files), ``"full"`` (also re-read and CRC-32 every file: any changed
        byte), or ``False``. Failing chunks are logged and recomputed.

    Returns
    -------
    zarr.Array of shape ``(D_out, n)`` and the test matrix's dtype.
    """
    op = aslinearoperator(op)
    if not isinstance(store, RunStore):
        raise TypeError(f"store must be a sketchla RunStore (RunStore.open(path, params)), got {type(store).__name__}")
    if store.mode == "r":
        raise PermissionError(f"store {store.path!r} was opened read-only; cannot measure into it")
    if isinstance(test, TestMatrix):
        dtype = test.dtype
    elif isinstance(test, np.ndarray):
        if test.ndim != 2:
            raise ValueError(f"test must be 2-D (D, n), got shape {test.shape}")
        dtype = check_float_dtype(test.dtype, "test.dtype")
    else:
        raise TypeError(f"test must be a TestMatrix or a NumPy array, got {type(test).__name__}")
    if adjoint and not op.has_adjoint:
        raise ValueError(f"adjoint=True but the operator {op!r} has no adjoint (rmatmat)")
    D_L, D_R = op.shape
    D_in, D_out = (D_L, D_R) if adjoint else (D_R, D_L)
    if test.shape[0] != D_in:
        raise ValueError(
            f"test has {test.shape[0]} rows but the operator needs {D_in} "
            f"({'D_L' if adjoint else 'D_R'} of shape {op.shape}, adjoint={adjoint})"
        )
    n = int(test.shape[1])
    if n < 1:
        raise ValueError(f"test has shape {test.shape}; need at least one column")
    if xp not in (None, "numpy", "cupy"):
        raise ValueError(f"xp={xp!r} must be 'numpy' or 'cupy'")
    level = check_verify(verify)

    if name in store:
        existing = store[name]
        if chunk is None and hasattr(existing, "chunks"):
            chunk = existing.chunks[1]
        if row_block is None and hasattr(existing, "chunks"):
            row_block = existing.chunks[0]
    if chunk is None:
        chunk = default_chunk(D_in, D_out, n)
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk={chunk!r} must be a positive int (columns per task)")
    if row_block is None:
        row_block = min(D_out, DEFAULT_ROW_BLOCK)
    if isinstance(row_block, bool) or not isinstance(row_block, (int, np.integer)) or row_block < 1:
        raise ValueError(f"row_block={row_block!r} must be a positive int (rows per Zarr chunk)")
    chunk, row_block = int(min(chunk, n)), int(min(row_block, D_out))

    attrs = {"sketchla_measure": {"test": _test_spec(test, D_in), "adjoint": bool(adjoint),
                                  "op_shape": [D_L, D_R]}}
    if name in store:  # refuse a mismatching array before touching the store (no lock taken)
        store.array(name, (D_out, n), (row_block, chunk), dtype, attrs=attrs)
    with store.lock():
        return _measure_locked(op, test, store, name, adjoint, chunk, row_block, client, progress,
                               check_finite, xp, level, dtype, D_out, n, attrs)


def _measure_locked(op, test, store, name, adjoint, chunk, row_block, client, progress, check_finite, xp,
                    level, dtype, D_out, n, attrs):
    from .cluster import client_context

    arr = store.array(name, (D_out, n), (row_block, chunk), dtype, attrs=attrs)
    n_chunks = math.ceil(n / chunk)
    done = {int(k) for k in store.done_keys(name) if k.isdigit() and int(k) < n_chunks}
    for key, why in store.verify_done(name, {str(j) for j in done}, verify=level).items():
        logger.warning("measure %r: recorded chunk %s in %s fails verification (%s); recomputing it",
                       name, key, store.path, why)
        store.forget_done(name, key)
        done.discard(int(key))
    todo = [j for j in range(n_chunks) if j not in done]
    if not todo:
        logger.info("measure %r: all %d chunks already done in %s", name, n_chunks, store.path)
        return arr
    logger.info("measure %r: %d of %d chunks to compute (%d columns each) into %s",
                name, len(todo), n_chunks, chunk, store.path)

    op_key = f"sketchla-op-{uuid.uuid4().hex}"
    dsk = {op_key: (_identity, op)}
    keys = []
    for j in todo:
        j0, j1 = j * chunk, min(n, (j + 1) * chunk)
        tblock = test if isinstance(test, TestMatrix) else np.ascontiguousarray(test[:, j0:j1])
        key = f"sketchla-measure-{name}-{op_key[12:]}-{j}"
        dsk[key] = (_measure_chunk, op_key, tblock, store.path, name, j, j0, j1,
                    bool(adjoint), bool(check_finite), xp, dtype.name)
        keys.append(key)

    small = not _is_recipe(op) and D_out * n * dtype.itemsize <= 64 * 2**20
    t0 = time.perf_counter()
    with client_context(client, small=small) as c:
        if isinstance(c, str):
            _run_local(dsk, keys, c, progress)
        else:
            _run_distributed(c, dsk, keys, progress)
    logger.info("measure %r: %d chunks in %.2f s", name, len(keys), time.perf_counter() - t0)
    return arr


def _is_recipe(op: LinearOperator) -> bool:
    from .operators import RecipeOperator

    return isinstance(op, RecipeOperator)


def _run_local(dsk, keys, scheduler, progress):
    import dask
    import dask.threaded

    get = dask.threaded.get if scheduler == "threads" else dask.get
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            get(dsk, keys)
    else:
        get(dsk, keys)


def _run_distributed(client, dsk, keys, progress):
    from distributed import as_completed

    logger.info("measuring on Dask cluster %s; dashboard: %s", client, client.dashboard_link)
    futures = client.get(dsk, keys, sync=False)
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(futures), desc="measure", unit="chunk")
        except ImportError:
            bar = None
    n_done, step = 0, max(1, len(futures) // 10)
    try:
        for fut in as_completed(futures, loop=client.loop):
            if fut.status == "error":
                for other in futures:
                    other.cancel()
                fut.result()  # raises the task's exception
            n_done += 1
            if bar is not None:
                bar.update(1)
            elif progress and (n_done % step == 0 or n_done == len(futures)):
                logger.info("measured %d/%d chunks", n_done, len(futures))
    finally:
        if bar is not None:
            bar.close()
    client.gather(futures)


class _CallableModule(type(sys.modules[__name__])):
    """``import sketchla.measure`` rebinds ``sketchla.measure`` to this module
    (the import system sets the package attribute), shadowing the function of
    the same name; making the module callable keeps ``sk.measure(...)`` working."""

    def __call__(self, *args, **kwargs):
        return measure(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
