"""Small in-memory core solves of SEIGH and SSVD (float64, NumPy).

These are the lines of paper Alg. 1 / Alg. 2 that act on n×n matrices only:
everything D-sized has already been reduced to thin products by the caller.
The pseudoinverses are applied through least squares (`scipy.linalg.lstsq`,
an SVD-based solver), never through normal equations, as Tropp et al. (2019,
§4.2) recommend for numerical stability.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from ..backend import asnumpy


def _host64(x) -> np.ndarray:
    """``x`` (NumPy or CuPy: the thin products of a ``gpu=True`` run are CuPy) as a float64 host array."""
    return np.asarray(asnumpy(x), dtype=np.float64)


def _pinv_apply(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Return ``A^† B`` via least squares (``A``: m×n with m ≥ n, ``B``: m×k)."""
    X, *_ = scipy.linalg.lstsq(A, B, lapack_driver="gelsd", check_finite=True)
    return X


def seigh_core(M_I, ups_Q, omega_Q):
    """Core of SEIGH (paper Alg. 2, lines 4–8).

    Parameters
    ----------
    M_I : (n_I, n_I) array
        Inner sketch ``Υᵀ A Ω`` (with ``Ω = [Ω_O, Ω_I]``, line 2).
    ups_Q : (n_I, n_O) array
        ``Υᵀ Q``.
    omega_Q : (n_I, n_O) array
        ``Ωᵀ Q`` (same column order of Ω as in ``M_I``).

    Returns
    -------
    eigenvalues : (n_O,) float64, sorted by descending ``|λ|`` (signs kept)
    U : (n_O, n_O) float64, orthonormal eigenvectors of the core ``C``, same order

    Notes
    -----
    ``C = (ΥᵀQ)^† M_I [(ΩᵀQ)^†]ᵀ`` (lines 5–7; the SVD of ``M_I`` in line 4
    is only a factorisation of the same product, so it is folded into the two
    least-squares solves). ``C`` is symmetric in exact arithmetic; its
    symmetric part ``(C + Cᵀ)/2`` is the closest symmetric matrix in Frobenius
    norm and is what ``eigh`` (line 8) receives.
    """
    M_I, ups_Q, omega_Q = (_host64(x) for x in (M_I, ups_Q, omega_Q))
    X = _pinv_apply(ups_Q, M_I)  # n_O × n_I
    C = _pinv_apply(omega_Q, X.T).T  # n_O × n_O
    C = 0.5 * (C + C.T)
    lam, U = scipy.linalg.eigh(C)
    order = np.argsort(-np.abs(lam), kind="stable")
    return lam[order], U[:, order]


def ssvd_core(M_I, ups_P, omega_Q):
    """Core of SSVD (paper Alg. 1, lines 6–8).

    Parameters
    ----------
    M_I : (n_I, n_I) array, ``Υ_Iᵀ A Ω_I``
    ups_P : (n_I, n_O) array, ``Υ_Iᵀ P``
    omega_Q : (n_I, n_O) array, ``Ω_Iᵀ Q``

    Returns
    -------
    U : (n_O, n_O), S : (n_O,) descending, Vh : (n_O, n_O), all float64, with
    ``C = (Υ_IᵀP)^† M_I [(Ω_IᵀQ)^†]ᵀ = U diag(S) Vh``.
    """
    M_I, ups_P, omega_Q = (_host64(x) for x in (M_I, ups_P, omega_Q))
    X = _pinv_apply(ups_P, M_I)  # line 6
    C = _pinv_apply(omega_Q, X.T).T  # line 7
    U, S, Vh = scipy.linalg.svd(C, full_matrices=False)  # line 8
    return U, S, Vh
