"""Dense Hessians of small networks and their eigendecompositions (paper App. B.1, the exact analysis).

* :func:`exact_hessian` — the dense H (D × D) from ``H @ I[:, j0:j1]``
  column blocks of any square operator, symmetrised. D² float64 numbers:
  for small D only (7030 for mnist16: 395 MB).
* :func:`exact_eigh` — all eigenvalues of H and the eigenvectors of the
  ``k_max`` largest in magnitude, sorted by descending ``|λ|`` (the order of
  paper §2.1 / Eq. 1), via LAPACK's symmetric eigensolver;
  :func:`lanczos_top` the top k of both by Lanczos; :func:`top_eigenpairs`
  either.
* :func:`time_hvp` — seconds per Hessian-vector product.
"""
from __future__ import annotations

import logging
import time

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

from ..progress import track

logger = logging.getLogger(__name__)

__all__ = ["exact_hessian", "exact_eigh", "lanczos_top", "top_eigenpairs", "sort_by_magnitude", "time_hvp"]


def exact_hessian(op, *, block: int = 512, progress: bool = True, desc: str = "exact Hessian") -> np.ndarray:
    """Dense ``H`` (D × D, float64) from ``op @ I[:, j0:j1]`` column blocks.

    The product blocks are float32 (operator dtype); the result is
    symmetrised as ``(H + Hᵀ)/2`` (the raw asymmetry, a measure of the
    products' round-off, is logged). D² float64 numbers: for small D only.
    """
    D = op.shape[0]
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"op must be square, got shape {op.shape}")
    H = np.empty((D, D), dtype=np.float64)
    E = np.zeros((D, min(block, D)), dtype=op.dtype)
    for j0 in track(range(0, D, block), desc=desc, unit="blocks", enabled=progress):
        j1 = min(j0 + block, D)
        E[:] = 0
        E[np.arange(j0, j1), np.arange(j1 - j0)] = 1
        H[:, j0:j1] = np.asarray(op.matmat(E[:, : j1 - j0]))
    # column block by column block: no D × D temporaries just for this log line
    cols = range(0, D, block)
    asym = (max(float(np.max(np.abs(H[:, j:j + block] - H[j:j + block].T))) for j in cols)
            if D <= 20000 else float("nan"))
    scale = max(float(np.max(np.abs(H[:, j:j + block]))) for j in cols) or 1.0
    logger.info("exact Hessian D=%d: max |H - H^T| / max |H| = %.2e", D, asym / scale)
    H += H.T
    H *= 0.5
    return H


def sort_by_magnitude(eigenvalues) -> np.ndarray:
    """Indices ordering ``eigenvalues`` by descending ``|λ|`` (stable)."""
    return np.argsort(-np.abs(np.asarray(eigenvalues)), kind="stable")


def exact_eigh(H, k_max: int | None = None, *, dtype="float32", overwrite: bool = False,
               threads: int | None = 1):
    """Eigendecomposition of the symmetric ``H``, sorted by descending ``|λ|``.

    LAPACK's divide-and-conquer ``syevd`` (through ``torch.linalg.eigh``,
    i.e. the same routine as ``numpy.linalg.eigh`` in PyTorch's LAPACK).

    Parameters
    ----------
    H : (D, D) symmetric array (only its lower triangle is read).
    k_max : number of eigenvectors returned (default D).
    dtype : precision of the solve: "float32" (default; the Hessian-vector
        products that formed H are float32 too, so float64 buys no accuracy
        in the eigenspaces; about 2x faster) or "float64".
    overwrite : allow the solve to reuse ``H``'s memory when dtypes match.
    threads : PyTorch intra-op threads for the solve (default 1: on a shared
        2-core machine a single thread was 3x faster than two; ``None`` keeps
        the current setting).

    Returns
    -------
    (eigenvalues, eigenvectors): (D,) float64 sorted by descending ``|λ|``
    (signs kept), and (D, k_max) in ``dtype`` (their actual precision, so
    orthonormality checks downstream use the right tolerance) matching the
    first k_max of them.
    """
    import torch  # torch: optional dependency

    H = np.asarray(H)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be a square matrix, got shape {H.shape}")
    D = H.shape[0]
    k_max = D if k_max is None else int(k_max)
    if not 1 <= k_max <= D:
        raise ValueError(f"k_max={k_max} must be in [1, D={D}]")
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype!r} must be float32 or float64")
    A = H if (overwrite and H.dtype == dt) else H.astype(dt)
    if not np.all(np.isfinite(A)):
        raise ValueError("H contains NaN/Inf")
    t0 = time.perf_counter()
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        w_t, V_t = torch.linalg.eigh(torch.from_numpy(A))
    finally:
        torch.set_num_threads(old)
    w = w_t.numpy().astype(np.float64)
    order = sort_by_magnitude(w)
    vals = w[order]
    vecs = np.ascontiguousarray(V_t.numpy()[:, order[:k_max]])
    del V_t
    logger.info("eigh of D=%d (%s) in %.1fs", D, dt.name, time.perf_counter() - t0)
    return vals, vecs


def lanczos_top(H, k: int, seed: int):
    """Top-k eigenpairs of the dense symmetric ``H`` by ``|λ|`` (ARPACK Lanczos,
    ``which="LM"``, start vector seeded by ``seed``), where a full
    eigendecomposition would dominate the run (smoke runs). Products use a
    float32 copy of H (the precision the Hessian-vector products had), so the
    tolerance is 1e-6 relative.

    Returns (eigenvalues (k,) float64 by descending ``|λ|``, eigenvectors (D, k) float32).
    """
    H32 = np.asarray(H, dtype=np.float32)
    D = H32.shape[0]
    op = LinearOperator((D, D), matvec=lambda x: (H32 @ np.asarray(x, np.float32).ravel()).astype(np.float64),
                        dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(D)
    w, V = eigsh(op, k=k, which="LM", v0=v0, tol=1e-6)
    order = sort_by_magnitude(w)
    return w[order], np.ascontiguousarray(V[:, order], dtype=np.float32)


def top_eigenpairs(H, k: int, *, method: str = "lapack", dtype="float32", seed: int = 0, overwrite: bool = False):
    """The k eigenpairs of largest ``|λ|`` of the dense symmetric ``H``: all eigenvalues and the top-k
    eigenvectors by LAPACK (``method="lapack"``, :func:`exact_eigh`), or only the top k of both by
    Lanczos (``"lanczos"``, :func:`lanczos_top`). Returns ``(eigenvalues, eigenvectors (D, k))``."""
    if method == "lapack":
        return exact_eigh(H, k, dtype=dtype, overwrite=overwrite)
    if method == "lanczos":
        return lanczos_top(H, k, seed)
    raise ValueError(f"method={method!r} must be 'lapack' or 'lanczos'")


def time_hvp(op, n: int = 64, seed: int = 0) -> float:
    """Seconds per Hessian-vector product, timed on one block of ``n`` random
    columns after a warm-up product (so compilation/setup is excluded)."""
    rng = np.random.default_rng(seed)
    D = op.shape[1]
    op.matmat(rng.standard_normal((D, 2)).astype(op.dtype))
    V = rng.standard_normal((D, n)).astype(op.dtype)
    t0 = time.perf_counter()
    op.matmat(V)
    return (time.perf_counter() - t0) / n
