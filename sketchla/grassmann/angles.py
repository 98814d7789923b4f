"""Principal angles and the Grassmannian metrics of paper §4.1 (and Eq. 2).

Every function takes two points of the Stiefel manifold O^{D×k} (paper §3):
dense D×k arrays with orthonormal columns (NumPy, CuPy, Dask or Zarr) or
k-sparse masks (boolean vector of length D or integer index array, i.e. a
point of M^{D×k}). Only the small k×k cross-Gram ``Q1ᵀQ2`` is ever formed
(for a mask: the k rows it selects are gathered); its singular values are the
cosines of the principal angles (paper Eq. 9, Appendix A.3). With
``check=True`` (default) dense inputs are tested for orthonormality,
``max|QᵀQ - I| <= tol`` (float32: 1e-3, float64: 1e-6 unless ``tol`` given),
which costs one more k×k Gram per input (computed in the same Dask pass).

Closed forms (σ = principal angles, paper §4.1; "max" = the range used by
:func:`normalized`):

====================  ==============================  ===========  ==========================
name                  distance                        max          paper
====================  ==============================  ===========  ==========================
``geodesic``          ||σ||_2                         π/2·√k       a) dist_g
``chordal_2``         ||2 sin(σ/2)||_∞                √2           b) dist_{c,2}
``chordal_f``         ||2 sin(σ/2)||_2                √(2k)        b) dist_{c,F}
``projection_2``      ||sin σ||_∞ = ||Ψ1 − Ψ2||_2     1            c) dist_{p,2}
``projection_f``      ||sin σ||_2 = ||Ψ1 − Ψ2||_F/√2  √k           c) dist_{p,F}
``fubini_study``      arccos(∏ cos σ)                 π/2          d) dist_a
``overlap``           (1/k)||Q1ᵀQ2||_F² (similarity)  —            e), Eq. (2)
====================  ==============================  ===========  ==========================

Note on ``projection_f``: the paper's closed form ||sin σ||_2 ∈ [0, √k] is
the projector distance ||Ψ1 − Ψ2||_F divided by √2 (Edelman et al. 1998);
we follow the closed form, so ``overlap = 1 − projection_f²/k`` exactly.

Numerical note: angles come from ``arccos`` of singular values, so an angle
near 0 is resolved only to about √eps (≈1e-8 in float64, ≈3e-4 for float32
inputs); the cosine-based ``overlap`` has no such loss.
"""
from __future__ import annotations

import math

import numpy as np

from ._rows import gather_rows
from ._validate import (
    Basis,
    as_basis,
    check_pair,
    check_tol,
    is_dask,
    raise_if_not_orthonormal,
    to_host,
)

#: Names accepted by :func:`normalized`, :func:`from_angles` and :func:`all_metrics`
#: (the metrics a)–e) of paper §4.1, in the paper's Table 2 order).
METRICS = (
    "geodesic",
    "chordal_2",
    "chordal_f",
    "projection_2",
    "projection_f",
    "fubini_study",
    "overlap",
)

__all__ = ["METRICS", "principal_angles", "cosines", *METRICS, "from_angles", "normalized", "all_metrics"]

# Largest value of each distance on G_{k,D} (paper §4.1), as a function of k.
_MAX_DIST = {
    "geodesic": lambda k: (math.pi / 2) * math.sqrt(k),
    "chordal_2": lambda k: math.sqrt(2.0),
    "chordal_f": lambda k: math.sqrt(2.0 * k),
    "projection_2": lambda k: 1.0,
    "projection_f": lambda k: math.sqrt(k),
    "fubini_study": lambda k: math.pi / 2,
}


# --------------------------------------------------------------------------- cross-Gram


def _cross_gram(b1: Basis, b2: Basis, n1: str, n2: str, check: bool, tol) -> np.ndarray:
    """Host float64 ``Q1ᵀQ2`` (k1×k2) for a pair with at least one dense basis."""
    if b1.kind == "mask":
        return _cross_gram(b2, b1, n2, n1, check, tol).T
    Q1 = b1.data
    tol1 = check_tol(tol, Q1.dtype)
    if b2.kind == "mask":
        # M2 = I[:, idx]  ⇒  Q1ᵀ M2 = Q1[idx, :]ᵀ : only k rows are read.
        C = gather_rows(Q1, b2.data, b1.k).T
        if check:
            raise_if_not_orthonormal(to_host(Q1.T @ Q1).astype(np.float64), n1, tol1)
        return C
    Q2 = b2.data
    tol2 = check_tol(tol, Q2.dtype)
    prods = [Q1.T @ Q2]
    if check:
        prods += [Q1.T @ Q1, Q2.T @ Q2]
    if is_dask(Q1) or is_dask(Q2):
        import dask

        prods = dask.compute(*prods)  # one pass over both inputs
    prods = [to_host(p).astype(np.float64) for p in prods]
    if check:
        raise_if_not_orthonormal(prods[1], n1, tol1)
        raise_if_not_orthonormal(prods[2], n2, tol2)
    return prods[0]


def _shared(b1: Basis, b2: Basis) -> int:
    """|m1 ∩ m2| for two masks (sorted unique indices)."""
    return int(np.intersect1d(b1.data, b2.data, assume_unique=True).size)


def _pair(Q1, Q2, same_k: bool) -> tuple[Basis, Basis]:
    b1 = as_basis(Q1, "Q1")
    b2 = as_basis(Q2, "Q2")
    check_pair(b1, b2, "Q1", "Q2", same_k=same_k)
    return b1, b2


def _cosines(b1: Basis, b2: Basis, check: bool, tol) -> np.ndarray:
    m = min(b1.k, b2.k)
    if b1.kind == "mask" and b2.kind == "mask":
        s = _shared(b1, b2)
        out = np.zeros(m)
        out[:s] = 1.0
        return out
    C = _cross_gram(b1, b2, "Q1", "Q2", check, tol)
    s = np.linalg.svd(C, compute_uv=False)
    return np.clip(s, 0.0, 1.0)


# --------------------------------------------------------------------------- public


def cosines(Q1, Q2, *, check: bool = True, tol=None) -> np.ndarray:
    """Cosines of the principal angles: singular values of ``Q1ᵀQ2`` (paper Eq. 9).

    Parameters
    ----------
    Q1 : (D, k1) orthonormal basis or mask
    Q2 : (D, k2) orthonormal basis or mask
    check : test dense inputs for orthonormality (raise ``ValueError`` if not)
    tol : tolerance of that test (None = dtype default)

    Returns
    -------
    (min(k1, k2),) float64 ndarray, descending, clipped to [0, 1].
    """
    b1, b2 = _pair(Q1, Q2, same_k=False)
    return _cosines(b1, b2, check, tol)


def principal_angles(Q1, Q2, *, check: bool = True, tol=None) -> np.ndarray:
    """Principal angles σ between span(Q1) and span(Q2) (paper §4.1, Eq. 9).

    σ = arccos of the singular values of the k1×k2 matrix ``Q1ᵀQ2``, clipped to
    [0, 1] so that σ ∈ [0, π/2].

    Returns
    -------
    (min(k1, k2),) float64 ndarray, ascending.
    """
    return np.arccos(cosines(Q1, Q2, check=check, tol=tol))


def overlap(Q1, Q2, *, check: bool = True, tol=None) -> float:
    """overlap = (1/k)·||Q1ᵀQ2||_F² = (1/k)·||cos σ||_2² ∈ [0, 1] (paper Eq. 2).

    1 for identical spans, 0 for orthogonal ones; its expectation for
    independent uniformly random spans is k/D (Appendix A.5). Both inputs
    must have the same k.
    """
    b1, b2 = _pair(Q1, Q2, same_k=True)
    return _overlap(b1, b2, check, tol)


def _overlap(b1: Basis, b2: Basis, check: bool, tol) -> float:
    if b1.kind == "mask" and b2.kind == "mask":
        return _shared(b1, b2) / b1.k
    C = _cross_gram(b1, b2, "Q1", "Q2", check, tol)
    return float(min(1.0, np.sum(C * C) / b1.k))


def from_angles(name: str, sigma, *, normalize: bool = False) -> float:
    """Evaluate metric ``name`` (one of :data:`METRICS`) from principal angles.

    Parameters
    ----------
    name : metric name
    sigma : (k,) principal angles in [0, π/2] (e.g. from :func:`principal_angles`)
    normalize : if True, return the similarity of :func:`normalized`

    Useful to get all metrics of a pair from one SVD (see :func:`all_metrics`).
    """
    if name not in METRICS:
        raise ValueError(f"name={name!r} is not a known metric; choose one of {METRICS}")
    sigma = np.asarray(sigma, dtype=np.float64)
    if sigma.ndim != 1 or sigma.size == 0:
        raise ValueError(f"sigma must be a non-empty 1-D array of angles, got shape {sigma.shape}")
    if not (np.all(sigma >= 0) and np.all(sigma <= math.pi / 2 + 1e-12)):
        raise ValueError("sigma must hold angles in [0, π/2]")
    k = sigma.size
    if name == "overlap":
        return float(np.mean(np.cos(sigma) ** 2))
    if name == "geodesic":
        d = float(np.linalg.norm(sigma))
    elif name == "chordal_2":
        d = float(np.max(2.0 * np.sin(sigma / 2.0)))
    elif name == "chordal_f":
        d = float(np.linalg.norm(2.0 * np.sin(sigma / 2.0)))
    elif name == "projection_2":
        d = float(np.max(np.sin(sigma)))
    elif name == "projection_f":
        d = float(np.linalg.norm(np.sin(sigma)))
    else:  # fubini_study
        d = float(np.arccos(np.clip(np.prod(np.cos(sigma)), 0.0, 1.0)))
    if not normalize:
        return d
    return float(min(1.0, max(0.0, 1.0 - d / _MAX_DIST[name](k))))


def _metric(name: str, Q1, Q2, check: bool, tol) -> float:
    b1, b2 = _pair(Q1, Q2, same_k=True)
    return from_angles(name, np.arccos(_cosines(b1, b2, check, tol)))


def geodesic(Q1, Q2, *, check: bool = True, tol=None) -> float:
    """Geodesic (arc-length) distance ||σ||_2 ∈ [0, π/2·√k] (paper §4.1 a)."""
    return _metric("geodesic", Q1, Q2, check, tol)


def chordal_2(Q1, Q2, *, check: bool = True, tol=None) -> float:
    """Chordal 2-norm distance ||2 sin(σ/2)||_∞ ∈ [0, √2] (paper §4.1 b).

    Equals min over orthogonal Z1, Z2 of ||Q1 Z1 − Q2 Z2||_2.
    """
    return _metric("chordal_2", Q1, Q2, check, tol)


def chordal_f(Q1, Q2, *, check: bool = True, tol=None) -> float:
    """Chordal Frobenius distance ||2 sin(σ/2)||_2 ∈ [0, √(2k)] (paper §4.1 b).

    Equals min over orthogonal Z of ||Q1 Z − Q2||_F (orthogonal Procrustes).
    """
    return _metric("chordal_f", Q1, Q2, check, tol)


def projection_2(Q1, Q2, *, check: bool = True, tol=None) -> float:
    """Projection 2-norm (gap) distance ||sin σ||_∞ = ||Ψ1 − Ψ2||_2 ∈ [0, 1] (§4.1 c)."""
    return _metric("projection_2", Q1, Q2, check, tol)


def projection_f(Q1, Q2, *, check: bool = True, tol=None) -> float:
    """Projection Frobenius distance ||sin σ||_2 = ||Ψ1 − Ψ2||_F/√2 ∈ [0, √k] (§4.1 c)."""
    return _metric("projection_f", Q1, Q2, check, tol)


def fubini_study(Q1, Q2, *, check: bool = True, tol=None) -> float:
    """Fubini–Study distance arccos|det(Q1ᵀQ2)| = arccos(∏ cos σ) ∈ [0, π/2] (§4.1 d)."""
    return _metric("fubini_study", Q1, Q2, check, tol)


def normalized(name: str, Q1, Q2, *, check: bool = True, tol=None) -> float:
    """Metric ``name`` mapped to a similarity in [0, 1], 1 = identical spans.

    For a distance ``dist`` with range [0, max_dist] (paper §4.1, table in the
    module docstring) the value is ``1 − dist / max_dist``:

    * ``geodesic``:      1 − ||σ||_2 / (π/2·√k)
    * ``chordal_2``:     1 − ||2 sin(σ/2)||_∞ / √2
    * ``chordal_f``:     1 − ||2 sin(σ/2)||_2 / √(2k)
    * ``projection_2``:  1 − ||sin σ||_∞
    * ``projection_f``:  1 − ||sin σ||_2 / √k  (= 1 − √(1 − overlap))
    * ``fubini_study``:  1 − arccos(∏ cos σ) / (π/2)
    * ``overlap``:       overlap itself (already a similarity in [0, 1])

    These are the normalisations of paper Fig. 2 and Table 2 (Appendix A.4):
    for two uniformly random bases at D = 2048 they give the Table 2
    baselines (e.g. ρ = 0.4: geodesic ≈ 0.365, chordal_f ≈ 0.338,
    projection_f ≈ 0.225, overlap ≈ 0.400; chordal_2, projection_2,
    fubini_study ≈ 0), which the test-suite checks.
    """
    if name not in METRICS:
        raise ValueError(f"name={name!r} is not a known metric; choose one of {METRICS}")
    b1, b2 = _pair(Q1, Q2, same_k=True)
    if name == "overlap":
        return _overlap(b1, b2, check, tol)
    return from_angles(name, np.arccos(_cosines(b1, b2, check, tol)), normalize=True)


def all_metrics(Q1, Q2, *, normalize: bool = True, check: bool = True, tol=None) -> dict:
    """All of :data:`METRICS` for one pair from a single SVD.

    Returns ``{name: value}``; with ``normalize=True`` (default) the values of
    :func:`normalized`, else the raw distances (and overlap).
    """
    b1, b2 = _pair(Q1, Q2, same_k=True)
    sigma = np.arccos(_cosines(b1, b2, check, tol))
    return {name: from_angles(name, sigma, normalize=normalize) for name in METRICS}
