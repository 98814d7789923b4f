"""The four problems of ``benchmarks/peers.py``, written as a user of SciPy would write them.

Each problem is a ``scipy.sparse.linalg.LinearOperator`` (or a sparse matrix)
with a known or reference top-20 spectrum:

* ``sym`` — a symmetric indefinite ``D × D`` operator (``D = 1,000,000``):
  ``A = S C diag(d) Cᵀ S`` with ``C`` the orthonormal DCT-II and ``S`` random
  signs, so its eigenpairs are exactly ``(d_i, S C e_i)`` (dense
  eigenvectors). ``d``: 20 outliers of magnitude 100 → 10 (alternating signs)
  over a heavy-tailed bulk ``±i^{-0.3}`` — outliers over a bulk, like a
  network Hessian; ``‖bulk‖_F ≈ 25``. A product is one DCT and one inverse
  DCT per column (~40 ms at 1M on this machine).
* ``heavy`` — a sparse ``200,000 × 50,000`` matrix, 20 Gaussian entries per
  column at random rows, column ``j`` scaled by ``(j+1)^{-1/2}``: power-law
  singular values whose tail holds most of ``‖A‖_F``.
* ``fast`` — the same sparsity with scales ``0.9^j``: fast decay.
* ``mlp`` — the Hessian of a small tanh MLP (``benchmarks/_mlp_hessian.py``;
  widths 256-24-16-16-10, ``D = 7,010`` like the paper's 16×16 MNIST net,
  1000 synthetic samples with teacher labels), float32 HVPs.

Reference values: exact for ``sym``; ARPACK with a tight tolerance for the
others (computed once per size and cached in ``benchmarks/out/``).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.sparse as sp
import scipy.sparse.linalg as sla

K = 20  # top pairs compared everywhere

SIZES = {  # full / quick
    "sym": {"full": dict(D=1_000_000), "quick": dict(D=4000)},
    "heavy": {"full": dict(m=200_000, n=50_000), "quick": dict(m=4000, n=1000)},
    "fast": {"full": dict(m=200_000, n=50_000), "quick": dict(m=4000, n=1000)},
    "mlp": {"full": dict(widths=(256, 24, 16, 16, 10), n_samples=1000),
            "quick": dict(widths=(64, 8, 8, 4), n_samples=64)},
}


class SymmetricDCT(sla.LinearOperator):
    """``A = S C diag(d) Cᵀ S`` (module docstring); ``matmat`` applies it column by column."""

    def __init__(self, D: int, seed: int = 0):
        rng = np.random.default_rng([seed, 15])
        top = np.geomspace(100.0, 10.0, K) * np.where(np.arange(K) % 2 == 0, 1.0, -1.0)
        bulk = rng.choice([-1.0, 1.0], D - K) * np.arange(1, D - K + 1, dtype=np.float64) ** -0.3
        self.d = np.r_[top, bulk]
        self.s = rng.choice([-1.0, 1.0], D)
        super().__init__(dtype=np.dtype("float64"), shape=(D, D))

    def _matvec(self, x):
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = scipy.fft.dct(self.s * x, norm="ortho")
        return self.s * scipy.fft.idct(self.d * y, norm="ortho")

    def _matmat(self, X):
        out = np.empty((self.shape[0], X.shape[1]), order="F")
        for j in range(X.shape[1]):
            out[:, j] = self._matvec(X[:, j])
        return out

    _rmatvec, _rmatmat = _matvec, _matmat

    def top(self):
        """Exact top-K eigenvalues (by ``|λ|``) and eigenvectors ``S C e_i``."""
        idx = np.argsort(-np.abs(self.d), kind="stable")[:K]
        E = np.zeros((self.shape[0], K))
        E[idx, np.arange(K)] = 1.0
        return self.d[idx], self.s[:, None] * scipy.fft.idct(E, axis=0, norm="ortho")


def scaled_sparse(m: int, n: int, scales: np.ndarray, seed: int = 0, per_col: int = 20) -> sp.csr_matrix:
    """``m × n`` sparse: ``per_col`` N(0,1) entries per column at random rows, column ``j`` times ``scales[j]``."""
    rng = np.random.default_rng([seed, m, n])
    rows = rng.integers(0, m, size=n * per_col)
    cols = np.repeat(np.arange(n), per_col)
    vals = rng.standard_normal(n * per_col) * np.repeat(scales, per_col)
    return sp.csr_matrix(sp.csc_matrix((vals, (rows, cols)), shape=(m, n)))


class MLPHessianOperator(sla.LinearOperator):
    """``benchmarks/_mlp_hessian.MLPHessian`` as a SciPy operator (float32 HVPs, float64 in and out)."""

    def __init__(self, widths, n_samples, seed=0):
        from _mlp_hessian import MLPHessian

        self.hessian = MLPHessian(widths=tuple(widths), n_samples=n_samples, seed=seed)
        super().__init__(dtype=np.dtype("float64"), shape=self.hessian.shape)

    def _matmat(self, X):
        return np.asarray(self.hessian.matmat(np.asarray(X, dtype=np.float32)), dtype=np.float64)

    def _matvec(self, x):
        return self._matmat(np.asarray(x).reshape(-1, 1))[:, 0]

    _rmatvec, _rmatmat = _matvec, _matmat


def build(name: str, size: dict):
    """The problem ``name`` at ``size``: ``(operator or sparse matrix, kind)`` with kind ``"eig"`` or ``"svd"``."""
    if name == "sym":
        return SymmetricDCT(size["D"]), "eig"
    if name in ("heavy", "fast"):
        j = np.arange(size["n"], dtype=np.float64)
        scales = (j + 1.0) ** -0.5 if name == "heavy" else 0.9 ** j
        return scaled_sparse(size["m"], size["n"], scales), "svd"
    if name == "mlp":
        return MLPHessianOperator(size["widths"], size["n_samples"]), "eig"
    raise ValueError(f"unknown problem {name!r}")


def reference(name: str, size: dict, A, kind: str, cache_dir: Path):
    """Top-K reference ``(values, vectors)``: values by descending ``|·|`` (signed for ``eig``), vectors
    ``D_L × K`` (eigenvectors, or left singular vectors). Exact for ``sym``; else ARPACK with
    ``tol=1e-10`` and a wide Krylov space, cached per problem and size."""
    if name == "sym":
        return A.top()
    key = hashlib.sha1(json.dumps([name, size], sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"peers_reference_{name}_{key}.npz"
    if path.exists():
        z = np.load(path)
        return z["values"], z["vectors"]
    ncv = min(min(A.shape) - 1, 4 * K + 20)
    if kind == "svd":
        U, s, _ = sla.svds(A, k=K, tol=1e-10, ncv=ncv, random_state=0)
        order = np.argsort(-s)
        values, vectors = s[order], U[:, order]
    else:
        w, V = sla.eigsh(A, k=K, which="LM", tol=1e-10, ncv=ncv, v0=np.ones(A.shape[0]))
        order = np.argsort(-np.abs(w))
        values, vectors = w[order], V[:, order]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, values=values, vectors=vectors)
    return values, vectors
