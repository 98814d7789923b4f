"""Small in-memory core solves of SEIGH and SSVD (float64, NumPy).

These are the lines of paper Alg. 1 / Alg. 2 that act on n×n matrices only:
everything D-sized has already been reduced to thin products by the caller.
The pseudoinverses are applied through least squares (`scipy.linalg.lstsq`,
an SVD-based solver), never through normal equations, as Tropp et al. (2019,
§4.2) recommend for numerical stability.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from ..backend import asnumpy

#: a core solve whose test-matrix products ``ΥᵀQ`` / ``ΩᵀQ`` have a larger condition number
#: warns (:class:`IllConditionedCoreWarning`): with Gaussian test matrices and ``n_I = 2·n_O + 1``
#: it stays below 8 (99th percentile, n_O = 3…200); ``n_I = n_O`` gives 35–650 (medians)
CORE_COND_LIMIT = 25.0


class IllConditionedCoreWarning(UserWarning):
    """The core solve of a single-pass sketch amplifies its noise: ``n_inner`` is too close to ``n_outer``."""


def _host64(x) -> np.ndarray:
    """``x`` (NumPy or CuPy: the thin products of a ``gpu=True`` run are CuPy) as a float64 host array."""
    return np.asarray(asnumpy(x), dtype=np.float64)


def _pinv_apply(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, float]:
    """Return ``A^† B`` via least squares (``A``: m×n with m ≥ n, ``B``: m×k) and ``κ₂(A)``
    (from the singular values ``gelsd`` computes anyway)."""
    X, _, _, sv = scipy.linalg.lstsq(A, B, lapack_driver="gelsd", check_finite=True)
    return X, (float(sv[0] / sv[-1]) if sv.size and sv[-1] > 0 else float("inf"))


def _core_solve(M_I, left, right):
    """``C = left^† M_I (right^†)ᵀ`` (paper Alg. 1 lines 6–7, Alg. 2 lines 5–7) and
    ``(κ₂(left), κ₂(right))``."""
    M_I, left, right = (_host64(x) for x in (M_I, left, right))
    X, k_left = _pinv_apply(left, M_I)  # n_O × n_I
    C, k_right = _pinv_apply(right, X.T)
    return C.T, (k_left, k_right)


def check_core_condition(conds, n_outer: int, n_inner: int, names=("ΥᵀQ", "ΩᵀQ"), stacklevel=3) -> None:
    """Warn (:class:`IllConditionedCoreWarning`) when a condition number of the core solve
    exceeds :data:`CORE_COND_LIMIT`, naming the fix."""
    worst = max(conds)
    if worst <= CORE_COND_LIMIT:
        return
    detail = ", ".join(f"κ({n}) = {c:.3g}" for n, c in zip(names, conds))
    warnings.warn(
        f"the core solve of this single-pass sketch is ill-conditioned ({detail}; above {CORE_COND_LIMIT:g}): "
        f"n_inner={n_inner} is too close to n_outer={n_outer}, so the core amplifies the sketch's noise and "
        f"the values can be far too large. Use n_inner >= 2*n_outer + 1 (the default when n_inner is "
        f"omitted), or passes >= 1.", IllConditionedCoreWarning, stacklevel=stacklevel)


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
    lam, U, conds = seigh_core_cond(M_I, ups_Q, omega_Q)
    check_core_condition(conds, U.shape[0], np.shape(M_I)[0])
    return lam, U


def seigh_core_cond(M_I, ups_Q, omega_Q):
    """:func:`seigh_core` without the warning, also returning ``(κ(ΥᵀQ), κ(ΩᵀQ))``."""
    C, conds = _core_solve(M_I, ups_Q, omega_Q)
    lam, U = ritz_eigh(C)
    return lam, U, conds


def ritz_eigh(T):
    """Eigenpairs of the symmetric part ``(T + Tᵀ)/2`` of a small square ``T`` (float64), sorted by
    descending ``|λ|`` (signs kept; ties in the order ``eigh`` gives).

    The core of SEIGH (Alg. 2 line 8) and the Rayleigh–Ritz step of a multi-pass run
    (``T = Vᵀ A V``, symmetric in exact arithmetic).
    """
    T = _host64(T)
    lam, U = scipy.linalg.eigh(0.5 * (T + T.T))
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
    U, S, Vh, conds = ssvd_core_cond(M_I, ups_P, omega_Q)
    check_core_condition(conds, U.shape[0], np.shape(M_I)[0], names=("Υ_IᵀP", "Ω_IᵀQ"))
    return U, S, Vh


def ssvd_core_cond(M_I, ups_P, omega_Q):
    """:func:`ssvd_core` without the warning, also returning ``(κ(Υ_IᵀP), κ(Ω_IᵀQ))``."""
    C, conds = _core_solve(M_I, ups_P, omega_Q)  # lines 6-7
    U, S, Vh = scipy.linalg.svd(C, full_matrices=False)  # line 8
    return U, S, Vh, conds
