"""The passes of a multi-pass SEIGH / SSVD: measure the operator on a stored basis, orthonormalise, repeat.

A run with ``passes = q ≥ 1`` replaces the single-pass sketch and its core
(paper Alg. 1/2) by randomized block Krylov iteration (default,
``method="krylov"``; Musco & Musco 2015, "Randomized block Krylov methods
for stronger and faster approximate SVD"; Tropp & Webber 2023, §11) or
randomized subspace iteration (``method="subspace"``; Halko, Martinsson &
Tropp 2011, Alg. 4.4), each with an exact Rayleigh–Ritz projection at the
end. With block ``b = n_O`` and a seeded Gaussian ``Ω`` (``D_R × b``):

* SEIGH (symmetric ``A``), ``(q+1)·b`` applications::

      Y_0 = A Ω,  V_0 = orth(Y_0)
      pass i = 1..q:  Y_i = A V_{i-1};  (i < q)  V_i = orth(Y_i ⊥ V_0..V_{i-1})   [krylov]
                                                 V_i = orth(Y_i)                  [subspace]
      T = Vᵀ (A V) with V = [V_0..V_{q-1}], A V = [Y_1..Y_q]   [krylov: q·b columns]
                   or V = V_{q-1},          A V = Y_q          [subspace: b columns]
      T = U Θ Uᵀ;  eigenpairs (θ_j, V u_j), the b largest |θ_j|

* SSVD, ``(2q+1)·b`` applications (``q·b`` of them with the adjoint)::

      Y_0 = A Ω,  P_0 = orth(Y_0)
      pass i = 1..q:  Z_i = A* P_{i-1};  V_i = orth(Z_i ⊥ V_1..V_{i-1}) [krylov] or orth(Z_i);
                      Y_i = A V_i;  (i < q)  P_i = orth(Y_i)
      A V = [Y_1..Y_q] (krylov) or Y_q (subspace) = P R  (TSQR);  R = U_R S W_Rᵀ
      Â = A V V* = (P U_R) S (V W_R)*,  the b largest σ

``orth(Y ⊥ V)`` is the last ``b`` columns of the Householder TSQR of
``[V, Y]``: orthonormal and orthogonal to ``V`` to working precision even
where ``Y`` is nearly inside ``span(V)`` (converged directions), so the
operator is applied next to an orthonormal block and the projection is exact
(no ``R⁻¹`` amplification). Every measurement (:func:`sketchla.measure`) reads
its columns of the stored basis (kept in the plan's column chunks) and every
orthonormalisation is a resumable stage of the run store, so a run killed in
pass ``i`` keeps every finished chunk of every pass. The TSQR blocks, the
test matrix and the column-wise measurement do not depend on the chunking or
the worker count, so neither does the result.
"""
from __future__ import annotations

import contextlib
import logging
import time

import dask.array as da
import numpy as np
import scipy.linalg

from ..backend import asnumpy, on_device
from ..executor import compute
from ..linalg import inner, tsqr
from ..measurement import measure
from ..random import TestMatrix
from ._core import ritz_eigh
from ._stages import orthonormalize, sketch_rows, stored_columns

log = logging.getLogger(__name__)


class _Pass:
    """What every stage of a run needs: the run store, its schedulers, options, and the stage
    timings (``measure``, ``qr``, ``thin_products``, …) its steps add their seconds to."""

    def __init__(self, run, c_measure, c_linalg, progress, verify, gpu, timings: dict):
        self.run, self.c_measure, self.c_linalg = run, c_measure, c_linalg
        self.progress, self.verify, self.gpu, self.timings = progress, verify, gpu, timings

    def timed(self, key: str):
        """Context adding the seconds of its block to ``timings[key]``."""
        return timed(self.timings, key)

    def measure(self, op, test, name, plan, project=None):
        """``op @ test`` (or ``projectᵀ op @ test``) into ``run[name]`` (:func:`sketchla.measure`;
        timed as ``measure``)."""
        log.info("measuring %s (%d columns%s)", name, test.shape[1], ", projected" if project is not None else "")
        with self.timed("measure"):
            return measure(op, test, self.run, name, plan=plan, client=self.c_measure, progress=self.progress,
                           verify=self.verify, check_operator=False,  # the run checked it (check_identity)
                           project=project)

    def orth(self, measured, name, plan, previous=()):
        """Stage ``name``: ``orth(measured ⊥ previous)`` in the plan's column chunks (module docstring;
        timed as ``qr``)."""
        with self.timed("qr"):
            return self._orth(measured, name, plan, previous)

    def _orth(self, measured, name, plan, previous):
        if not previous:
            return orthonormalize(self.run, sketch_rows(measured, plan.row_block), name, plan,
                                  client=self.c_linalg, verify=self.verify, gpu=self.gpu, col_chunk=plan.chunk)
        if self.run.get_stage(name, verify=self.verify) is not None:
            log.info("stage %s already complete in %s; skipping QR", name, self.run.path)
            return self.run.group[name]
        D, b = measured.shape
        k = sum(int(v.shape[1]) for v in previous)
        stacked = stored_columns([*previous, measured], plan.row_block)
        log.info("orthonormalising %s (%d × %d) against %d earlier columns by TSQR", name, D, b, k)
        Q, _ = tsqr(on_device(stacked, self.gpu), client=self.c_linalg,
                    block_rows=max(min(D, plan.row_block), k + b), gpu=self.gpu)
        out = self.run.array(name, (D, b), chunks=(min(D, plan.row_block), min(b, plan.chunk)),
                             dtype=measured.dtype)
        new = Q[:, k:]
        host = new.map_blocks(asnumpy, dtype=new.dtype, meta=np.empty((0, 0), dtype=new.dtype))
        compute(da.store(host, out, lock=False, compute=False), client=self.c_linalg)
        self.run.set_stage(name, {"shape": [D, b], "against": k}, arrays=[name])
        return out

    def gram(self, left, right, row_block):
        """``[left…]ᵀ [right…]`` (float64) over the stored arrays, streamed in one pass (timed as
        ``thin_products``)."""
        with self.timed("thin_products"):
            return compute_host(inner(on_device(stored_columns(left, row_block), self.gpu),
                                      on_device(stored_columns(right, row_block), self.gpu),
                                      client=self.c_linalg, block_rows=row_block, gpu=self.gpu))


@contextlib.contextmanager
def timed(timings: dict, key: str):
    """Add the seconds the block takes to ``timings[key]`` (a run's stage timings)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def compute_host(x) -> np.ndarray:
    """A small NumPy/CuPy result as a float64 host array."""
    return np.asarray(asnumpy(x), dtype=np.float64)


def seigh_passes(op, sizes, seed, test_kind, dt, plan, ctx: _Pass):
    """The passes and the Rayleigh–Ritz step of SEIGH (module docstring).

    Returns ``(θ, U, V, Y)``: the ``n_O`` Ritz values of largest ``|θ|``, their
    coefficients ``U`` in the stored blocks ``V`` (Ritz vectors ``[V…] U``)
    and the measurements ``Y`` with ``A [V…] = [Y…]``.
    """
    D = op.shape[0]
    q, b, krylov = sizes.passes, sizes.n_outer, sizes.method == "krylov"
    omega = TestMatrix((D, b), seed=seed, name="omega", kind=test_kind, dtype=dt)
    Y, V = [ctx.measure(op, omega, "Y0", plan)], []
    for i in range(1, q + 1):
        V.append(ctx.orth(Y[-1], f"V{i - 1}", plan, previous=V if krylov else ()))
        Y.append(ctx.measure(op, V[-1], f"Y{i}", plan))
        log.info("seigh: pass %d of %d measured", i, q)
    basis, images = (V, Y[1:]) if krylov else (V[-1:], Y[-1:])
    T = ctx.gram(basis, images, plan.row_block)  # Vᵀ A V
    with ctx.timed("core_solve"):
        theta, U = ritz_eigh(T)
    return theta[:b], U[:, :b], basis, images


def ssvd_passes(op, sizes, seed, test_kind, dt, plan_L, plan_R, ctx: _Pass):
    """The passes and the final projection of SSVD (module docstring).

    Returns ``(S, P_lazy, U_R, V, W_R)``: the ``n_O`` largest singular values of
    ``A V`` with ``A V = P R`` (``P`` a lazy Dask TSQR factor), ``R = U_R S W_Rᵀ``
    truncated to ``n_O``, and the stored right blocks ``V``.
    """
    D_L, D_R = op.shape
    q, b, krylov = sizes.passes, sizes.n_outer, sizes.method == "krylov"
    omega = TestMatrix((D_R, b), seed=seed, name="omega", kind=test_kind, dtype=dt)
    Y, V = [ctx.measure(op, omega, "Y0", plan_L)], []
    for i in range(1, q + 1):
        P = ctx.orth(Y[-1], f"P{i - 1}", plan_L)
        Z = ctx.measure(op.H, P, f"Z{i}", plan_R)
        V.append(ctx.orth(Z, f"V{i}", plan_R, previous=V if krylov else ()))
        Y.append(ctx.measure(op, V[-1], f"Y{i}", plan_L))
        log.info("ssvd: pass %d of %d measured", i, q)
    basis, images = (V, Y[1:]) if krylov else (V[-1:], Y[-1:])
    with ctx.timed("qr"):
        P_lazy, R = tsqr(on_device(stored_columns(images, plan_L.row_block), ctx.gpu), client=ctx.c_linalg,
                         block_rows=max(min(D_L, plan_L.row_block), b * len(images)), gpu=ctx.gpu)
    with ctx.timed("core_solve"):
        U_R, S, W_Rh = scipy.linalg.svd(compute_host(R), full_matrices=False)
    return S[:b], P_lazy, U_R[:, :b], basis, W_Rh[:b].T
