"""The sketched analysis of one Hessian (SEIGH + Eq. 3) on an operator with a known spectrum."""
import numpy as np
import pytest

import sketchla as sk

from overlap_experiments import overlap as ov
from overlap_experiments import sketched

D, RANK = 200, 8


@pytest.fixture(scope="module")
def operator():
    rng = np.random.default_rng(0)
    V, _ = np.linalg.qr(rng.standard_normal((D, RANK)))
    lam = np.array([9.0, -7.0, 5.0, 4.0, -3.0, 2.0, 1.5, 1.0])
    op = sk.aslinearoperator(lambda X: V @ (lam[:, None] * (V.T @ X)), shape=(D, D), symmetric=True)
    return op, V, lam, ov.magnitude_order(rng.standard_normal(D))


def test_record_of_a_low_rank_operator(tmp_path, operator):
    op, V, lam, order = operator
    rec = sketched.analyse(op, order, n_outer=RANK, n_inner=2 * RANK + 1, seed=0, store=tmp_path / "a.zarr",
                           chunk=6, keep=3, n_samples=5)
    np.testing.assert_allclose(rec["eigenvalues"], lam, rtol=1e-4)  # exact for a rank-n_O operator
    assert rec["basis"].shape == (D, 3) and rec["store"] == str(tmp_path / "a.zarr") and rec["n_samples"] == 5
    np.testing.assert_allclose(np.abs(np.sum(rec["basis"] * V[:, :3], axis=0)), 1.0, atol=1e-4)
    brute = [np.sum(np.asarray(sk.open_result(rec["store"]).eigenvectors)[order[:k], :k] ** 2) / k
             for k in range(1, RANK + 1)]
    np.testing.assert_allclose(rec["overlap"], brute, rtol=1e-5)
    assert rec["per_hvp"] > 0 and rec["stages"]["measure"] > 0
    lazy = sketched.analyse(op, order, n_outer=RANK, n_inner=2 * RANK + 1, seed=0, store=tmp_path / "a.zarr",
                            chunk=6)  # the finished store is reused; the curve streamed from it
    assert "basis" not in lazy
    np.testing.assert_allclose(lazy["overlap"], rec["overlap"], rtol=1e-5)


def test_passes_and_operator_id(tmp_path, operator):
    """``passes=1``: (q + 1)·n_O HVPs, block Krylov; with ``operator_id`` a finished store is
    reopened without applying the operator at all."""
    op, V, lam, order = operator
    calls = []
    counted = sk.aslinearoperator(lambda X: calls.append(X.shape[1]) or op.matmat(X), shape=(D, D), symmetric=True)
    rec = sketched.analyse(counted, order, n_outer=RANK, n_inner=None, passes=1, seed=0, store=tmp_path / "k.zarr",
                           chunk=6, operator_id="H-digest")
    np.testing.assert_allclose(rec["eigenvalues"], lam, rtol=1e-4)
    assert rec["hvps"] == 2 * RANK and sum(calls) >= 2 * RANK
    calls.clear()
    again = sketched.analyse(counted, order, n_outer=RANK, n_inner=None, passes=1, seed=0,
                             store=tmp_path / "k.zarr", chunk=6, operator_id="H-digest")
    assert calls == [] and np.array_equal(again["eigenvalues"], rec["eigenvalues"])
    with pytest.raises(sk.store.StoreMismatchError, match="operator_id"):
        sketched.analyse(counted, order, n_outer=RANK, n_inner=None, passes=1, seed=0, store=tmp_path / "k.zarr",
                         chunk=6, operator_id="another Hessian")
