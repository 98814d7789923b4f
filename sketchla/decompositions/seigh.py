"""SEIGH: sketched eigendecomposition of a symmetric operator — single pass (paper Alg. 2) or multi-pass.

Single pass (``passes=0``, the paper's algorithm): measurements (Alg. 2 lines
1–2) are ``Y = A Ω`` with ``Ω = [Ω_O, Ω_I]`` (``D × n_I``, Gaussian, seeded);
the first ``n_O`` columns are the outer sketch ``M_O = A Ω_O`` and are
*recycled*: the inner sketch is ``M_I = Υᵀ Y`` with an independent ``Υ``
(``D × n_I``). So exactly ``n_I`` operator applications are made. ``Q`` comes
from streaming QR of ``M_O`` (line 3); the thin products ``ΥᵀY``, ``ΥᵀQ`` and
``ΩᵀQ`` are one streamed pass over Y and Q, generating each row block of Υ and
Ω once (:func:`sketchla.linalg.inner_products`); the ``n_O × n_O`` core is
solved in float64 (lines 4–8, :func:`._core.seigh_core`).

Multi-pass (``passes=q ≥ 1``): block Krylov (default) or subspace iteration,
``q`` more measurements of the operator on the stored basis, then an exact
Rayleigh–Ritz projection (:mod:`._passes`); ``(q+1)·n_O`` applications.

Either way the eigenvectors ``Q U`` are never materialised in memory: they are
a lazy Dask product over the ``Q`` stored in Zarr; ``rank=r`` keeps the best
rank-``r`` part, and an a-posteriori error estimate is attached by default.
"""
from __future__ import annotations

import functools
import logging

import numpy as np

from ..backend import asnumpy
from ..blocking import BlockPlan
from ..linalg import inner_products
from ..operators import aslinearoperator
from ..random import TILE_ROWS, TestMatrix
from ._core import seigh_core_cond
from ._inner import check_inner_sketch, resolve_inner
from ._replace import orthonormalize_replacing, started as replacement_started
from ._passes import seigh_passes
from ._run import check_certificates, run_and_certify
from ._sizes import resolve_sizes
from ._stages import load_small, orthonormalize, save_small, sketch_plan, sketch_rows, start_run, store_product
from .results import SEIGHResult

log = logging.getLogger(__name__)


def seigh(op, n_outer=None, n_inner=None, seed=0, store=None, client=None, dtype="float32", chunk=None,
          *, rank=None, passes=0, method="krylov", n_probes=10, residuals=False, progress=True,
          test_kind="gaussian", verify="size", gpu=False, storage_options=None, operator_id=None,
          inner_sketch="auto", overwrite_sketch=False) -> SEIGHResult:
    """Sketched eigendecomposition ``A ≈ (QU) Λ (QU)ᵀ`` of a symmetric ``D × D`` operator.

    Parameters
    ----------
    op : anything :func:`sketchla.aslinearoperator` accepts; must be square and
        symmetric (symmetry is the caller's promise: it is not checked, since
        that would cost extra operator applications).
    n_outer : ``n_O``: rank of the stored single-pass decomposition, or the
        block of every pass (the number of pairs kept) with ``passes ≥ 1``.
        Default: from ``rank`` by the rules below.
    n_inner : ``n_I ≥ n_O``, number of operator applications of a single-pass
        run (inner sketch size); default ``2·n_O + 1``. Not used (refused)
        with ``passes ≥ 1``.
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
        It sets how many tasks a pass has (its parallelism), not the result.
    rank : ``r ≤ n_O``: return the best rank-``r`` part of the decomposition —
        the ``r`` pairs of largest ``|λ|`` of the core (fixed-rank
        approximation, Tropp, Yurtsever, Udell & Cevher 2017 §5, 2019 §5);
        its error is smaller than the untruncated one's where the spectrum
        has a heavy tail, since the trailing pairs of a sketch are its
        noisiest. Given alone (no ``n_outer``), the sizes follow the
        literature's rules: single pass ``n_O = 4r + 1``, ``n_I = 2·n_O + 1``
        (Tropp et al. 2019, §5.4); with passes a block ``n_O = r + max(r, 10)``
        (Halko, Martinsson & Tropp 2011, §4.2; see :mod:`._sizes`). The stored
        run is the same for every ``rank``: it can be reopened with another.
    passes : ``q ≥ 0``. 0 (default) is the single-pass algorithm (paper
        Alg. 2), unchanged. ``q ≥ 1``: ``q`` more measurements of the operator
        on the current orthonormal basis (each a Dask graph of column chunks
        into the store, each followed by a streamed TSQR, each resumable),
        then an exact Rayleigh–Ritz step: ``(q+1)·n_O`` applications, the
        eigenvalue error falling like ``(|λ_{n_O+1}| / |λ_i|)^{2q}`` or faster
        (see :mod:`._passes`). Costs ``q`` rounds of waiting for the operator.
    method : ``"krylov"`` (default): block Krylov — the Ritz pairs come from
        all ``q·n_O`` directions the passes found; or ``"subspace"``:
        subspace iteration, from the last block only (Halko et al. 2011,
        Alg. 4.4), cheaper linear algebra, slower convergence (measured
        difference: README, ``benchmarks/peers.py``).
    n_probes : Gaussian probes of the a-posteriori error estimate attached to
        the result (``result.error``, :mod:`.errors`; default 10, 0 turns it
        off): ``n_probes`` extra applications and two streamed passes, on
        this run's schedulers. A tail-dominated estimate warns
        (:class:`~sketchla.decompositions.errors.TailDominatedWarning`),
        naming the remedy.
    residuals : also compute ``result.residual_norms``, ``||A v_i − λ_i v_i||``
        per returned pair: free after passes (``A V`` is already measured),
        ``r`` applications for a single-pass run.
    test_kind : kind of the test matrices Ω and Υ (:mod:`sketchla.random`):
        ``"gaussian"`` (default; the setting of the error bounds of Tropp et
        al. 2019), or ``"signs"`` (±1 entries), the cheapest to generate
        (:mod:`sketchla.random`) — worth it where the operator is cheap, since Ω
        and Υ are generated again (once) for the thin products. ``"rademacher"`` is
        the older, slower ±1 generator, kept for stores made with it.
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
    inner_sketch : single-pass runs: how the inner sketch ``Υᵀ Y`` is kept
        (:mod:`._inner`). ``"store"``: all of ``Y`` (``D × n_I``) is stored;
        ``"accumulate"``: only ``M_O`` (``D × n_O``) is stored, the inner-only
        columns are projected by ``Υᵀ`` in their measurement tasks — the
        store holds ``2·D·n_O`` numbers + ``O(n_I²)`` instead of
        ``D·(n_I + n_O)``, at the cost of drawing ``Υ`` once per task (cheap
        beside an expensive operator or a wide ``chunk``); ``"auto"``
        (default): ``"accumulate"`` where ``Y`` and ``Q`` would not fit the
        free disk, or where the projection costs ≤ 10 % of a task's operator
        applications (timed on one column), else ``"store"``. Decided once
        per run and recorded in the store.
    overwrite_sketch : single-pass runs: ``True`` lets ``Q`` replace the outer
        sketch ``M_O`` in the store, band by band as it is written
        (:mod:`._replace`; resumable), so the store never holds much more
        than ``D·n_O`` numbers + ``O(n_I²)`` (with the accumulated inner
        sketch, which it implies: ``inner_sketch`` must be ``"auto"`` or
        ``"accumulate"``). Costs one more read of ``M_O`` (``Υᵀ M_O`` is
        formed before it goes); ``M_O`` is gone afterwards. Needs Cholesky
        QR (falls back to a separate ``Q`` where ``M_O`` is numerically rank
        deficient); runs its QR on the host.

    Returns
    -------
    SEIGHResult with ``eigenvalues`` (``r`` or ``n_O``) sorted by descending
    ``|λ|`` (signs kept), lazy ``eigenvectors`` (D × that), ``error``.

    A single-pass core solve whose ``n_I`` is too close to ``n_O`` warns
    (:class:`~sketchla.decompositions.IllConditionedCoreWarning`). Bad
    arguments are refused before any work or file is made.
    """
    op = aslinearoperator(op)
    D, D_R = op.shape
    if D != D_R:
        raise ValueError(f"seigh needs a square (symmetric) operator, got shape {op.shape}; use ssvd for rectangular operators")
    sizes = resolve_sizes(n_outer, n_inner, rank, passes, method, D)
    inner_sketch = check_inner_sketch(inner_sketch, sizes.passes, overwrite_sketch)
    n_probes, residuals = check_certificates(n_probes, residuals)
    run, seed, dt = start_run("seigh", (D, D), sizes, seed, dtype, test_kind, verify, store, gpu, storage_options,
                              client=client, chunk=chunk, n_probes=n_probes, progress=progress,
                              operator_id=operator_id)
    first = "Y" if sizes.passes == 0 else "Y0"  # the run's first measurement: A Ω (Ω_O with passes)
    omega = TestMatrix((D, sizes.n_inner or sizes.n_outer), seed=seed, name="omega", kind=test_kind, dtype=dt)
    single_pass = functools.partial(_single_pass, inner_sketch=inner_sketch,
                                    overwrite_sketch=bool(overwrite_sketch))
    return run_and_certify(run, SEIGHResult, op, (single_pass, _multi_pass), sizes,
                           identity=_identity_checks(op, omega, first, sizes), seed=seed, test_kind=test_kind,
                           dtype=dt, chunk=chunk, client=client, n_probes=n_probes, residuals=residuals,
                           progress=progress, verify=verify, gpu=gpu, operator_id=operator_id)


def _identity_checks(op, omega, first, sizes):
    """The measurements the operator is checked against on reopening, in order: the first
    measurement; for a single pass also the projected ``UY`` (all that remains of the
    measurements once ``Q`` replaced ``M_O``)."""
    checks = [(op, omega, first)]
    if sizes.passes == 0 and sizes.n_inner > sizes.n_outer:
        checks.append((op, omega.columns(sizes.n_outer, sizes.n_inner), "UY"))
    return checks


def _single_pass(op, sizes, seed, test_kind, dt, chunk, ctx, inner_sketch="auto", overwrite_sketch=False):
    """Paper Alg. 2 (module docstring): measure, QR, thin products, core; saves stage ``core``.

    ``inner_sketch`` (:mod:`._inner`): ``"store"`` measures ``Y`` (``D × n_I``);
    ``"accumulate"`` measures ``M_O`` as ``Y`` (``D × n_O``) and ``Υᵀ A Ω_I``
    as ``UY`` (``n_I × (n_I − n_O)``). ``overwrite_sketch``: ``Q`` replaces
    ``Y`` (:mod:`._replace`), after ``Υᵀ M_O`` is saved.
    """
    run, D, n_outer, n_inner = ctx.run, op.shape[0], sizes.n_outer, sizes.n_inner
    omega = TestMatrix((D, n_inner), seed=seed, name="omega", kind=test_kind, dtype=dt)
    upsilon = TestMatrix((D, n_inner), seed=seed, name="upsilon", kind=test_kind, dtype=dt)
    plan = sketch_plan(run, "Y", BlockPlan(chunk=chunk), D, D, n_inner)
    mode = resolve_inner(run, inner_sketch, op, omega, upsilon, plan.chunk, ctx.c_measure, dt.itemsize,
                         inner_cols=n_inner - n_outer, store_bytes=D * (n_inner + n_outer) * dt.itemsize)
    if mode == "store":
        # Alg. 2 lines 1-2: Y = A [Ω_O, Ω_I]  (n_I applications; Y[:, :n_O] = M_O)
        Y = ctx.measure(op, omega, "Y", plan)
        left_Y = None
    else:
        # the same n_I applications: M_O = A Ω_O stored, Υᵀ A Ω_I accumulated as measured
        replaced = overwrite_sketch and replacement_started(run)
        Y = None if replaced else ctx.measure(op, omega.columns(0, n_outer), "Y", plan)
        left_Y = (ctx.measure(op, omega.columns(n_outer, n_inner), "UY", plan, project=upsilon)
                  if n_inner > n_outer else np.zeros((n_inner, 0)))
        if overwrite_sketch:
            return _replacing_rest(run, upsilon, omega, Y, left_Y, n_outer, plan, ctx)

    # line 3: Q = qr(M_O), streamed into the store
    with ctx.timed("qr"):
        Q = orthonormalize(run, sketch_rows(Y, plan.row_block, slice(0, n_outer)), "Q", plan,
                           client=ctx.c_linalg, verify=ctx.verify, gpu=ctx.gpu)

    with ctx.timed("thin_products"):
        _, br = plan.thin_blocking(D, TILE_ROWS)
        # thin products M_I = Υᵀ Y, ΥᵀQ, ΩᵀQ in one pass over Y and Q, each block of Υ, Ω drawn once
        M_I, ups_Q, omega_Q = inner_products([upsilon, omega], [Y, Q], [(0, 0), (0, 1), (1, 1)],
                                             client=ctx.c_linalg, block_rows=br, gpu=ctx.gpu)
        if left_Y is not None:  # M_I = [Υᵀ M_O, Υᵀ A Ω_I]
            M_I = np.hstack([asnumpy(M_I), np.asarray(left_Y[...])])

    _core(run, M_I, ups_Q, omega_Q, ctx)


def _core(run, M_I, ups_Q, omega_Q, ctx):
    """Alg. 2 lines 4-8: pseudoinverses by least squares, symmetric core, eigh; saves stage ``core``."""
    with ctx.timed("core_solve"):
        lam, U, conds = seigh_core_cond(M_I, ups_Q, omega_Q)
    save_small(run, "core", {"eigenvalues": lam, "core_U": U}, depends=["Q"],
               info={"core_condition": [float(c) for c in conds]})


def _replacing_rest(run, upsilon, omega, Y, left_Y, n_outer, plan, ctx):
    """``overwrite_sketch``: ``Υᵀ M_O`` saved (stage ``ups_M_O``), ``Q`` written over ``Y``
    (:mod:`._replace`), then ``ΥᵀQ``, ``ΩᵀQ`` and the core."""
    D = int(omega.shape[0])
    _, br = plan.thin_blocking(D, TILE_ROWS)
    with ctx.timed("thin_products"):
        if run.get_stage("ups_M_O") is None:
            (ups_M,) = inner_products([upsilon], [Y], client=ctx.c_linalg, block_rows=br)
            save_small(run, "ups_M_O", {"ups_M_O": asnumpy(ups_M)})
        (ups_M,) = load_small(run, ["ups_M_O"])
    with ctx.timed("qr"):
        try:
            Q = orthonormalize_replacing(run, "Y", n_outer, "Q", plan.row_block, client=ctx.c_linalg,
                                         verify=ctx.verify)
        except ValueError as exc:  # Cholesky QR refused M_O before anything was deleted: Q of its own
            log.warning("overwrite_sketch: %s; Q is written next to the sketch instead", exc)
            Q = orthonormalize(run, sketch_rows(Y, plan.row_block), "Q", plan, client=ctx.c_linalg,
                               verify=ctx.verify, gpu=ctx.gpu)
    with ctx.timed("thin_products"):
        ups_Q, omega_Q = inner_products([upsilon, omega], [Q], [(0, 0), (1, 0)], client=ctx.c_linalg,
                                        block_rows=br, gpu=ctx.gpu)
    _core(run, np.hstack([ups_M, np.asarray(left_Y[...])]), ups_Q, omega_Q, ctx)


def _multi_pass(op, sizes, seed, test_kind, dt, chunk, ctx):
    """``passes ≥ 1`` (:mod:`._passes`): passes, Rayleigh–Ritz, the Ritz vectors written as ``Q``."""
    run, D, b = ctx.run, op.shape[0], sizes.n_outer
    plan = sketch_plan(run, "Y0", BlockPlan(chunk=chunk), D, D, b)
    theta, U, basis, images = seigh_passes(op, sizes, seed, test_kind, dt, plan, ctx)
    with ctx.timed("ritz_vectors"):
        store_product(run, "Q", basis, U, plan, client=ctx.c_linalg, gpu=ctx.gpu)  # Ritz vectors [V…] U
    save_small(run, "core", {"eigenvalues": theta, "core_U": np.eye(b), "ritz_U": U}, depends=["Q"],
               info={"basis": [a.basename for a in basis], "images": [a.basename for a in images]})
