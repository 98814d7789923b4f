"""The exact analysis of one Hessian against a dense autograd reference (App. B.1)."""
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("curvlinops")

from overlap_experiments import exact  # noqa: E402
from overlap_experiments import overlap as ov  # noqa: E402
from overlap_experiments.hessian import HessianOperator  # noqa: E402
from overlap_experiments.models import flat_parameters  # noqa: E402


def test_exact_record(tiny_model, tiny_sample, dense_hessian):
    X, y = tiny_sample
    op = HessianOperator(tiny_model, X, y, dtype="float64")
    order = ov.magnitude_order(flat_parameters(tiny_model))
    rec = exact.analyse(op, order, k_max=10, dtype="float64", n_random=3, keep=4)
    H = dense_hessian(tiny_model, X, y)
    w, V = np.linalg.eigh(H)
    top = np.argsort(-np.abs(w))
    assert rec["all_eigenvalues"] and rec["eigenvalues"].shape == (39,)
    np.testing.assert_allclose(rec["eigenvalues"], w[top], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(rec["frobenius2"], np.sum(H * H), rtol=1e-8)
    Q = V[:, top[:10]]
    np.testing.assert_allclose(rec["overlap"], ov.overlap_curve(order, Q, 10), rtol=1e-6)
    assert rec["random_mean"].shape == rec["random_std"].shape == (10,) and np.all(rec["best"] >= rec["overlap"] - 1e-9)
    assert rec["basis"].shape == (39, 4) and rec["basis"].dtype == np.float32
    assert set(rec["kappa_spectrum"]) == {"0.2", "0.05", "0.01", "0.005"}  # keys as JSON writes them
    assert set(rec["metrics"]) == {"0.005", "0.01", "0.05", "0.2"} and rec["metrics"]["0.2"]["overlap"] == pytest.approx(
        rec["overlap"][ov.k_for(39, 0.2) - 1])
    assert rec["seconds_per_hvp"] == pytest.approx(rec["seconds_hessian"] / 39)
    lz = exact.analyse(op, order, k_max=6, method="lanczos", n_random=2)
    assert not lz["all_eigenvalues"] and lz["eigenvalues"].shape == (6,) and lz["basis"].shape == (39, 0)
    assert "0.2" not in lz["metrics"]  # ρD = 8 > k_max: only where the eigenvectors exist
    np.testing.assert_allclose(lz["eigenvalues"], w[top[:6]], rtol=1e-4)
