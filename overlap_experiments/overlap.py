"""Parameter-magnitude masks vs top Hessian eigenspaces (paper §3, §5, §6.1, App. A.7).

Notation: θ ∈ R^D the parameters, ``order = argsort(−|θ|)`` the permutation
P of paper §3 (largest magnitude first), ``Q`` a D × n basis of Hessian
eigenvectors sorted by descending ``|λ|`` (exact or sketched). For every k,
the top-k magnitude mask ``order[:k]`` is compared with the top-k eigenspace
``Q[:, :k]`` by the overlap of paper Eq. (3):

    overlap_k = (1/k)·||Q[order[:k], :k]||_F²            (:func:`overlap_curve`)

against the baselines

* chance k/D (paper §4.2, App. A.5)                      (:func:`chance_curve`)
* random k-masks: the prefixes of a uniformly random permutation are
  uniform k-subsets for every k; 10 permutations give mean ± std (App. A.7,
  Fig. 14)                                               (:func:`random_mask_curves`)
* the best possible k-mask (Fig. 14 upper bound): the k rows of
  ``Q[:, :k]`` with the largest squared norms,
  ``best_k = (1/k)·Σ_{k largest i} ||Q[i, :k]||²``      (:func:`best_mask_curve`)

Also the energy concentration κ of paper §2.2 (:func:`kappa`) and the
Grassmannian metrics between a mask and an eigenspace (:func:`mask_metrics`,
Fig. 17) or between two eigenspaces / two masks (Fig. 16).
"""
from __future__ import annotations

import numpy as np

from sketchla import grassmann as gm

__all__ = [
    "magnitude_order", "overlap_curve", "chance_curve", "random_mask_curves", "best_mask_curve",
    "kappa", "mask_metrics", "eigenspace_overlap", "mask_iou", "k_for",
]


def k_for(D: int, rho: float) -> int:
    """``k = max(1, round(ρ·D))``: mask size / subspace dimension of sparsity ratio ρ = k/D."""
    if not 0 < rho <= 1:
        raise ValueError(f"rho={rho!r} must be in (0, 1]")
    return max(1, int(round(rho * D)))


def magnitude_order(theta) -> np.ndarray:
    """Parameter indices by non-increasing ``|θ_i|`` (ties by index): the
    permutation P of paper §3; ``order[:k]`` is the top-k magnitude mask."""
    theta = np.asarray(theta)
    if theta.ndim != 1 or theta.size == 0:
        raise ValueError(f"theta must be a non-empty 1-D parameter vector, got shape {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise ValueError("theta contains NaN/Inf")
    return np.argsort(-np.abs(theta), kind="stable").astype(np.int64)


def overlap_curve(order, Q, k_max: int | None = None) -> np.ndarray:
    """``curve[k−1] = (1/k)·||Q[order[:k], :k]||_F²`` for k = 1..k_max (paper Eq. 3),
    via :func:`sketchla.grassmann.overlap_curve`. Returns (k_max,) float64."""
    return gm.overlap_curve(np.asarray(order), Q, k_max)


def chance_curve(k_max: int, D: int) -> np.ndarray:
    """``k/D`` for k = 1..k_max (paper §4.2)."""
    return gm.chance_overlap(np.arange(1, int(k_max) + 1), D)


def random_mask_curves(Q, k_max: int | None = None, n_masks: int = 10, seed: int = 0) -> np.ndarray:
    """Overlap curves of ``n_masks`` random masks (App. A.7, Fig. 14).

    Mask j's order is a uniformly random permutation drawn from
    ``SeedSequence(seed, spawn_key=(j,))``. Returns (n_masks, k_max).
    """
    D, n = (int(s) for s in Q.shape)
    k_max = n if k_max is None else int(k_max)
    if not isinstance(n_masks, int) or n_masks < 1:
        raise ValueError(f"n_masks={n_masks!r} must be a positive int")
    out = np.empty((n_masks, k_max))
    for j in range(n_masks):
        perm = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(j,))).permutation(D)
        out[j] = gm.overlap_curve(perm, Q, k_max)
    return out


def best_mask_curve(Q, k_max: int | None = None) -> np.ndarray:
    """Largest overlap any k-mask can reach with ``Q[:, :k]``, for k = 1..k_max.

    For a mask S of size k, overlap = (1/k)·Σ_{i∈S} r_i with row energies
    ``r_i = ||Q[i, :k]||²``; it is maximal for the k largest r_i (Fig. 14,
    "best magnitude mask"). Uses the cumulative row energies, O(D·k_max) memory.
    Returns (k_max,) float64.
    """
    Q = np.asarray(Q)
    if Q.ndim != 2:
        raise ValueError(f"Q must be a D×n matrix, got shape {Q.shape}")
    D, n = Q.shape
    k_max = n if k_max is None else int(k_max)
    if not 1 <= k_max <= n:
        raise ValueError(f"k_max={k_max} must be in [1, {n}]")
    R = np.cumsum(np.square(Q[:, :k_max], dtype=np.float64), axis=1)  # R[:, k-1] = ||Q[i, :k]||²
    out = np.empty(k_max)
    for k in range(1, k_max + 1):
        r = R[:, k - 1]
        out[k - 1] = np.partition(r, D - k)[D - k:].sum() / k
    return np.minimum(out, 1.0)


def kappa(v, rhos) -> dict:
    """Energy concentration κ(v) = ||v_ι||² / ||v||² of paper §2.2, where ι are
    the ``k_for(len(v), ρ)`` entries of largest magnitude, for each ρ.
    Returns ``{ρ: κ}``."""
    v = np.asarray(v, dtype=np.float64).ravel()
    e = np.sort(np.square(v))[::-1]
    total = float(e.sum())
    cum = np.cumsum(e)
    return {float(r): (float(cum[k_for(v.size, r) - 1]) / total if total > 0 else float("nan")) for r in rhos}


def mask_metrics(order, Q, k: int) -> dict:
    """All Grassmannian similarities of :data:`sketchla.grassmann.METRICS`
    (normalised to [0, 1], paper Fig. 2 / Table 2) between the top-k magnitude
    mask and ``Q[:, :k]`` (paper Fig. 17)."""
    mask = np.asarray(order[:k], dtype=np.int64)
    return gm.all_metrics(mask, np.asarray(Q[:, :k]), normalize=True)


def eigenspace_overlap(Q1, Q2, k: int) -> float:
    """overlap (paper Eq. 2) between the top-k eigenspaces ``Q1[:, :k]`` and ``Q2[:, :k]`` (Fig. 16)."""
    return gm.overlap(np.asarray(Q1[:, :k]), np.asarray(Q2[:, :k]))


def mask_iou(order1, order2, k: int) -> float:
    """IoU (paper §4.1 i) between the top-k masks of two parameter orders (Fig. 16, top)."""
    return gm.iou(np.asarray(order1[:k]), np.asarray(order2[:k]))
