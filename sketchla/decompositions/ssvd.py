"""SSVD: sketched SVD — single pass (Tropp et al. 2019, paper Alg. 1) or multi-pass.

Single pass (``passes=0``): measurements (Alg. 1 lines 1–3), ``n_I + 2·n_O``
operator applications:

* ``Aᵀ Υ_O`` (``D_R × n_O``, adjoint applications) — the transpose of ``M_LO*``,
* ``A [Ω_O, Ω_I]`` (``D_L × (n_O + n_I)``, one measurement pass): the first
  ``n_O`` columns are ``M_RO``, the rest ``A Ω_I``, whose product with an
  independent ``Υ_I`` is the inner sketch ``M_I = Υ_Iᵀ A Ω_I`` (line 3).

Then ``Q = qr(Aᵀ Υ_O)`` and ``P = qr(A Ω_O)`` by streaming TSQR (lines 4–5),
the thin products ``Υ_Iᵀ [AΩ_I, P]`` (one pass over Y and P) and ``Ω_Iᵀ Q``
(one pass over Q) are streamed over row blocks, generating each block of Υ_I
and Ω_I once, and the ``n_O × n_O`` core is solved in float64 (lines 6–8).

Multi-pass (``passes=q ≥ 1``): each pass measures the adjoint on the current
left basis and the operator on the new right basis (block Krylov by default),
then ``Â = A V V*`` exactly (:mod:`._passes`): ``(2q+1)·n_O`` applications.
"""
from __future__ import annotations

import functools
import logging

import numpy as np

from ..backend import on_device
from ..blocking import BlockPlan
from ..linalg import inner_products, matmul
from ..operators import aslinearoperator
from ..random import TILE_ROWS, TestMatrix
from ._core import ssvd_core_cond
from ._inner import check_inner_sketch, resolve_inner
from ._passes import ssvd_passes
from ._run import check_certificates, run_and_certify
from ._sizes import resolve_sizes
from ._stages import orthonormalize, save_small, sketch_plan, sketch_rows, start_run, store_product
from .results import SSVDResult

log = logging.getLogger(__name__)


def ssvd(op, n_outer=None, n_inner=None, seed=0, store=None, client=None, dtype="float32", chunk=None,
         *, rank=None, passes=0, method="krylov", n_probes=10, residuals=False, progress=True,
         test_kind="gaussian", verify="size", gpu=False, storage_options=None, operator_id=None,
         inner_sketch="auto") -> SSVDResult:
    """Sketched SVD ``A ≈ U diag(S) Vh`` of a ``D_L × D_R`` operator with an adjoint.

    Parameters are those of :func:`sketchla.seigh` (``operator_id`` and the
    operator check included: a store made with another operator is refused);
    ``op`` must provide its adjoint (``op.H``), and ``n_O ≤ n_I ≤ min(D_L, D_R)``.
    With ``passes=q ≥ 1`` each pass is one adjoint and one forward measurement
    (``(2q+1)·n_O`` applications in all; a 2-power-iteration range finder of the
    same block makes ``6·n_O``). ``rank=r`` keeps the ``r`` largest singular
    triplets (sizes by the rules of :func:`sketchla.seigh` when ``n_outer`` is
    not given). ``residuals=True``: ``result.residual_norms``,
    ``(||A v_i − σ_i u_i||² + ||A* u_i − σ_i v_i||²)^{1/2}`` per triplet
    (``r`` plus ``r`` adjoint applications). ``inner_sketch`` (single pass, as
    for :func:`sketchla.seigh`, :mod:`._inner`): ``"accumulate"`` stores
    ``Υ_Iᵀ A Ω_I`` (``n_I × n_I``) in place of the ``D_L × n_I`` columns
    ``A Ω_I``; ``"auto"`` decides by the same rule. (``overwrite_sketch`` is
    SEIGH's only.)

    Returns
    -------
    SSVDResult with ``S`` (``r`` or n_O) descending, lazy ``U`` (D_L × that),
    ``Vh`` (that × D_R) and the error estimate ``error``.
    """
    op = aslinearoperator(op)
    D_L, D_R = op.shape
    if not op.has_adjoint:
        raise ValueError("ssvd needs the adjoint of op (rmatmat); pass rmatmat= to sketchla.aslinearoperator")
    sizes = resolve_sizes(n_outer, n_inner, rank, passes, method, min(D_L, D_R))
    inner_sketch = check_inner_sketch(inner_sketch, sizes.passes)
    n_probes, residuals = check_certificates(n_probes, residuals)
    run, seed, dt = start_run("ssvd", (D_L, D_R), sizes, seed, dtype, test_kind, verify, store, gpu, storage_options,
                              client=client, chunk=chunk, n_probes=n_probes, progress=progress,
                              operator_id=operator_id)
    n_O = sizes.n_outer
    if sizes.passes == 0:  # the run's measurements, in the order the identity check tries them
        first = [(op, TestMatrix((D_R, n_O + sizes.n_inner), seed=seed, name="omega", kind=test_kind, dtype=dt), "Y"),
                 (op.H, TestMatrix((D_L, n_O), seed=seed, name="upsilon_outer", kind=test_kind, dtype=dt), "Y_left")]
    else:
        first = [(op, TestMatrix((D_R, n_O), seed=seed, name="omega", kind=test_kind, dtype=dt), "Y0")]
    single_pass = functools.partial(_single_pass, inner_sketch=inner_sketch)
    return run_and_certify(run, SSVDResult, op, (single_pass, _multi_pass), sizes, identity=first, seed=seed,
                           test_kind=test_kind, dtype=dt, chunk=chunk, client=client, n_probes=n_probes,
                           residuals=residuals, progress=progress, verify=verify, gpu=gpu,
                           operator_id=operator_id)


def _single_pass(op, sizes, seed, test_kind, dt, chunk, ctx, inner_sketch="auto"):
    """Paper Alg. 1 (module docstring): measure, QR, thin products, core; saves stage ``core``.

    ``inner_sketch`` (:mod:`._inner`): ``"store"`` measures ``Y = A [Ω_O, Ω_I]``;
    ``"accumulate"`` measures ``A Ω_O`` as ``Y`` and ``Υ_Iᵀ A Ω_I`` as ``UY``.
    """
    run, (D_L, D_R), n_outer, n_inner = ctx.run, op.shape, sizes.n_outer, sizes.n_inner
    gpu = ctx.gpu
    ups_outer = TestMatrix((D_L, n_outer), seed=seed, name="upsilon_outer", kind=test_kind, dtype=dt)
    omega = TestMatrix((D_R, n_outer + n_inner), seed=seed, name="omega", kind=test_kind, dtype=dt)
    ups_inner = TestMatrix((D_L, n_inner), seed=seed, name="upsilon_inner", kind=test_kind, dtype=dt)
    plan = BlockPlan(chunk=chunk)
    plan_L = sketch_plan(run, "Y", plan, D_R, D_L, n_outer + n_inner)  # A Ω: D_L rows
    plan_R = sketch_plan(run, "Y_left", plan, D_L, D_R, n_outer)  # Aᵀ Υ_O: D_R rows
    # Alg. 1 lines 1-3: (M_LO*)ᵀ = Aᵀ Υ_O and A [Ω_O, Ω_I]
    Y_left = ctx.measure(op.H, ups_outer, "Y_left", plan_R)
    stored = (D_L * (2 * n_outer + n_inner) + 2 * D_R * n_outer) * dt.itemsize  # Y, Y_left, Q, P
    mode = resolve_inner(run, inner_sketch, op, omega, ups_inner, plan_L.chunk, ctx.c_measure, dt.itemsize,
                         inner_cols=n_inner, store_bytes=stored)
    if mode == "store":
        Y = ctx.measure(op, omega, "Y", plan_L)
        UY = None
    else:  # A Ω_O stored, Υ_Iᵀ A Ω_I projected in its tasks (the same n_O + n_I applications)
        Y = ctx.measure(op, omega.columns(0, n_outer), "Y", plan_L)
        UY = ctx.measure(op, omega.columns(n_outer, n_outer + n_inner), "UY", plan_L, project=ups_inner)

    with ctx.timed("qr"):
        Q = orthonormalize(run, sketch_rows(Y_left, plan_R.row_block), "Q", plan_R, client=ctx.c_linalg,
                           verify=ctx.verify, gpu=gpu)  # line 4
        P = orthonormalize(run, sketch_rows(Y, plan_L.row_block, slice(0, n_outer)), "P", plan_L,
                           client=ctx.c_linalg, verify=ctx.verify, gpu=gpu)  # line 5

    # M_I = Υ_Iᵀ A Ω_I and Υ_Iᵀ P in one pass over Y's inner columns and P (D_L rows), Ω_Iᵀ Q in one over Q
    # (D_R rows); each block of Υ_I and Ω_I drawn once
    with ctx.timed("thin_products"):
        (_, br_L), (_, br_R) = plan_L.thin_blocking(D_L, TILE_ROWS), plan_R.thin_blocking(D_R, TILE_ROWS)
        if UY is None:
            M_I, ups_P = inner_products([ups_inner], [on_device(sketch_rows(Y, plan_L.row_block, slice(
                n_outer, n_outer + n_inner)), gpu), P], client=ctx.c_linalg, block_rows=br_L, gpu=gpu)
        else:
            (ups_P,) = inner_products([ups_inner], [P], client=ctx.c_linalg, block_rows=br_L, gpu=gpu)
            M_I = np.asarray(UY[...])
        (omega_Q,) = inner_products([omega.columns(n_outer, n_outer + n_inner)], [Q], client=ctx.c_linalg,
                                    block_rows=br_R, gpu=gpu)

    with ctx.timed("core_solve"):
        U, S, Vh, conds = ssvd_core_cond(M_I, ups_P, omega_Q)  # lines 6-8
    save_small(run, "core", {"singular_values": S, "core_U": U, "core_Vh": Vh}, depends=["Q", "P"],
               info={"core_condition": [float(c) for c in conds]})


def _multi_pass(op, sizes, seed, test_kind, dt, chunk, ctx):
    """``passes ≥ 1`` (:mod:`._passes`): passes, ``A V = P R``, the singular vectors written as ``P``, ``Q``."""
    run, (D_L, D_R), b = ctx.run, op.shape, sizes.n_outer
    plan = BlockPlan(chunk=chunk)
    plan_L = sketch_plan(run, "Y0", plan, D_R, D_L, b)  # A V: D_L rows
    plan_R = sketch_plan(run, "Z1", plan, D_L, D_R, b)  # A* P: D_R rows
    S, P_lazy, U_R, basis, W_R = ssvd_passes(op, sizes, seed, test_kind, dt, plan_L, plan_R, ctx)
    with ctx.timed("singular_vectors"):
        if run.get_stage("P") is None:  # left vectors (P U_R), from the lazy TSQR factor of A V
            out = run.array("P", (D_L, b), chunks=(min(D_L, plan_L.row_block), min(b, plan_L.chunk)), dtype=dt)
            matmul(P_lazy, U_R.astype(dt), out=out, client=ctx.c_linalg, block_rows=min(D_L, plan_L.row_block),
                   gpu=ctx.gpu)
            run.set_stage("P", {"shape": [D_L, b]}, arrays=["P"])
        store_product(run, "Q", basis, W_R, plan_R, client=ctx.c_linalg, gpu=ctx.gpu)  # right vectors V W_R
    save_small(run, "core", {"singular_values": S, "core_U": np.eye(b), "core_Vh": np.eye(b)}, depends=["Q", "P"],
               info={"basis": [a.basename for a in basis]})
