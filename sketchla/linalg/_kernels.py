"""In-memory kernels for one row block or one small n×n factor.

Householder QRs (LAPACK ``geqrf``/``orgqr`` through SciPy on NumPy blocks,
``cupy.linalg.qr`` on CuPy blocks) stay orthonormal for rank-deficient and
badly conditioned inputs. Leaf kernels run in the block's own dtype (float32
stays float32: LAPACK ``sgeqrf`` moves half the bytes of double precision);
tree-node kernels run in float64 (they are small: a stack of at most
``fanin`` n×n triangles).

``local_r`` and ``local_qr`` call ``geqrf`` identically, so the R factor a
first pass computes and the Q factor a later pass recomputes from the same
block belong to the *same* factorisation (the lazy ``tsqr`` path relies on it).

Scaling (:func:`max_abs`, :func:`scale_exponent`, :func:`scaled`): a block
whose largest entry lies outside ``[2^-SAFE_EXP, 2^SAFE_EXP]`` is multiplied
by a power of two before it is factorised — exact, except that entries
``2^-p`` below the largest may round (an error far below the backward error
of any QR) — so subnormal inputs keep their digits and inputs near the
dtype's largest value do not overflow in a reflector or a Gram matrix. R
factors then travel with their exponent: a pair ``(r, e)`` stands for
``r · 2^e`` (the tree nodes accept such pairs).

The Cholesky-QR kernels (:func:`gram`, :func:`cholesky_upper`,
:func:`solve_right`, :func:`bits_checksum`) serve ``tsqr(method="cholesky")``
(:mod:`._cholqr`); :func:`cond_estimate` estimates κ₂ of their factors.
"""
from __future__ import annotations

import math

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


def _split(f):
    """A factor as ``(array, exponent)``: a pair ``(r, e)`` stands for ``r · 2^e``, an array for itself."""
    return (f[0], int(f[1])) if isinstance(f, tuple) else (f, None)


def _stack64(factors):
    """The factors stacked in float64 at their largest common scale → ``(stack, e)``.

    ``e`` is ``None`` when every factor is a plain array; else each pair
    ``(r, e_j)`` enters as ``r · 2^(e_j − e)`` with ``e = max e_j``.
    """
    parts = [_split(f) for f in factors]
    xp = get_array_module(parts[0][0])
    exps = [e for _, e in parts if e is not None]
    e = max(exps) if exps else None
    stack = []
    for r, e_j in parts:
        r = xp.asarray(r, dtype=xp.float64)
        if e is not None and (e_j or 0) != e:
            r = xp.ldexp(r, (e_j or 0) - e)
        stack.append(r)
    return xp.concatenate(stack, axis=0), e


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

    The factors are arrays or ``(r, e)`` pairs (see the module docstring); with
    pairs the R returned is a pair too. ``Q`` is h×k with h the total height of
    the stack and k = min(h, n); at the root the signs are fixed so that diag(R) ≥ 0.
    """
    stacked, e = _stack64(factors)
    xp = get_array_module(stacked)
    q, r = xp.linalg.qr(stacked, mode="reduced")
    if root:
        q, r = _sign_fix(q, r)
    return q, (r if e is None else (r, e))


def node_r(*factors, root: bool = False):
    """R-only variant of :func:`node_qr` (float64)."""
    stacked, e = _stack64(factors)
    xp = get_array_module(stacked)
    r = xp.linalg.qr(stacked, mode="r")
    if root:
        _, r = _sign_fix(None, r)
    return r if e is None else (r, e)


def unscale(f, dtype):
    """A factor (array or ``(r, e)`` pair) as one array ``r · 2^e`` of ``dtype``.

    Entries beyond the dtype's range become ±inf (with NumPy's overflow
    warning silenced: the caller reports it).
    """
    r, e = _split(f)
    xp = get_array_module(r)
    with np.errstate(over="ignore"):
        if e:
            r = xp.ldexp(xp.asarray(r, dtype=xp.float64), e)
        return r.astype(dtype)


# --------------------------------------------------------------------------- scaling
#: blocks whose largest |entry| lies in ``[2^-SAFE_EXP, 2^SAFE_EXP]`` are used as they are:
#: their squares and sums of squares stay far inside float32's and float64's range
SAFE_EXP = 64


def max_abs(block) -> float:
    """Largest |entry| of a block (NaN if it holds a NaN, inf if an inf; 0 if empty), no copy."""
    if block.size == 0:
        return 0.0
    xp = get_array_module(block)
    return float(xp.maximum(block.max(), -block.min()))


def scale_exponent(amax: float) -> int:
    """``e`` with ``amax · 2^-e`` in [0.5, 1) if ``amax`` lies outside the safe range, else 0.

    0 also for 0, inf and NaN (nothing to scale; NaN and inf are the finiteness
    check's business).
    """
    if not math.isfinite(amax) or amax == 0.0:
        return 0
    e = math.frexp(amax)[1]
    return e if abs(e - 1) > SAFE_EXP else 0


def scaled(block, e: int, dtype=None):
    """``block · 2^-e`` in ``dtype`` (default the block's); the block itself when nothing changes.

    A new array whenever ``e ≠ 0`` or the dtype changes (the caller may then
    overwrite it).
    """
    xp = get_array_module(block)
    dtype = np.dtype(dtype or block.dtype)
    out = block.astype(dtype, copy=False)
    if e:
        out = xp.ldexp(out, -e).astype(dtype, copy=False)
    return out


# --------------------------------------------------------------------------- Cholesky QR
def gram(z):
    """``Zᵀ Z`` (float64) of a block: NumPy calls BLAS ``syrk`` for ``z.T @ z``."""
    xp = get_array_module(z)
    z = z.astype(xp.float64, copy=False)
    return z.T @ z


def cholesky_upper(g, shift: float = 0.0):
    """Upper Cholesky factor R (float64, host) of ``G + shift·I``, or ``None`` if it is not
    numerically positive definite (a non-positive pivot)."""
    import scipy.linalg

    g = np.array(asnumpy(g), dtype=np.float64)
    g = 0.5 * (g + g.T)  # the Gram of an exact syrk is symmetric; this guards a GEMM's
    if shift:
        g[np.diag_indices_from(g)] += shift
    try:
        return scipy.linalg.cholesky(g, lower=False, check_finite=True)
    except (np.linalg.LinAlgError, ValueError):
        return None


def solve_right(z, r, *, owned: bool = False):
    """``Z R⁻¹`` for a C-ordered m×n block Z and an n×n upper-triangular R (moved to Z's
    device and dtype), by a triangular solve (row-wise backward stable).

    ``owned``: Z is a scratch copy that may be overwritten (NumPy: solved in place).
    """
    xp = get_array_module(z)
    r = like(r, z)
    if xp is not np:
        import cupyx.scipy.linalg

        return cupyx.scipy.linalg.solve_triangular(r, z.T, trans="T", lower=False).T
    from scipy.linalg import blas

    trsm = blas.dtrsm if z.dtype == np.float64 else blas.strsm
    zt = np.ascontiguousarray(z).T  # F-ordered n×m: solve Rᵀ X = Zᵀ, X = (Z R⁻¹)ᵀ
    x = trsm(1.0, r, zt, side=0, lower=0, trans_a=1, overwrite_b=bool(owned))
    return x.T


def bits_checksum(z) -> int:
    """A checksum of the exact bits of an array: the sum (mod 2^64) of its 4- or 8-byte
    words as unsigned integers. Equal arrays give equal sums; a change in any one
    word changes it."""
    xp = get_array_module(z)
    words = xp.ascontiguousarray(z).view(xp.uint32 if z.dtype.itemsize == 4 else xp.uint64)
    return int(words.sum(dtype=xp.uint64))


def like(small, ref):
    """``small`` moved to ``ref``'s array module and dtype (host↔device as needed)."""
    xp = get_array_module(ref)
    if get_array_module(small) is not xp:
        small = xp.asarray(asnumpy(small))
    return small.astype(ref.dtype, copy=False)
