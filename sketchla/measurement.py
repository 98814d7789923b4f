"""Measure a linear operator against a test matrix: a Dask graph of column chunks into Zarr.

``measure(op, Omega, store, "Y")`` computes ``Y = A @ Omega`` (``D_L x n``;
paper Alg. 1 line 2, Alg. 2 lines 1-2) — or, given the adjoint operator
``op.H``, ``A^* @ Upsilon`` (``D_R x n``; Alg. 1 line 1 as ``(Upsilon^* A)^*``)
— as one Dask task per column chunk ``[j0, j1)`` (``chunk`` columns of the
:class:`~sketchla.blocking.BlockPlan`). Each task

1. gets the operator on its worker (the operator is one key of the graph, so
   it is shipped once per worker, not once per task; ``setup()`` runs once per
   worker process; recipe operators are built once per process),
2. generates ``Omega[:, j0:j1]`` itself from the :class:`~sketchla.random.TestMatrix`
   spec (nothing large is shipped) — or, when the input is a *stored basis*
   (a Zarr array, e.g. the orthonormal basis of the previous pass of a
   multi-pass decomposition), reads its columns ``[j0, j1)``: only the Zarr
   chunks of those columns, ``D_in · chunk`` numbers when the basis is stored
   in column chunks of the plan's ``chunk`` (never the whole ``D_in × n`` basis),
3. applies the operator, checks the output shape and finiteness (NaN/Inf ->
   :class:`NonFiniteMeasurementError` naming the chunk and its columns),
4. writes the block into its region of the Zarr array ``store[name]``, whose
   chunks are the plan's ``(row_block, chunk)``, so every task writes whole
   Zarr chunks (no two tasks share one) — or, with ``project=L``, only
   ``Lᵀ`` of the block (``m`` float64 numbers per column,
   :mod:`sketchla.projection`; SEIGH's accumulated inner sketch),
5. and only then writes the chunk's completion record, holding the manifest
   (size and CRC-32) of the chunk files it wrote.

Re-running on the same store computes only the chunks without a record, so an
interrupted run resumes where it stopped; a store holding ``name`` made from
another test matrix or operator shape is refused, and so is one measured by
another operator (:func:`verify_operator`: the operator is applied to one
recorded column again and compared with what the store holds). Before skipping a recorded
chunk its files are checked against the manifest (``verify="size"``: a stat
per file; ``"full"``: also the CRC-32): a missing, truncated or changed chunk
is logged and recomputed, never silently used. The driver holds the store's
writer lock (:meth:`~sketchla.store.RunStore.lock`) for the whole call, so a
second run on the same store is refused while this one is alive. Since every
block of the test matrix is a pure function of (seed, name, position), the result does not
depend on chunk size, worker count or retries — bitwise, as long as the
operator's own arithmetic on a column does not depend on the batch size (true
for sparse and column-wise operators; BLAS GEMM may differ in the last bits
between batch sizes).

The task keys are deterministic (:mod:`sketchla.graph_keys`): the same
measurement of the same operator into the same store gets the same keys.
Which scheduler runs the tasks is decided by :mod:`sketchla.executor`.

Memory per task: ``O((D_L + D_R) * chunk)`` plus the operator's own needs.
"""
from __future__ import annotations

import errno
import logging
import math
import time
import warnings

import numpy as np

from .backend import asnumpy, check_flag, check_float_dtype
from .blocking import BlockPlan
from .executor import PROCESSES, check_client, client_context, run_graph, run_task
from .graph_keys import key_prefix
from .operators import AdjointOperator, aslinearoperator
from .operators.base import not_real
from .projection import project_columns
from .random import TestMatrix, TestMatrixColumns
from .store import (
    RunStore, StoreMismatchError, check_verify, chunk_manifest, open_array, write_done_record, write_every_chunk,
)
from .store.layout import check_name

__all__ = ["measure", "verify_operator", "NonFiniteMeasurementError", "OPERATOR_RTOL"]

logger = logging.getLogger(__name__)


class NonFiniteMeasurementError(FloatingPointError, ValueError):
    """The operator returned NaN or Inf for a chunk of columns."""


def _xp_from_name(xp_name):
    if xp_name in (None, "numpy"):
        return np
    if xp_name == "cupy":
        import cupy  # optional GPU dependency

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
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                                                   errno.EPERM):
        return (f"sketchla.measure: the run store {store_path!r} could not be written ({exc.strerror or exc}); "
                "this chunk was not recorded as complete. Free space or fix permissions, then call again "
                "with the same store: recorded chunks are kept, the rest is recomputed")
    return None


def _applied(op, test, j, j0, j1, check_finite, xp_name, dtype, name):
    """``op @ test[:, j0:j1]`` on the host in ``dtype`` (chunk ``j`` of measurement ``name``;
    ``j=None``: the column ``j0`` measured again by :func:`verify_operator`).

    ``test`` is a :class:`TestMatrix` (the block is generated here), a stored
    basis (a Zarr array: only the chunks of these columns are read) or the
    in-memory block itself. The operator's output shape and real numeric
    dtype are checked by ``op.matmat``; NaN/Inf raise
    :class:`NonFiniteMeasurementError` naming the chunk (``check_finite``).
    """
    xp = _xp_from_name(xp_name)
    if _is_generated(test):
        X = test.block(slice(None), slice(j0, j1), xp=xp)
    elif _is_stored(test):  # a stored basis: read only these columns' chunks, in the
        X = xp.asarray(np.asfortranarray(test[:, j0:j1]))  # column-major layout test-matrix blocks have
    else:  # an in-memory block shipped with the task
        X = xp.asarray(test)
    Y = asnumpy(op.matmat(X))
    where = f"chunk {j} (columns {j0}:{j1})" if j is not None else f"column {j0} (measured again)"
    problem = not_real(Y.dtype)  # op.matmat checked the block; this sees what it is on the host
    if problem:
        raise TypeError(f"operator returned {problem} in {where} of measurement {name!r}; expected "
                        "real float or integer numbers")
    Y = Y.astype(dtype, copy=False)
    if check_finite and not np.isfinite(Y).all():
        bad = int(Y.size - np.count_nonzero(np.isfinite(Y)))
        raise NonFiniteMeasurementError(
            f"operator returned {bad} non-finite value(s) (NaN/Inf) in {where} of measurement {name!r}")
    return Y


def _chunk_note(exc, j, j0, j1, name, store_path):
    """Attach which chunk failed (and a storage hint) to ``exc``, keeping its type."""
    if hasattr(exc, "add_note") and not isinstance(exc, NonFiniteMeasurementError):
        exc.add_note(f"sketchla.measure: while measuring chunk {j} (columns {j0}:{j1}) of {name!r}")
        note = _storage_note(exc, store_path)
        if note:
            exc.add_note(note)


def _projected(project, Y, j0, xp_name):
    """``projectᵀ Y`` (float64, on the host) of the block ``Y`` of columns ``[j0, j0 + c)``."""
    xp = _xp_from_name(xp_name)
    return asnumpy(project_columns(project, xp.asarray(Y), j0, xp=xp))


def _measure_chunk(op, test, store_path, name, j, j0, j1, check_finite, xp_name, dtype, project=None):
    """One task: measure columns ``[j0, j1)`` and write them (or, with ``project``,
    their projection ``projectᵀ Y``), then record chunk ``j``."""
    t0 = time.perf_counter()
    try:
        Y = _applied(op, test, j, j0, j1, check_finite, xp_name, dtype, name)
        if project is not None:
            Y = _projected(project, Y, j0, xp_name)
        # store_path: RunStore.path, a directory or a URL (a StoreURL carrying its storage_options)
        arr = write_every_chunk(open_array(store_path, name))
        arr[:, j0:j1] = Y
        _record(store_path, name, j, arr, j)  # only after the data write returned
    except Exception as exc:
        _chunk_note(exc, j, j0, j1, name, store_path)
        raise
    return j, time.perf_counter() - t0


def _identity(x):
    return x


def _is_generated(test) -> bool:
    """A test matrix generated in the tasks: a :class:`TestMatrix` or some of its columns."""
    return isinstance(test, (TestMatrix, TestMatrixColumns))


def _is_stored(test) -> bool:
    import zarr

    return isinstance(test, zarr.Array)


def _test_spec(test):
    if _is_generated(test):
        return test.spec()
    if _is_stored(test):
        return {"stored_basis": test.path, "shape": list(test.shape), "dtype": test.dtype.name}
    from dask.base import tokenize

    return {"in_memory_array": tokenize(test), "shape": list(test.shape), "dtype": test.dtype.name}


def measure(op, test, store, name, *, chunk=None, row_block=None, plan=None, client=None,
            progress=True, check_finite=True, xp=None, verify="size", check_operator=True, adjoint=False,
            project=None):
    """Measure ``op @ test`` into ``store[name]`` (``op.H @ test`` for an adjoint ``op.H``),
    or only its projection ``projectᵀ (op @ test)``.

    Parameters
    ----------
    op : anything :func:`~sketchla.operators.aslinearoperator` accepts, of
        shape ``(D_out, D_in)``; ``A.H`` (:class:`~sketchla.operators.AdjointOperator`)
        measures ``A^* @ test`` and is recorded as the adjoint of ``A``.
    test : :class:`~sketchla.random.TestMatrix` of shape ``(D_in, n)`` (or
        its columns ``M.columns(c0, c1)``); a
        stored basis (a 2-D float ``zarr.Array`` of that shape in a store the
        workers can read, e.g. an array of this run store: each task reads
        its columns, so store it in column chunks of ``chunk``); or a small
        in-memory NumPy array (its column blocks are shipped with the tasks).
    store : :class:`~sketchla.store.RunStore`.
    name : array name in the store (no ``/``, not starting with ``_``).
    chunk : columns per task (the plan's ``chunk``; default: from the byte
        budget, at most 64; an existing array's chunking is reused).
    row_block : rows per Zarr chunk (the plan's ``row_block``; default
        ``min(D_out, 2**15)``).
    plan : a :class:`~sketchla.blocking.BlockPlan` (``chunk=``/``row_block=``
        given here take precedence over its fields).
    client : how the tasks are scheduled (:mod:`sketchla.executor`): a
        ``distributed.Client``, an address ``"tcp://..."``,
        ``False``/``"threads"``/``"sync"`` for an in-process scheduler,
        ``"processes"`` for an embedded ``LocalCluster`` (closed on return),
        ``None`` for the default client if one exists, else threads (never
        processes).
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
    check_operator : when ``store[name]`` already holds measured chunks, first
        check that ``op`` is the operator that measured them
        (:func:`verify_operator`: one more application of ``op`` to one
        column) and refuse it with :class:`~sketchla.store.StoreMismatchError`
        otherwise. ``False`` when the caller has established that itself.
    adjoint : deprecated; ``measure(op, ..., adjoint=True)`` is ``measure(op.H, ...)``.
    project : optional :class:`~sketchla.random.TestMatrix` ``L`` of shape
        ``(D_out, m)`` and the test's dtype: each task stores ``Lᵀ (op @ test)``
        for its columns (``m`` float64 numbers per column, drawn and multiplied
        in the task by :func:`sketchla.projection.project_columns`,
        bitwise independent of the chunking) instead of the ``D_out`` numbers
        of the measurement itself — SEIGH's accumulated inner sketch (issue
        18.4). Costs ``D_out · m`` numbers drawn and ``2 · D_out · m · chunk``
        flops per task: cheap beside an expensive operator or with a wide ``chunk``.

    Returns
    -------
    zarr.Array of shape ``(D_out, n)`` and the test matrix's dtype; with
    ``project``, of shape ``(m, n)``, float64.
    """
    op = aslinearoperator(op)
    check_client(client)
    if adjoint:
        warnings.warn("measure(op, ..., adjoint=True) is deprecated; pass the adjoint operator op.H",
                      DeprecationWarning, stacklevel=2)
        if not op.has_adjoint:
            raise ValueError(f"adjoint=True but the operator {op!r} has no adjoint (rmatmat)")
        op = op.H
    if not isinstance(store, RunStore):
        raise TypeError(f"store must be a sketchla RunStore (RunStore.open(path, params)), got {type(store).__name__}")
    if store.mode == "r":
        raise PermissionError(f"store {store.path!r} was opened read-only; cannot measure into it")
    check_name(name)
    if _is_generated(test):
        dtype = test.dtype
    elif _is_stored(test):
        if test.ndim != 2:
            raise ValueError(f"test must be 2-D (D, n), got a stored array of shape {test.shape}")
        dtype = check_float_dtype(test.dtype, "test.dtype")
    elif isinstance(test, np.ndarray):
        if test.ndim != 2:
            raise ValueError(f"test must be 2-D (D, n), got shape {test.shape}")
        dtype = check_float_dtype(test.dtype, "test.dtype")
    else:
        raise TypeError(f"test must be a TestMatrix, a zarr.Array or a NumPy array, got {type(test).__name__}")
    is_adjoint = isinstance(op, AdjointOperator)
    D_out, D_in = op.shape
    if test.shape[0] != D_in:
        side = "D_L" if is_adjoint else "D_R"
        raise ValueError(
            f"test has {test.shape[0]} rows but the operator needs {D_in} "
            f"({side} of shape {op.H.shape if is_adjoint else op.shape}, adjoint={is_adjoint})"
        )
    n = int(test.shape[1])
    if n < 1:
        raise ValueError(f"test has shape {test.shape}; need at least one column")
    if xp not in (None, "numpy", "cupy"):
        raise ValueError(f"xp={xp!r} must be 'numpy' or 'cupy'")
    level = check_verify(verify)
    for argname, flag in (("progress", progress), ("check_finite", check_finite), ("check_operator", check_operator)):
        check_flag(flag, argname)
    if plan is None:
        plan = BlockPlan()
    elif not isinstance(plan, BlockPlan):
        raise TypeError(f"plan must be a sketchla BlockPlan, got {type(plan).__name__}")
    plan = BlockPlan(chunk=plan.chunk if chunk is None else chunk,
                     row_block=plan.row_block if row_block is None else row_block,
                     block_bytes=plan.block_bytes)
    existing = store[name] if name in store else None
    out_shape = (D_out, n)
    if project is not None:
        m = _check_projection(project, D_out, dtype)
        out_shape = (m, n)
        if existing is not None and plan.chunk is None:  # a resumed projection keeps its chunking
            plan = BlockPlan(chunk=int(existing.chunks[1]), row_block=plan.row_block, block_bytes=plan.block_bytes)
        existing = None
    plan = plan.for_sketch(D_in, D_out, n, existing=existing)

    base_shape = op.H.shape if is_adjoint else op.shape
    attrs = {"sketchla_measure": {"test": _test_spec(test), "adjoint": is_adjoint,
                                  "op_shape": [int(base_shape[0]), int(base_shape[1])]}}
    chunks = (plan.row_block, plan.chunk)
    if project is not None:
        attrs["sketchla_measure"]["project"] = project.spec()
        chunks, dtype = (out_shape[0], plan.chunk), np.dtype(np.float64)
    if name in store:  # refuse a mismatching array or operator before touching the store (no lock taken)
        store.array(name, out_shape, chunks, dtype, attrs=attrs)
        if check_operator:
            verify_operator(op, test, store, name, client=client, xp=xp, verify=level, project=project)
    with store.lock():
        return _measure_locked(op, test, store, name, plan.chunk, chunks, client, progress, check_finite,
                               xp, level, dtype, n, attrs, out_shape, project)


def _check_projection(project, D_out: int, dtype) -> int:
    """``measure``'s ``project=``: a :class:`TestMatrix` with ``D_out`` rows and the test's dtype; returns ``m``."""
    if not isinstance(project, TestMatrix):
        raise TypeError(f"project must be a sketchla TestMatrix (D_out × m), got {type(project).__name__}")
    if project.shape[0] != D_out or project.shape[1] < 1:
        raise ValueError(f"project has shape {project.shape}; it needs {D_out} rows (the operator's "
                         "output size) and at least one column")
    if project.dtype != dtype:
        raise ValueError(f"project has dtype {project.dtype.name}, the measurement {np.dtype(dtype).name}")
    return int(project.shape[1])


def _measure_locked(op, test, store, name, chunk, chunks, client, progress, check_finite, xp, level,
                    dtype, n, attrs, out_shape, project):
    arr = store.array(name, out_shape, chunks, dtype, attrs=attrs)
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

    prefix = key_prefix(f"measure-{name}", op, test, store.path, chunks, check_finite, xp, dtype.name, project)
    op_key = f"{prefix}-op"
    dsk = {op_key: (_identity, op)}  # one key: the operator is shipped once per worker
    keys = []
    for j in todo:
        j0, j1 = j * chunk, min(n, (j + 1) * chunk)
        tblock = test if _is_generated(test) or _is_stored(test) else np.ascontiguousarray(test[:, j0:j1])
        key = f"{prefix}-{j}"
        dsk[key] = (_measure_chunk, op_key, tblock, store.path, name, j, j0, j1,
                    bool(check_finite), xp, (test.dtype if project is not None else dtype).name, project)
        keys.append(key)

    t0 = time.perf_counter()
    with client_context(client) as c:
        run_graph(dsk, keys, c, progress)
    logger.info("measure %r: %d chunks in %.2f s", name, len(keys), time.perf_counter() - t0)
    return arr


# --------------------------------------------------------------------------- operator identity
#: :func:`verify_operator`'s tolerance on ``||y - y_stored|| / ||y_stored||``: 1e-2 where
#: float32 is involved (the store's or the operator's dtype: batch-size dependent
#: float32 sums, TF32 products on GPUs), 1e-6 where both are float64
OPERATOR_RTOL = {"float32": 1e-2, "float64": 1e-6}


def _remeasured_difference(op, test, store_path, name, col, xp_name, dtype, project=None):
    """One task: ``op`` applied to column ``col`` of ``test`` again (``test``: a
    :class:`TestMatrix` or that column itself), against that column of
    ``store[name]``, read one row chunk at a time. Returns
    ``(||y - y_stored||, ||y_stored||, ||y||)`` (float64)."""
    arr = open_array(store_path, name, mode="r")
    try:
        y = _applied(op, test, None, col, col + 1, True, xp_name, dtype, name)
        y = (y if project is None else _projected(project, y, col, xp_name))[:, 0].astype(np.float64)
    except Exception as exc:
        if hasattr(exc, "add_note") and not isinstance(exc, NonFiniteMeasurementError):
            exc.add_note(f"sketchla.measure: while measuring column {col} of {name!r} again "
                         "to check the operator's identity")
        raise
    diff = ref = 0.0
    rows = arr.chunks[0]
    for r0 in range(0, arr.shape[0], rows):
        y0 = np.asarray(arr[r0:r0 + rows, col], dtype=np.float64)
        diff += float(np.sum((y[r0:r0 + rows] - y0) ** 2))
        ref += float(np.sum(y0 * y0))
    return math.sqrt(diff), math.sqrt(ref), float(np.linalg.norm(y))


def verify_operator(op, test, store, name, *, client=None, xp=None, verify="size", project=None):
    """Refuse ``op`` if it is not the operator whose measurement ``op @ test`` ``store[name]`` holds.

    The identity check of a run store (docs/ARCHITECTURE.md, "Operator
    identity"): ``op`` is applied once more, to the first column ``c`` of the
    first recorded chunk whose files pass ``verify``, and the result ``y`` is
    compared with the stored column ``y₀`` (cast to the store's dtype, as the
    measurement was). ``||y − y₀|| > rtol · max(||y₀||, ||y||)`` raises
    :class:`~sketchla.store.StoreMismatchError`, with ``rtol`` from
    :data:`OPERATOR_RTOL`: a different operator (``−A``, another matrix or
    checkpoint) differs by O(1); the same one by rounding only.

    Cost: one application of ``op`` to one column (a task on ``client``, so an
    operator built on the workers is applied there; ``"processes"`` runs it in
    this process instead of starting a cluster for it) and one read of that
    column (``D`` numbers, a row chunk at a time). Nothing is written.
    Stores made before this check existed are checked the same way.

    A projected measurement (``project``, as given to :func:`measure`; by
    default the one its array's attributes name) is compared after the same
    projection (``m`` numbers instead of ``D``).

    Returns the relative difference found, or ``None`` when ``store[name]``
    holds no intact recorded chunk (nothing measured can be mixed up).
    """
    op = aslinearoperator(op)
    if name not in store:
        return None
    arr = store[name]
    chunk = int(arr.chunks[1])
    done = sorted(int(k) for k in store.done_keys(name) if k.isdigit() and int(k) * chunk < arr.shape[1])
    bad = store.verify_done(name, {str(j) for j in done}, verify=verify) if done else {}
    intact = [j for j in done if str(j) not in bad]
    if not intact:
        return None
    col = intact[0] * chunk
    if project is None:  # a projected measurement names its projection (measure's project=)
        spec = arr.attrs.get("sketchla_measure", {}).get("project")
        if spec:
            project = TestMatrix.from_spec(spec)
    dtype = np.dtype(arr.dtype) if project is None else project.dtype
    column = test if _is_generated(test) else np.ascontiguousarray(test[:, col:col + 1])
    t0 = time.perf_counter()
    with client_context("threads" if client == PROCESSES else client) as c:
        diff, ref, new = run_task(c, _remeasured_difference, op, column, store.path, name, col, xp, dtype.name,
                                  project)
    both64 = dtype == np.float64 and np.dtype(op.dtype) == np.float64
    rtol = OPERATOR_RTOL["float64" if both64 else "float32"]
    scale = max(ref, new)
    rel = diff / scale if scale > 0 else 0.0
    logger.info("operator check of %r in %s: column %d measured again in %.2f s, relative difference %.2e "
                "(tolerance %g)", name, store.path, col, time.perf_counter() - t0, rel, rtol)
    if not rel <= rtol:
        raise StoreMismatchError(
            f"the operator differs from the one that measured {name!r} in store {store.path!r}: applied to "
            f"column {col} of its test matrix it gives a result {rel:.3g} (relative) away from the stored "
            f"measurement (tolerance {rtol:g}; norms {new:.6g} now, {ref:.6g} stored). Use another store for "
            "another operator. If it is the same operator and its products are not reproducible to that "
            "tolerance, pass operator_id= to seigh/ssvd (your word for its identity; no check is made) "
            "or check_operator=False to measure")
    return rel
