"""SEIGH: single-pass sketched eigendecomposition of a symmetric operator (paper Alg. 2).

Measurements (Alg. 2 lines 1–2) are ``Y = A Ω`` with ``Ω = [Ω_O, Ω_I]``
(``D × n_I``, Gaussian, seeded); the first ``n_O`` columns are the outer sketch
``M_O = A Ω_O`` and are *recycled*: the inner sketch is ``M_I = Υᵀ Y`` with an
independent ``Υ`` (``D × n_I``). So exactly ``n_I`` operator applications are
made. ``Q`` comes from streaming TSQR of ``M_O`` (line 3); the thin products
``ΥᵀY``, ``ΥᵀQ`` and ``ΩᵀQ`` are streamed over row blocks; the ``n_O × n_O``
core is solved in float64 (lines 4–8, :func:`._core.seigh_core`). The
eigenvectors ``Q U`` are never materialised in memory: they are a lazy Dask
product over the ``Q`` stored in Zarr.
"""
from __future__ import annotations

import logging
import time

from ..backend import on_device
from ..blocking import BlockPlan
from ..executor import run_schedulers
from ..linalg import inner
from ..measurement import measure
from ..operators import aslinearoperator
from ..random import TILE_ROWS, TestMatrix
from ._core import seigh_core
from ._stages import (
    check_identity, checksum_hint, orthonormalize, record_identity, save_small, sketch_plan, sketch_rows, start_run,
)
from .results import SEIGHResult

log = logging.getLogger(__name__)


def seigh(op, n_outer, n_inner, seed=0, store=None, client=None, dtype="float32", chunk=None,
          *, progress=True, test_kind="gaussian", n_probes=0, verify="size", gpu=False,
          storage_options=None, operator_id=None) -> SEIGHResult:
    """Sketched eigendecomposition ``A ≈ (QU) Λ (QU)ᵀ`` of a symmetric ``D × D`` operator.

    Parameters
    ----------
    op : anything :func:`sketchla.aslinearoperator` accepts; must be square and
        symmetric (symmetry is the caller's promise: it is not checked, since
        that would cost extra operator applications).
    n_outer : ``n_O``, rank of the returned decomposition.
    n_inner : ``n_I ≥ n_O``, number of operator applications (inner sketch size).
    seed : non-negative int; every test matrix block is a pure function of
        ``(seed, matrix name, block)``, so results do not depend on chunking.
    store : path or URL (``s3://``, ``gs://``, ``az://``, ``file://``: any
        fsspec filesystem) of a Zarr run store (created, or resumed if it
        holds a run with the same parameters and operator; one with other
        parameters or another operator is refused with
        :class:`~sketchla.store.StoreMismatchError`), or ``None`` for a
        temporary store, removed when neither the result nor an array it
        handed out (``eigenvectors``, ``Q``) is referenced any more.
    storage_options : dict for the filesystem of a store URL (endpoint,
        credentials, ...), as in Zarr and fsspec.
    client : where the work runs (:mod:`sketchla.executor`): ``None`` (the
        default ``distributed.Client`` if one exists, else threads in this
        process; never new processes), ``"threads"``/``"sync"``/``False``,
        ``"processes"`` (a ``LocalCluster`` started and closed here), a
        ``distributed.Client`` or a scheduler address ``"tcp://host:port"``.
    dtype : ``"float32"`` (default, as the paper) or ``"float64"`` for the
        measurements and ``Q``; the core solve is always float64.
    chunk : columns per measurement task (the ``chunk`` of the run's
        :class:`~sketchla.blocking.BlockPlan`; default: from its byte budget).
    test_kind : kind of the test matrices Ω and Υ (:mod:`sketchla.random`):
        ``"gaussian"`` (default; the setting of the error bounds of Tropp et
        al. 2019), or ``"signs"`` (±1 entries), the cheapest to generate
        (:mod:`sketchla.random`) — worth it where the operator is cheap, since Ω
        and Υ are generated again for the thin products. ``"rademacher"`` is
        the older, slower ±1 generator, kept for stores made with it.
    n_probes : if > 0, that many extra Gaussian probe applications are made
        afterwards for an a-posteriori error estimate (``result.error``).
    gpu : run the QR and the thin products on CuPy blocks (Zarr chunks read
        to the GPU; needs CuPy and a CUDA device). The measurements run
        wherever the operator puts them (e.g. a Hessian on ``dask-cuda`` workers).
    verify : how a resumed run checks what the store already holds before
        using it: ``"size"`` (default; a ``stat`` per chunk file), ``"full"``
        (also a CRC-32 of every file), or ``False``. Damaged measurement
        chunks and stages are recomputed (see :mod:`sketchla.store`). The
        store's writer lock is held for the whole call: a second run on the
        same store meanwhile gets :class:`sketchla.store.StoreLockedError`.
    operator_id : optional string naming the operator (e.g. a digest of a
        checkpoint and a data sample). Without it, reopening a store that
        holds measurements applies ``op`` once more to one recorded column
        and refuses a different operator
        (:func:`sketchla.measurement.verify_operator`). With it, the store
        records it and refuses another ``operator_id``; the caller's word is
        taken and nothing is applied (also the override where the check is
        wrong, e.g. for products not reproducible to its tolerance).

    Returns
    -------
    SEIGHResult with ``eigenvalues`` (n_O,) sorted by descending ``|λ|`` (signs
    kept) and lazy ``eigenvectors`` (D × n_O).
    """
    t_start = time.perf_counter()
    op = aslinearoperator(op)
    D, D_R = op.shape
    if D != D_R:
        raise ValueError(f"seigh needs a square (symmetric) operator, got shape {op.shape}; use ssvd for rectangular operators")
    run, n_outer, n_inner, seed, dt = start_run("seigh", (D, D), n_outer, n_inner, D, seed, dtype,
                                                test_kind, verify, store, gpu, storage_options, client=client,
                                                chunk=chunk, n_probes=n_probes, progress=progress,
                                                operator_id=operator_id)
    omega = TestMatrix((D, n_inner), seed=seed, name="omega", kind=test_kind, dtype=dt)
    upsilon = TestMatrix((D, n_inner), seed=seed, name="upsilon", kind=test_kind, dtype=dt)
    check_identity(run, operator_id, [(op, omega, "Y")], client, verify)
    with run.lock(), checksum_hint(run):
        record_identity(run, operator_id)
        timings = dict(run.get_stage("timings") or {})

        if run.get_stage("core", verify=verify) is None:
            plan = sketch_plan(run, "Y", BlockPlan(chunk=chunk), D, D, n_inner)
            with run_schedulers(client) as (c_measure, c_linalg):
                t0 = time.perf_counter()
                # Alg. 2 lines 1-2: Y = A [Ω_O, Ω_I]  (n_I applications; Y[:, :n_O] = M_O)
                Y = measure(op, omega, run, "Y", plan=plan, client=c_measure, progress=progress, verify=verify,
                            check_operator=False)
                timings["measure"] = timings.get("measure", 0.0) + time.perf_counter() - t0

                t0 = time.perf_counter()
                # line 3: Q = qr(M_O), streamed into the store
                Q = orthonormalize(run, sketch_rows(Y, plan.row_block, slice(0, n_outer)), "Q", plan,
                                   client=c_linalg, verify=verify, gpu=gpu)
                timings["qr"] = time.perf_counter() - t0

                t0 = time.perf_counter()
                rc, br = plan.thin_blocking(D, TILE_ROWS)
                # thin products: M_I = Υᵀ Y, ΥᵀQ (one pass over a generated Υ), ΩᵀQ
                M_I, ups_Q = inner(on_device(upsilon.to_dask(row_block=rc), gpu), [Y, Q], client=c_linalg,
                                   block_rows=br, gpu=gpu)
                omega_Q = inner(on_device(omega.to_dask(row_block=rc), gpu), Q, client=c_linalg,
                                block_rows=br, gpu=gpu)
                timings["thin_products"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            # lines 4-8: pseudoinverses by least squares, symmetric core, eigh
            lam, U = seigh_core(M_I, ups_Q, omega_Q)
            timings["core_solve"] = time.perf_counter() - t0
            save_small(run, "core", {"eigenvalues": lam, "core_U": U}, depends=["Q"])
            run.set_stage("timings", timings)
            log.info("seigh done in %.1f s: %s", time.perf_counter() - t_start, timings)
        else:
            log.info("seigh: store %s already holds a finished run; reopening", run.path)

        result = SEIGHResult.from_store(run)
        if n_probes:
            result.estimate_error(op, n_probes, client=client, progress=progress)
        return result
