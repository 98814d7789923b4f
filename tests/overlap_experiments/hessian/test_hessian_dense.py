"""The dense Hessian of a small network and its eigenpairs (the exact analysis of App. B.1)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("curvlinops")

from overlap_experiments import hessian  # noqa: E402


def test_exact_hessian_matches_autograd(tiny_model, tiny_sample, dense_hessian):
    X, y = tiny_sample
    ref = dense_hessian(tiny_model, X, y)
    op = hessian.HessianOperator(tiny_model, X, y, dtype="float64", block=7)
    assert op.shape == (39, 39) and op.symmetric
    H = hessian.exact_hessian(op, block=10, progress=False)
    np.testing.assert_allclose(H, ref, rtol=1e-10, atol=1e-12)
    assert np.abs(ref).max() > 1e-2  # a non-trivial Hessian
    assert np.linalg.eigvalsh(ref).min() < -1e-6  # indefinite: not a Gauss-Newton matrix


def test_exact_eigh_sorted_by_magnitude_matches_numpy(tiny_model, tiny_sample, dense_hessian):
    X, y = tiny_sample
    H = dense_hessian(tiny_model, X, y)
    vals, vecs = hessian.exact_eigh(H, k_max=10, dtype="float64")
    w, V = np.linalg.eigh(H)
    order = np.argsort(-np.abs(w))
    np.testing.assert_allclose(vals, w[order], rtol=1e-10, atol=1e-12)
    assert np.all(np.diff(np.abs(vals)) <= 1e-15) and vecs.shape == (39, 10)
    # eigenvectors: same up to sign (the top eigenvalues are simple here)
    np.testing.assert_allclose(np.abs(np.sum(vecs * V[:, order[:10]], axis=0)), 1.0, atol=1e-8)
    np.testing.assert_allclose(H @ vecs, vecs * vals[:10], atol=1e-10)
    v32, q32 = hessian.exact_eigh(H, k_max=5)  # float32 default
    assert q32.dtype == np.float32
    np.testing.assert_allclose(v32[:5], vals[:5], rtol=1e-4)
    with pytest.raises(ValueError, match="k_max"):
        hessian.exact_eigh(H, k_max=40)
    with pytest.raises(ValueError, match="square"):
        hessian.exact_eigh(H[:5])


def test_time_hvp_is_positive(tiny_model, tiny_sample):
    X, y = tiny_sample
    op = hessian.HessianOperator(tiny_model, X, y, dtype="float64")
    assert 0 < hessian.time_hvp(op, n=4) < 10


def test_lanczos_top_agrees_with_the_full_eigendecomposition(tiny_model, tiny_sample, dense_hessian):
    H = dense_hessian(tiny_model, *tiny_sample)
    vals, vecs = hessian.exact_eigh(H, k_max=4, dtype="float64")
    lv, lq = hessian.lanczos_top(H, 4, seed=0)
    np.testing.assert_allclose(lv, vals[:4], rtol=1e-5)
    np.testing.assert_allclose(np.abs(np.sum(lq * vecs, axis=0)), 1.0, atol=1e-4)
    tv, _ = hessian.top_eigenpairs(H, 4, method="lanczos", seed=0)
    np.testing.assert_array_equal(tv, lv)
    with pytest.raises(ValueError, match="method"):
        hessian.top_eigenpairs(H, 4, method="qr")
