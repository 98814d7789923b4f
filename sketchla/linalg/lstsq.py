"""Streamed least squares ``min_X ||A X - B||_F`` for tall A (one pass over A and B).

Used for the pseudoinverse solves of the sketched decompositions (paper
Alg. 1 lines 6–7, Alg. 2 lines 5–6) when the tall factor does not fit in
memory. Method: TSQR of the augmented matrix ``[A  B]`` (D×(n+k)) with the
same bounded fan-in tree as :func:`sketchla.linalg.tsqr`, keeping only the
R factor::

    qr([A B]) = Q [[R11, C], [0, R22]]   ⇒   A = Q1 R11,  Q1ᵀ B = C,

so ``||A X - B||² = ||R11 X - C||² + ||R22||²`` and X solves the small n×n
problem ``R11 X = C``. No Q is ever formed, A and B are read once.

Rank deficiency: if LAPACK's estimate of R11's reciprocal condition number
(``trcon``) is above ``rcond``, X comes from a triangular solve; otherwise
from ``scipy.linalg.lstsq(R11, C, cond=rcond)`` (SVD based), which gives the
minimum-norm least-squares solution with singular values below
``rcond · σ_max`` treated as zero — the same solution as an SVD-based lstsq
on A with that cutoff.
"""
from __future__ import annotations

import logging

import dask
import numpy as np
import scipy.linalg

from ..backend import asnumpy, get_array_module
from ..executor import compute
from ..graph_keys import key_prefix
from ._args import check_options
from ._blocks import _Source, check_finite_block, check_same_rows, materialize, plan_rows, row_bounds
from ._kernels import local_r
from ._tree import build_tree, tree_fanin

logger = logging.getLogger(__name__)


def _leaf_aug_r(ref_a, ref_b, index, start, stop, dtype, check):
    a = materialize(ref_a)
    b = materialize(ref_b)
    if check:
        check_finite_block(a, "A", index, start, stop)
        check_finite_block(b, "B", index, start, stop)
    xp = get_array_module(a)
    if get_array_module(b) is not xp:
        b = xp.asarray(asnumpy(b))
    ab = xp.concatenate([a.astype(dtype, copy=False), b.astype(dtype, copy=False)], axis=1)
    return local_r(ab)


def lstsq(A, B, *, block_rows=None, rcond=None, client=None, fanin=None, check_finite=True,
          gpu=False):
    """Least-squares solution of ``A X ≈ B`` for tall A, streamed over row blocks.

    Parameters
    ----------
    A : zarr.Array, dask.array.Array or NumPy/CuPy array, shape (D, n), D ≥ n, float32/float64.
    B : zarr.Array, dask.array.Array or NumPy/CuPy array, shape (D, k) or (D,).
    block_rows : int, optional
        Rows per block; default from a 64 MB budget for the n + k columns.
    rcond : float, optional
        Relative cutoff for rank deficiency (default ``n · eps`` of the
        working dtype). See the module docstring.
    client, fanin, check_finite, gpu
        As for :func:`sketchla.linalg.tsqr`.

    Returns
    -------
    X : ndarray (n, k), or (n,) for a 1-D B, in the result dtype of A and B
        (the reduction and the small solve run in float64). NumPy, or CuPy
        when the blocks are CuPy.
    """
    check_options(client=client, check_finite=check_finite, gpu=gpu, fanin=fanin, rcond=rcond)
    a = _Source(A, "A", allow_memory=True, gpu=gpu)
    b = _Source(B, "B", allow_vector=True, allow_memory=True, gpu=gpu)
    D, n = a.shape
    if D < n:
        raise ValueError(f"A must be tall (D >= n), got shape {a.shape}")
    if n < 1:
        raise ValueError(f"A must have at least one column, got shape {a.shape}")
    check_same_rows(a, b)
    k = b.n_cols
    width = n + k
    dtype = np.result_type(a.dtype, b.dtype)
    block_rows = plan_rows(block_rows, width, dtype.itemsize, n_rows=D, align=a.row_block)
    if rcond is None:
        rcond = float(np.finfo(dtype).eps) * n
    bounds = row_bounds(D, block_rows)
    fan = tree_fanin(width, block_rows, fanin)
    prefix = key_prefix("lstsq", a, b, bounds, fan, check_finite)
    leaves = [
        dask.delayed(_leaf_aug_r, pure=True)(ra, rb, i, s, e, dtype, check_finite,
                                             dask_key_name=f"{prefix}-leaf-{i}")
        for i, (ra, rb, (s, e)) in enumerate(zip(a.blocks(bounds), b.blocks(bounds), bounds))
    ]
    heights = [min(e - s, width) for s, e in bounds]
    root_r, _ = build_tree(leaves, heights, width, fan, prefix, want_q=False)
    (r_aug,) = compute(root_r, client=client)
    xp = get_array_module(r_aug)
    r_aug = asnumpy(r_aug)
    r11 = r_aug[:n, :n]
    c = r_aug[:n, n:]
    x = _solve_r(r11, c, rcond)
    if b.vector:
        x = x[:, 0]
    x = x.astype(dtype, copy=False)
    return x if xp is np else xp.asarray(x)


def _solve_r(r, c, rcond):
    """Solve the n×n upper-triangular problem ``R X = C`` (min-norm if rank deficient)."""
    scale = np.abs(np.diagonal(r)).max() if r.size else 0.0
    if scale == 0.0:
        return np.zeros((r.shape[1], c.shape[1]))
    trcon, = scipy.linalg.lapack.get_lapack_funcs(("trcon",), (r,))
    rc, info = trcon(r, norm="1", uplo="U", diag="N")
    if info == 0 and rc > rcond:
        return scipy.linalg.solve_triangular(r, c, lower=False, check_finite=False)
    logger.info("lstsq: R is ill-conditioned (rcond estimate %.3g <= %.3g); "
                "using the minimum-norm SVD solution", rc, rcond)
    x, *_ = scipy.linalg.lstsq(r, c, cond=rcond, check_finite=False)
    return x
