"""SSVD: single-pass sketched SVD of Tropp et al. (2019), paper Alg. 1.

Measurements (Alg. 1 lines 1–3), ``n_I + 2·n_O`` operator applications:

* ``Aᵀ Υ_O`` (``D_R × n_O``, adjoint applications) — the transpose of ``M_LO*``,
* ``A [Ω_O, Ω_I]`` (``D_L × (n_O + n_I)``, one measurement pass): the first
  ``n_O`` columns are ``M_RO``, the rest ``A Ω_I``, whose product with an
  independent ``Υ_I`` is the inner sketch ``M_I = Υ_Iᵀ A Ω_I`` (line 3).

Then ``Q = qr(Aᵀ Υ_O)`` and ``P = qr(A Ω_O)`` by streaming TSQR (lines 4–5),
the thin products ``Υ_Iᵀ [AΩ_I, P]`` and ``Ω_Iᵀ Q`` are streamed over row
blocks, and the ``n_O × n_O`` core is solved in float64 (lines 6–8).
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
from ._core import ssvd_core
from ._stages import (
    check_identity, checksum_hint, orthonormalize, record_identity, save_small, sketch_plan, sketch_rows, start_run,
)
from .results import SSVDResult

log = logging.getLogger(__name__)


def ssvd(op, n_outer, n_inner, seed=0, store=None, client=None, dtype="float32", chunk=None,
         *, progress=True, test_kind="gaussian", n_probes=0, verify="size", gpu=False,
         storage_options=None, operator_id=None) -> SSVDResult:
    """Sketched SVD ``A ≈ U diag(S) Vh`` of a ``D_L × D_R`` operator with an adjoint.

    Parameters are those of :func:`sketchla.seigh` (``operator_id`` and the
    operator check included: a store made with another operator is refused);
    ``op`` must provide
    ``rmatmat`` (the adjoint), and ``n_O ≤ n_I ≤ min(D_L, D_R)``.

    Returns
    -------
    SSVDResult with ``S`` (n_O,) descending and lazy ``U`` (D_L × n_O), ``Vh`` (n_O × D_R).
    """
    t_start = time.perf_counter()
    op = aslinearoperator(op)
    D_L, D_R = op.shape
    if not op.has_adjoint:
        raise ValueError("ssvd needs the adjoint of op (rmatmat); pass rmatmat= to sketchla.aslinearoperator")
    run, n_outer, n_inner, seed, dt = start_run("ssvd", (D_L, D_R), n_outer, n_inner, min(D_L, D_R), seed, dtype,
                                                test_kind, verify, store, gpu, storage_options, client=client,
                                                chunk=chunk, n_probes=n_probes, progress=progress,
                                                operator_id=operator_id)
    ups_outer = TestMatrix((D_L, n_outer), seed=seed, name="upsilon_outer", kind=test_kind, dtype=dt)
    omega = TestMatrix((D_R, n_outer + n_inner), seed=seed, name="omega", kind=test_kind, dtype=dt)
    ups_inner = TestMatrix((D_L, n_inner), seed=seed, name="upsilon_inner", kind=test_kind, dtype=dt)
    check_identity(run, operator_id, [(op, omega, "Y"), (op.H, ups_outer, "Y_left")], client, verify)
    with run.lock(), checksum_hint(run):
        record_identity(run, operator_id)
        timings = dict(run.get_stage("timings") or {})

        if run.get_stage("core", verify=verify) is None:
            plan = BlockPlan(chunk=chunk)
            plan_L = sketch_plan(run, "Y", plan, D_R, D_L, n_outer + n_inner)  # A Ω: D_L rows
            plan_R = sketch_plan(run, "Y_left", plan, D_L, D_R, n_outer)  # Aᵀ Υ_O: D_R rows
            with run_schedulers(client) as (c_measure, c_linalg):
                t0 = time.perf_counter()
                # Alg. 1 lines 1-3: (M_LO*)ᵀ = Aᵀ Υ_O and A [Ω_O, Ω_I]
                Y_left = measure(op.H, ups_outer, run, "Y_left", plan=plan_R, client=c_measure,
                                 progress=progress, verify=verify, check_operator=False)
                Y = measure(op, omega, run, "Y", plan=plan_L, client=c_measure, progress=progress,
                            verify=verify, check_operator=False)
                timings["measure"] = timings.get("measure", 0.0) + time.perf_counter() - t0

                t0 = time.perf_counter()
                Q = orthonormalize(run, sketch_rows(Y_left, plan_R.row_block), "Q", plan_R, client=c_linalg,
                                   verify=verify, gpu=gpu)  # line 4
                P = orthonormalize(run, sketch_rows(Y, plan_L.row_block, slice(0, n_outer)), "P", plan_L,
                                   client=c_linalg, verify=verify, gpu=gpu)  # line 5
                timings["qr"] = time.perf_counter() - t0

                t0 = time.perf_counter()
                # M_I = Υ_Iᵀ A Ω_I and Υ_Iᵀ P in one pass over the generated Υ_I; then Ω_Iᵀ Q
                (rc_L, br_L), (rc_R, br_R) = plan_L.thin_blocking(D_L, TILE_ROWS), plan_R.thin_blocking(D_R, TILE_ROWS)
                M_I, ups_P = inner(on_device(ups_inner.to_dask(row_block=rc_L), gpu),
                                   [on_device(sketch_rows(Y, plan_L.row_block, slice(n_outer, n_outer + n_inner)), gpu), P],
                                   client=c_linalg, block_rows=br_L, gpu=gpu)
                omega_I = on_device(omega.to_dask(row_block=rc_R)[:, n_outer:], gpu)
                omega_Q = inner(omega_I, Q, client=c_linalg, block_rows=br_R, gpu=gpu)
                timings["thin_products"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            U, S, Vh = ssvd_core(M_I, ups_P, omega_Q)  # lines 6-8
            timings["core_solve"] = time.perf_counter() - t0
            save_small(run, "core", {"singular_values": S, "core_U": U, "core_Vh": Vh}, depends=["Q", "P"])
            run.set_stage("timings", timings)
            log.info("ssvd done in %.1f s: %s", time.perf_counter() - t_start, timings)

        result = SSVDResult.from_store(run)
        if n_probes:
            result.estimate_error(op, n_probes, client=client, progress=progress)
        return result
