"""Brute-force references for the sketchla.grassmann tests (dense, small D only)."""
import numpy as np


def haar_orthogonal(k, rng):
    """Haar-random k×k orthogonal matrix from SciPy (independent of the library)."""
    from scipy.stats import ortho_group

    if k == 1:
        return np.array([[rng.choice([-1.0, 1.0])]])
    return ortho_group.rvs(k, random_state=rng)


def projector(Q):
    """Ψ = Q Qᵀ (D×D)."""
    return Q @ Q.T


def orth(A):
    """Orthonormal basis of the columns of A via SciPy."""
    import scipy.linalg

    return scipy.linalg.orth(A)


def bool_mask(indices, D):
    m = np.zeros(D, dtype=bool)
    m[np.asarray(indices)] = True
    return m
