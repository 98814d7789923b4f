"""In-memory QR kernels for one row block or one reduction-tree node.

All are Householder QRs (LAPACK ``geqrf``/``orgqr`` through SciPy on NumPy
blocks, ``cupy.linalg.qr`` on CuPy blocks), so they stay orthonormal for
rank-deficient and badly conditioned inputs. Leaf kernels run in the block's
own dtype (float32 stays float32: LAPACK ``sgeqrf`` moves half the bytes of
double precision); tree-node kernels run in float64 (they are small: a stack
of at most ``fanin`` n×n triangles).

``local_r``, ``local_qr`` and :func:`factor` call ``geqrf`` identically, so
the R factor a first pass computes and the Q factor a later pass recomputes
from the same block belong to the *same* factorisation (the lazy ``tsqr``
path relies on it). :func:`cond_estimate` and :func:`solve_upper` serve the
``Q_i = A_i R_i⁻¹`` route of ``tsqr(method="auto")`` for well-conditioned
blocks.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from ..backend import asnumpy, get_array_module


#: LAPACK workspace: room for this many columns of block reflectors (SciPy's
#: default ``lwork = 3 n`` forces 3-column blocks, nearly the BLAS-2
#: algorithm, much slower on tall blocks).
_NB = 64


def _lwork(n: int) -> int:
    return max(1, _NB * int(n))


#: rows per slab of :func:`reorder` (slabs of a few hundred KB stay in cache)
_SLAB_ROWS = 256


def reorder(x, order: str):
    """A copy of the 2-D NumPy array ``x`` in memory ``order`` ("C" or "F").

    Copies slab by slab of ``_SLAB_ROWS`` rows: a tall C↔F transposition in
    one ``np.asfortranarray`` call strides through the whole array per
    column, with far worse cache use.
    """
    out = np.empty(x.shape, dtype=x.dtype, order=order)
    for i in range(0, x.shape[0], _SLAB_ROWS):
        out[i:i + _SLAB_ROWS] = x[i:i + _SLAB_ROWS]
    return out


def _geqrf(block):
    """LAPACK geqrf of a NumPy block → (packed reflectors/R in Fortran order, tau).

    ``block`` is not modified: it is copied once into Fortran order and the
    copy is factorised in place.
    """
    geqrf, = lapack.get_lapack_funcs(("geqrf",), (block,))
    work = reorder(block, "F")
    qr, tau, _work, info = geqrf(work, lwork=_lwork(block.shape[1]), overwrite_a=True)
    if info != 0:  # pragma: no cover - LAPACK argument errors only
        raise RuntimeError(f"LAPACK geqrf failed with info={info}")
    return qr, tau


def local_r(block):
    """R factor (k×n, k = min(m, n)) of an m×n block, upper triangular."""
    xp = get_array_module(block)
    if xp is not np:
        return xp.linalg.qr(block, mode="r")
    k = min(block.shape)
    qr, _tau = _geqrf(block)
    return np.triu(qr[:k])


def local_qr(block):
    """Reduced Householder QR of an m×n block: Q (m×k) with orthonormal columns, R (k×n)."""
    xp = get_array_module(block)
    if xp is not np:
        return xp.linalg.qr(block, mode="reduced")
    m, n = block.shape
    k = min(m, n)
    qr, tau = _geqrf(block)
    r = np.triu(qr[:k])
    orgqr, = lapack.get_lapack_funcs(("orgqr",), (qr,))
    q, _work, info = orgqr(qr[:, :k], tau, lwork=_lwork(k), overwrite_a=True)
    if info != 0:  # pragma: no cover
        raise RuntimeError(f"LAPACK orgqr failed with info={info}")
    return q, r


class _Factor:
    """Householder QR of one block, Q not formed yet: ``.r`` (k×n), ``.q()`` → (Q, R).

    NumPy blocks keep LAPACK's packed reflectors, so ``q()`` is one ``orgqr``
    and returns exactly ``.r``. CuPy blocks (no packed access) recompute the
    reduced QR; cuSOLVER is deterministic, and the R returned with Q is the one
    to use with it.
    """

    __slots__ = ("block", "packed", "tau", "r")

    def __init__(self, block):
        xp = get_array_module(block)
        if xp is np:
            self.block = None
            self.packed, self.tau = _geqrf(block)
            self.r = np.triu(self.packed[: min(block.shape)])
        else:
            self.block, self.packed, self.tau = block, None, None
            self.r = xp.linalg.qr(block, mode="r")

    def q(self):
        if self.packed is None:
            return get_array_module(self.block).linalg.qr(self.block, mode="reduced")
        k = self.r.shape[0]
        orgqr, = lapack.get_lapack_funcs(("orgqr",), (self.packed,))
        q, _work, info = orgqr(self.packed[:, :k], self.tau, lwork=_lwork(k), overwrite_a=True)
        if info != 0:  # pragma: no cover
            raise RuntimeError(f"LAPACK orgqr failed with info={info}")
        self.packed = None  # overwritten by orgqr
        return q, self.r


def factor(block) -> _Factor:
    """Householder QR of a block with Q left implicit (see :class:`_Factor`)."""
    return _Factor(block)


#: power-iteration steps of :func:`cond_estimate`
_COND_STEPS = 10


def cond_estimate(r) -> float:
    """Estimate of the 2-norm condition number of a square triangular ``r`` (float64, host).

    Power iteration on ``RᵀR`` and on ``(RᵀR)⁻¹`` (triangular solves) from a
    fixed pseudo-random start, ``_COND_STEPS`` steps each: O(n²) per step.
    Power iteration approaches the extreme singular values from inside, so
    this *under*-estimates κ₂, typically by well under 2× after 10 steps from
    a random start; callers compare it with a threshold several times below
    the κ they can afford. A zero or non-finite diagonal gives ``inf``.
    """
    import scipy.linalg

    r = np.asarray(asnumpy(r), dtype=np.float64)
    n = r.shape[0]
    if r.shape != (n, n):
        raise ValueError(f"cond_estimate needs a square triangle, got shape {r.shape}")
    d = np.abs(np.diagonal(r))
    if n == 0 or not np.isfinite(r).all() or d.min() <= np.finfo(np.float64).tiny:
        return float("inf")
    x0 = np.random.default_rng(0x5EED).standard_normal(n)
    x = x0 / np.linalg.norm(x0)
    smax2 = 0.0
    for _ in range(_COND_STEPS):
        y = r.T @ (r @ x)
        smax2 = float(np.linalg.norm(y))
        if smax2 == 0.0:
            return float("inf")
        x = y / smax2
    x = x0 / np.linalg.norm(x0)
    inv_smin2 = 0.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(_COND_STEPS):
            z = scipy.linalg.solve_triangular(r, x, trans="T", check_finite=False)
            y = scipy.linalg.solve_triangular(r, z, check_finite=False)
            inv_smin2 = float(np.linalg.norm(y))
            if not np.isfinite(inv_smin2) or inv_smin2 == 0.0:
                return float("inf")
            x = y / inv_smin2
    return float(np.sqrt(smax2 * inv_smin2))


def solve_upper(r, s):
    """``R⁻¹ S`` (float64, host) for a square upper-triangular R and an n×p S."""
    import scipy.linalg

    r = np.asarray(asnumpy(r), dtype=np.float64)
    s = np.asarray(asnumpy(s), dtype=np.float64)
    return scipy.linalg.solve_triangular(r, s, check_finite=False)


def _stack64(factors):
    xp = get_array_module(factors[0])
    return xp.concatenate([xp.asarray(f, dtype=xp.float64) for f in factors], axis=0)


def _sign_fix(q, r):
    """Flip signs so that diag(R) ≥ 0 (a deterministic convention): Q←QD, R←DR."""
    xp = get_array_module(r)
    d = xp.sign(xp.diagonal(r)).astype(r.dtype)
    d[d == 0] = 1
    r = r * d[:, None]
    if q is not None:
        q = q * d[None, :]
    return q, r


def node_qr(*factors, root: bool = False):
    """QR (float64) of the stacked R factors of a node's children → (Q, R).

    ``Q`` is h×k with h the total height of the stack and k = min(h, n); at the
    root the signs are fixed so that diag(R) ≥ 0.
    """
    stacked = _stack64(factors)
    xp = get_array_module(stacked)
    q, r = xp.linalg.qr(stacked, mode="reduced")
    if root:
        q, r = _sign_fix(q, r)
    return q, r


def node_r(*factors, root: bool = False):
    """R-only variant of :func:`node_qr` (float64)."""
    stacked = _stack64(factors)
    xp = get_array_module(stacked)
    r = xp.linalg.qr(stacked, mode="r")
    if root:
        _, r = _sign_fix(None, r)
    return r


def like(small, ref):
    """``small`` moved to ``ref``'s array module and dtype (host↔device as needed)."""
    xp = get_array_module(ref)
    if get_array_module(small) is not xp:
        small = xp.asarray(asnumpy(small))
    return small.astype(ref.dtype, copy=False)
