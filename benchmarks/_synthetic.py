"""Cheap synthetic symmetric operators with a known spectrum, for benchmarks.

``HouseholderDiagonal``: ``A = H diag(λ) H`` with the Householder reflection
``H = I − 2 v vᵀ`` (``v`` a seeded random unit vector). ``A`` is dense in the
coordinate basis, yet one application to a ``D × b`` block costs ``O(D·b)`` and
``O(D)`` memory; its eigenpairs are exactly ``(λ_i, H e_i)``.

``sparse_matrix``: a seeded ``D × D`` sparse matrix with a few Gaussian entries per
row at random columns (symmetrised on request), for store and I/O benchmarks.
"""
from __future__ import annotations

import numpy as np


def sparse_matrix(D: int, per_row: int = 4, seed: int = 0, symmetric: bool = False):
    """``D × D`` CSR matrix with ``per_row`` N(0, 1) entries in each row at random columns
    (``A + Aᵀ`` if ``symmetric``)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(D), per_row)
    A = sp.csr_array((rng.standard_normal(per_row * D), (rows, rng.integers(0, D, per_row * D))), shape=(D, D))
    return sp.csr_array(A + A.T) if symmetric else A


def spectrum(D: int, decay: float = 1.5) -> np.ndarray:
    """``|λ_i| = (i+1)^{-decay}``, indefinite: every third eigenvalue is negative."""
    i = np.arange(D, dtype=np.float64)
    return np.where(i % 3 == 2, -1.0, 1.0) * (i + 1.0) ** (-decay)


def householder_vector(D: int, seed: int) -> np.ndarray:
    v = np.random.default_rng([seed, 0x5EED]).standard_normal(D)
    return v / np.linalg.norm(v)


class HouseholderDiagonal:
    """``A = H diag(λ) H``, ``H = I − 2vvᵀ``; built once per worker from ``(D, seed, decay, dtype)``."""

    def __init__(self, D: int, seed: int = 0, decay: float = 1.5, dtype="float32"):
        self.shape = (D, D)
        self.dtype = np.dtype(dtype)
        self.lam = spectrum(D, decay).astype(self.dtype)
        self.v = householder_vector(D, seed).astype(self.dtype)

    def _reflect(self, X):
        return X - 2.0 * np.outer(self.v, self.v @ X).astype(X.dtype, copy=False)

    def matmat(self, X):
        Y = self._reflect(X)
        Y *= self.lam[:, None]
        return self._reflect(Y)

    rmatmat = matmat

    def eigenvector_overlap(self, V, r: int) -> float:
        """``overlap`` of span(V[:, :r]) with the exact top-r eigenvectors ``H e_i`` (streamed).

        ``V`` is a D × n Dask array; ``(H e_i)ᵀ V = V[i, :] − 2 v_i (vᵀ V)``.
        """
        vtV = np.asarray((V[:, :r].T @ self.v.astype(np.float64)).compute())
        rows = np.asarray(V[:r, :r].compute(), dtype=np.float64)
        M = rows - 2.0 * np.outer(self.v[:r], vtV)
        return float(np.sum(M * M) / r)
