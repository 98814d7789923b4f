"""The in-memory core solves against a dense reference implementation of Alg. 1/2."""
import numpy as np
import pytest

from sketchla.decompositions._core import seigh_core, ssvd_core

from spectra import exp_decay


def _dense_seigh(A, n_O, n_I, rng):
    """Alg. 2 written out with dense NumPy and explicit pseudoinverses."""
    D = A.shape[0]
    Omega = rng.standard_normal((D, n_I))
    Ups = rng.standard_normal((D, n_I))
    Y = A @ Omega
    Q, _ = np.linalg.qr(Y[:, :n_O])
    M_I = Ups.T @ Y
    C = np.linalg.pinv(Ups.T @ Q) @ M_I @ np.linalg.pinv(Omega.T @ Q).T
    return Q, M_I, Ups.T @ Q, Omega.T @ Q, C


def test_seigh_core_matches_explicit_pseudoinverses():
    rng = np.random.default_rng(1)
    A, *_ = exp_decay(120, R=5, q=0.3, seed=3, signs=True)
    Q, M_I, uq, oq, C = _dense_seigh(A, 20, 41, rng)
    lam, U = seigh_core(M_I, uq, oq)
    C_sym = 0.5 * (C + C.T)
    np.testing.assert_allclose(U @ np.diag(lam) @ U.T, C_sym, atol=1e-10 * np.abs(C).max())
    # sorted by descending |λ|, signs kept
    assert np.all(np.diff(np.abs(lam)) <= 1e-12)
    assert (lam < 0).any() and (lam > 0).any()
    np.testing.assert_allclose(U.T @ U, np.eye(20), atol=1e-12)


def test_seigh_core_exact_for_low_rank():
    """For rank(A) ≤ n_O the sketch is exact: the core reproduces A's spectrum."""
    rng = np.random.default_rng(0)
    D, r = 60, 4
    V, _ = np.linalg.qr(rng.standard_normal((D, r)))
    lam_true = np.array([5.0, -3.0, 2.0, -0.5])
    A = (V * lam_true) @ V.T
    Q, M_I, uq, oq, _ = _dense_seigh(A, 8, 15, rng)
    lam, U = seigh_core(M_I, uq, oq)
    np.testing.assert_allclose(lam[:4], lam_true, rtol=1e-9)
    np.testing.assert_allclose(lam[4:], 0.0, atol=1e-9)
    np.testing.assert_allclose((Q @ U[:, :4] * lam[:4]) @ (Q @ U[:, :4]).T, A, atol=1e-9)


def test_ssvd_core_matches_explicit_pseudoinverses():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((70, 50)) @ np.diag(0.7 ** np.arange(50)) @ rng.standard_normal((50, 50))
    n_O, n_I = 10, 21
    Ups_I = rng.standard_normal((70, n_I))
    Om_I = rng.standard_normal((50, n_I))
    P, _ = np.linalg.qr(A @ rng.standard_normal((50, n_O)))
    Q, _ = np.linalg.qr(A.T @ rng.standard_normal((70, n_O)))
    M_I = Ups_I.T @ A @ Om_I
    U, S, Vh = ssvd_core(M_I, Ups_I.T @ P, Om_I.T @ Q)
    C = np.linalg.pinv(Ups_I.T @ P) @ M_I @ np.linalg.pinv(Om_I.T @ Q).T
    np.testing.assert_allclose(U @ np.diag(S) @ Vh, C, atol=1e-10 * np.abs(C).max())
    assert np.all(np.diff(S) <= 0)


def test_core_rejects_non_finite():
    M = np.eye(3)
    M[0, 0] = np.nan
    with pytest.raises(ValueError):
        seigh_core(M, np.eye(3), np.eye(3))
