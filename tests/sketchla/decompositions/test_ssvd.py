"""SSVD (paper Alg. 1, Tropp et al. 2019) end to end."""
import numpy as np
import pytest
import scipy.sparse

import sketchla as sk
from sketchla.random import TestMatrix

from _decompositions_helpers import Counting


def _rect(m, n, decay, seed):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((m, min(m, n))))
    V, _ = np.linalg.qr(rng.standard_normal((n, min(m, n))))
    s = decay ** np.arange(min(m, n))
    return (U * s) @ V.T, s


def _dense_reference(A, n_O, n_I, seed):
    D_L, D_R = A.shape

    def tm(shape, name):
        return TestMatrix(shape, seed=seed, name=name, dtype="float64").block(slice(0, shape[0]), slice(0, shape[1]))

    Ups_O = tm((D_L, n_O), "upsilon_outer")
    Om = tm((D_R, n_O + n_I), "omega")
    Ups_I = tm((D_L, n_I), "upsilon_inner")
    Q, _ = np.linalg.qr(A.T @ Ups_O)
    P, _ = np.linalg.qr(A @ Om[:, :n_O])
    Om_I = Om[:, n_O:]
    C = np.linalg.pinv(Ups_I.T @ P) @ (Ups_I.T @ A @ Om_I) @ np.linalg.pinv(Om_I.T @ Q).T
    U, S, Vh = np.linalg.svd(C)
    return P @ U, S, Vh @ Q.T


def test_matches_dense_reference_float64(tmp_path):
    A, _ = _rect(120, 90, 0.8, seed=0)
    res = sk.ssvd(A, 10, 21, seed=3, store=str(tmp_path / "r"), client=False, dtype="float64", chunk=6,
                  progress=False)
    U_ref, S_ref, Vh_ref = _dense_reference(A, 10, 21, seed=3)
    np.testing.assert_allclose(res.S, S_ref, rtol=1e-9)
    U, Vh = res.U.compute(), res.Vh.compute()
    sg = np.sign(np.sum(U * U_ref, axis=0))
    np.testing.assert_allclose(U * sg, U_ref, atol=1e-8)
    np.testing.assert_allclose(Vh * sg[:, None], Vh_ref, atol=1e-8)
    assert U.shape == (120, 10) and Vh.shape == (10, 90)


def _tropp_bound_sq(s, k, n_inner):
    """Tropp et al. (2019, Thm 5.1): E||A − Â||²_F ≤ (1 + k/(s−k−1))·min_ϱ (1 + ϱ/(k−ϱ−1)) τ²_{ϱ+1}(A)."""
    tails = [float(np.sum(np.sort(s)[::-1][r:] ** 2)) for r in range(k - 1)]
    return (1 + k / (n_inner - k - 1)) * min((1 + r / (k - r - 1)) * tails[r] for r in range(k - 1))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_accuracy_against_numpy_svd(dtype):
    A, s = _rect(200, 150, 0.7, seed=1)
    k, n_I = 15, 31
    res = sk.ssvd(A, k, n_I, seed=2, client=False, dtype=dtype, progress=False)
    slack = 1e-12 if dtype == "float64" else 1e-5 * np.linalg.norm(A)
    A_hat = (res.U.compute().astype(np.float64) * res.S) @ res.Vh.compute().astype(np.float64)
    err = np.linalg.norm(A - A_hat)
    # within 4x the expectation bound (a single draw; the bound is on the mean)
    assert err ** 2 <= 4 * _tropp_bound_sq(s, k, n_I) + slack, (err, _tropp_bound_sq(s, k, n_I))
    # Weyl: |σ_i − σ̂_i| ≤ ||A − Â||_2 ≤ ||A − Â||_F
    np.testing.assert_array_less(np.abs(res.S[:8] - s[:8]), err + slack)
    # and the bound is not vacuous: the top singular values are good to a few percent
    np.testing.assert_allclose(res.S[:5], s[:5], rtol=0.03)


def test_sparse_operator_and_error_estimate():
    A = scipy.sparse.random(300, 200, density=0.02, random_state=5, format="csr")
    dense = A.toarray()
    k, n_I = 20, 41
    res = sk.ssvd(A, k, n_I, client=False, dtype="float64", progress=False, n_probes=20)
    E = dense - (res.U.compute() * res.S) @ res.Vh.compute()
    # a flat spectrum: the sketch is poor, and the a-posteriori estimate must say so
    assert 0.6 * np.linalg.norm(E) <= res.error.frobenius <= 1.6 * np.linalg.norm(E)
    s = np.linalg.svd(dense, compute_uv=False)
    assert np.linalg.norm(E) ** 2 <= 4 * _tropp_bound_sq(s, k, n_I)


def test_measurement_count_is_n_inner_plus_two_n_outer():
    A, _ = _rect(60, 50, 0.6, seed=4)
    op = Counting(A)
    lin = sk.aslinearoperator(op.matmat, shape=A.shape, dtype="float64", rmatmat=op.rmatmat)
    res = sk.ssvd(lin, 5, 11, client=False, dtype="float64", progress=False, n_probes=0)
    assert op.columns == 11 + 2 * 5 == res.applications
    sk.ssvd(lin, 5, 11, client=False, dtype="float64", progress=False)  # the default certificate: 10 probes
    assert op.columns == 2 * (11 + 2 * 5) + 10


def test_requires_adjoint():
    op = sk.aslinearoperator(lambda X: X, shape=(10, 10), dtype="float64")
    with pytest.raises(ValueError, match="adjoint"):
        sk.ssvd(op, 2, 3, client=False, progress=False)


def test_bad_sizes():
    with pytest.raises(ValueError, match="n_inner"):
        sk.ssvd(np.ones((30, 8)), 2, 9, client=False, progress=False)
