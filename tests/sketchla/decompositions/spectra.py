"""Test matrices with the spectra of Tropp et al. (2019, §7.3), in a random basis.

Each returns a dense symmetric ``D × D`` matrix (float64) and its exact
eigenvalues; the basis is a Haar-random orthogonal matrix so the problem is
not aligned with the coordinate axes. ``signs=True`` flips the sign of every
other eigenvalue to make the matrix indefinite (Hessians are not PSD).
"""
import numpy as np


def _basis(D, rng):
    Z, R = np.linalg.qr(rng.standard_normal((D, D)))
    return Z * np.sign(np.diag(R))


def _assemble(lam, rng, signs):
    lam = np.asarray(lam, dtype=np.float64)
    if signs:
        lam = lam * np.where(np.arange(lam.size) % 2 == 0, 1.0, -1.0)
    V = _basis(lam.size, rng)
    return (V * lam) @ V.T, lam, V


def low_rank_plus_noise(D, R=10, gamma=1e-3, seed=0, signs=False):
    """``diag(1,…,1 (R), 0,…) + sqrt(γR/(2D))(G + Gᵀ)``, Tropp et al. (2019) "LowRankMedNoise"."""
    rng = np.random.default_rng(seed)
    lam = np.r_[np.ones(R), np.zeros(D - R)]
    if signs:
        lam = lam * np.where(np.arange(D) % 2 == 0, 1.0, -1.0)
    V = _basis(D, rng)
    G = rng.standard_normal((D, D))
    A = (V * lam) @ V.T + np.sqrt(gamma * R / (2 * D)) * (G + G.T)
    A = 0.5 * (A + A.T)
    return A, np.linalg.eigvalsh(A), None


def poly_decay(D, R=10, p=2.0, seed=0, signs=False):
    """``diag(1,…,1 (R), 2^{-p}, 3^{-p}, …)`` ("PolyDecay")."""
    lam = np.r_[np.ones(R), np.arange(2, D - R + 2, dtype=float) ** (-p)]
    return _assemble(lam, np.random.default_rng(seed), signs)


def exp_decay(D, R=10, q=0.25, seed=0, signs=False):
    """``diag(1,…,1 (R), 10^{-q}, 10^{-2q}, …)`` ("ExpDecay")."""
    lam = np.r_[np.ones(R), 10.0 ** (-q * np.arange(1, D - R + 1))]
    return _assemble(lam, np.random.default_rng(seed), signs)


def tail_energy(eigs, r):
    """``τ²_{r+1} = Σ_{j>r} λ_j²`` over eigenvalues sorted by descending magnitude."""
    e = np.sort(np.abs(np.asarray(eigs)))[::-1]
    return float(np.sum(e[r:] ** 2))
