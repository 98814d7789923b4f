"""Uniform random points of O^{D×k} and M^{D×k} (paper Appendix A.4, Alg. 3).

* :func:`random_stiefel` — Haar-uniform D×k matrix with orthonormal columns:
  QR of a D×k standard Gaussian with the signs of R's diagonal moved into Q
  (Mezzadri 2007), which gives the same distribution as the subgroup
  algorithm of Diaconis & Shahshahani (1987) used by the paper.
* :func:`random_mask` — uniform k-subset of {0, …, D−1} (a column permutation
  of I_{D,k} up to the order of columns, which does not change the span).
* :func:`mask_matrix` — the explicit D×k matrix of a mask (for brute force).

Seeds are a non-negative int, a ``numpy.random.SeedSequence`` or a
``numpy.random.Generator`` (then it is advanced, so successive calls differ).
"""
from __future__ import annotations

import numpy as np

from ..backend import check_float_dtype
from ._validate import check_k_D, check_positive_int, check_seed, mask_indices, to_host

__all__ = ["random_stiefel", "random_mask", "mask_matrix"]


def random_stiefel(D: int, k: int, seed=0, *, dtype="float64") -> np.ndarray:
    """Uniformly (Haar) distributed D×k matrix with orthonormal columns.

    Parameters
    ----------
    D, k : 1 <= k <= D
    seed : int, SeedSequence or numpy Generator
    dtype : "float64" (default) or "float32" (cast after a float64 QR)

    Returns
    -------
    (D, k) NumPy array Q with QᵀQ = I_k.
    """
    k, D = check_k_D(k, D)
    dt = check_float_dtype(dtype, "dtype")
    rng = check_seed(seed)
    G = rng.standard_normal((D, k))
    Q, R = np.linalg.qr(G)
    d = np.sign(np.diagonal(R))
    d[d == 0] = 1.0  # probability zero, but keep Q orthonormal
    Q *= d  # makes the factorisation unique ⇒ Q is Haar-distributed
    return Q.astype(dt, copy=False)


def random_mask(D: int, k: int, seed=0) -> np.ndarray:
    """Uniformly random k-sparse mask of R^D as sorted distinct row indices.

    Every k-subset of {0, …, D−1} is equally likely.

    Returns
    -------
    (k,) int64 NumPy array, sorted ascending.
    """
    k, D = check_k_D(k, D)
    rng = check_seed(seed)
    return np.sort(rng.choice(D, size=k, replace=False).astype(np.int64))


def mask_matrix(indices, D: int, *, dtype="float64") -> np.ndarray:
    """Explicit D×k Stiefel matrix of a mask: column j is e_{indices[j]} (paper §3).

    ``indices`` is an index array (column order kept) or a boolean vector of
    length D (columns in increasing row order). Memory O(D·k): meant for small
    cases and brute-force checks.
    """
    D = check_positive_int(D, "D")
    dt = check_float_dtype(dtype, "dtype")
    idx_sorted, _ = mask_indices(indices, "indices", D)
    raw = np.asarray(to_host(indices))
    idx = idx_sorted if raw.dtype == np.bool_ else raw.astype(np.int64)
    M = np.zeros((D, idx.size), dtype=dt)
    M[idx, np.arange(idx.size)] = 1.0
    return M
