"""In-memory QR kernels for one row block or one reduction-tree node.

All are Householder QRs (LAPACK ``geqrf``/``orgqr`` through SciPy on NumPy
blocks, ``cupy.linalg.qr`` on CuPy blocks), so they stay orthonormal for
rank-deficient and badly conditioned inputs. Leaf kernels run in the block's
own dtype (float32 stays float32: LAPACK ``sgeqrf`` is about twice as fast as
double precision); tree-node kernels run in float64 (they are small: a stack
of at most ``fanin`` n×n triangles).

``local_r`` and ``local_qr`` call ``geqrf`` identically, so the R factor a
first pass computes and the Q factor a later pass recomputes from the same
block belong to the *same* factorisation (the lazy ``tsqr`` path relies on it).
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from ..backend import asnumpy, get_array_module


#: LAPACK workspace: at least this many columns' worth of block reflectors
#: (SciPy's default ``lwork = 3 n`` forces the unblocked, BLAS-2 algorithm,
#: about 3× slower on tall blocks).
_NB = 64


def _lwork(n: int) -> int:
    return max(1, _NB * int(n))


def _geqrf(block):
    """LAPACK geqrf of a NumPy block → (packed reflectors/R in Fortran order, tau).

    ``block`` is not modified: a C-ordered block is copied once into Fortran
    order by the wrapper, a Fortran-ordered one is copied explicitly.
    """
    geqrf, = lapack.get_lapack_funcs(("geqrf",), (block,))
    work = block
    if block.flags.f_contiguous:
        work = block.copy(order="F")
    qr, tau, _work, info = geqrf(work, lwork=_lwork(block.shape[1]), overwrite_a=work is not block)
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
