"""The exact analysis of one Hessian, for problems with small D (paper §6.1, App. A.7, B.1).

The dense H (D × D, from D Hessian-vector products) is eigendecomposed and the
top-k magnitude mask of the checkpoint's parameters compared with its top-k
|λ| eigenspace for every k ≤ k_max (paper Eq. 3), together with the baselines
of Fig. 14 (random masks, the best possible mask) and the quantities of
Figs. 15 and 17 (κ of the spectrum, Grassmannian metrics of the mask).

:func:`analyse` returns a *record* (a flat dict; arrays are NumPy arrays):

=====================  ==========================================================================
``eigenvalues``        (D,) all eigenvalues (LAPACK) or (k_max,) the top ones (Lanczos), by |λ|
``all_eigenvalues``    whether ``eigenvalues`` is the whole spectrum
``frobenius2``         ||H||_F²
``overlap``            (k_max,) overlap_k of the magnitude mask, k = 1..k_max
``random_mean/std``    (k_max,) mean and std over ``n_random`` random masks
``best``               (k_max,) the best any k-mask can reach
``kappa_spectrum``     {ρ: κ(Λ)} = ||Λ_top-ρ||² / ||Λ||² (``None`` where not computable)
``metrics``            {ρ: {metric: similarity}} of the top-ρD mask vs the top-ρD eigenspace
``basis``              (D, keep) float32, the leading eigenvectors (eigenspace comparisons)
``seconds_*``          timings: ``hessian``, ``per_hvp``, ``eigh``, ``curves``
=====================  ==========================================================================

(ρ keys are strings, as JSON writes them.)
"""
from __future__ import annotations

import logging
import time

import numpy as np

from . import overlap as ov
from .hessian.dense import exact_hessian, top_eigenpairs
from .paper_values import KAPPA_RHOS, METRIC_RHOS
from .progress import stage

logger = logging.getLogger(__name__)

__all__ = ["analyse", "CACHE_VERSION"]

#: bump when the exact records change meaning (part of their cache key)
CACHE_VERSION = 3


def analyse(op, order, *, k_max: int, method: str = "lapack", dtype: str = "float32", n_random: int = 10,
            seed: int = 0, keep: int = 0, progress: bool = False, tag: str = "H") -> dict:
    """Exact record (module docstring) of the symmetric operator ``op`` (D × D) against the
    parameter order ``order`` (:func:`overlap_experiments.overlap.magnitude_order`).

    ``method``: "lapack" (all eigenvalues; eigenvectors of the ``k_max``
    largest |λ|, in ``dtype``) or "lanczos" (top ``k_max`` of both, seeded by
    ``seed``, as are the random masks). ``keep``: leading eigenvectors kept in
    the record.
    """
    D = op.shape[0]
    t0 = time.perf_counter()
    H = exact_hessian(op, progress=progress, desc=f"{tag}: dense H from {D} Hessian-vector products")
    seconds_hessian = time.perf_counter() - t0
    fro2 = float(np.sum(H * H))
    solver = f"LAPACK syevd, {dtype}" if method == "lapack" else f"Lanczos, top {k_max}"
    with stage(f"{tag}: eigendecomposition of the dense {D}×{D} H ({solver})", enabled=progress) as st:
        vals, Q = top_eigenpairs(H, k_max, method=method, dtype=dtype, seed=seed, overwrite=True)
    del H
    all_vals = method == "lapack"
    t_eigh = st["seconds"]
    K = k_max
    t0 = time.perf_counter()
    curve = ov.overlap_curve(order, Q, K)
    rnd = ov.random_mask_curves(Q, K, n_random, seed=seed)
    best = ov.best_mask_curve(Q, K)
    # κ of the spectrum: ||Λ_top||² / ||Λ||²; ||Λ||² from all eigenvalues when
    # we have them, else ||Λ||² = ||H||_F² (Lanczos: top eigenvalues only)
    e2 = np.cumsum(np.square(vals))
    total = float(e2[-1]) if all_vals else fro2
    kap = {}
    for r in KAPPA_RHOS:
        k = ov.k_for(D, r)
        kap[str(r)] = float(min(e2[k - 1] / total, 1.0)) if k <= len(vals) and total > 0 else None
    metrics = {str(r): ov.mask_metrics(order, Q, ov.k_for(D, r)) for r in METRIC_RHOS if ov.k_for(D, r) <= K}
    t_curves = time.perf_counter() - t0
    logger.info("%s: eigh %.1fs, curves/metrics %.1fs", tag, t_eigh, t_curves)
    return {
        "eigenvalues": vals if all_vals else vals[:K], "all_eigenvalues": all_vals,
        "frobenius2": fro2, "overlap": curve, "random_mean": rnd.mean(0), "random_std": rnd.std(0),
        "best": best, "kappa_spectrum": kap, "metrics": metrics, "basis": Q[:, :min(keep, Q.shape[1])].astype(np.float32),
        "seconds_hessian": seconds_hessian, "seconds_per_hvp": seconds_hessian / D,
        "seconds_eigh": t_eigh, "seconds_curves": t_curves,
    }
