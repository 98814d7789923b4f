"""sketchla.lstsq against numpy.linalg.lstsq: 1-D and many-column B, rank deficiency, dtypes."""
import dask.array as da
import numpy as np
import pytest

import sketchla as sk

from _linalg_helpers import eps, ill_conditioned, low_rank, to_zarr


def _as(x, kind):
    if kind == "zarr":
        return to_zarr(x, chunks=(41,) + x.shape[1:])
    if kind == "dask":
        return da.from_array(x, chunks=(57,) + x.shape[1:])
    return x  # in-memory NumPy (allowed for B)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_kind,b_kind", [("zarr", "zarr"), ("dask", "numpy"), ("zarr", "dask")])
@pytest.mark.parametrize("k", [None, 1, 4, 40])
def test_matches_numpy_full_rank(rng, dtype, a_kind, b_kind, k):
    """k=None: a 1-D right-hand side; k=40: more columns than A has."""
    D, n = 400, 15
    A = rng.standard_normal((D, n)).astype(dtype)
    B = rng.standard_normal((D,) if k is None else (D, k)).astype(dtype)
    X = sk.lstsq(_as(A, a_kind), _as(B, b_kind), block_rows=50, fanin=3)
    ref = np.linalg.lstsq(A.astype(np.float64), B.astype(np.float64), rcond=None)[0]
    assert X.shape == ref.shape and X.dtype == dtype
    np.testing.assert_allclose(X, ref, rtol=0, atol=100 * eps(dtype) * np.abs(ref).max())


def test_deep_tree_and_default_blocks(rng):
    A = rng.standard_normal((700, 5))
    B = rng.standard_normal((700, 3))
    ref = np.linalg.lstsq(A, B, rcond=None)[0]
    # width n + k = 8 and 8-row blocks: 88 leaves, a 7-level binary tree
    np.testing.assert_allclose(sk.lstsq(to_zarr(A), to_zarr(B), block_rows=8, fanin=2), ref,
                               atol=1e-13)
    np.testing.assert_allclose(sk.lstsq(to_zarr(A), B), ref, atol=1e-13)
    # blocks shorter than n + k
    np.testing.assert_allclose(sk.lstsq(da.from_array(A), B, block_rows=3, fanin=4), ref, atol=1e-13)


def test_exact_fit_recovers_x(rng):
    A = rng.standard_normal((300, 10))
    x0 = rng.standard_normal(10)
    np.testing.assert_allclose(sk.lstsq(to_zarr(A), A @ x0, block_rows=40), x0, rtol=1e-12)


@pytest.mark.parametrize("B_1d", [True, False])
def test_rank_deficient_gives_minimum_norm_solution(rng, B_1d):
    """Exact rank 3 of 20 columns: the min-norm solution numpy's SVD lstsq returns.

    Documented behaviour: singular values of A below ``rcond · σ_max``
    (default ``n · eps``) are treated as zero, as in ``numpy.linalg.lstsq``.
    """
    A = low_rank(rng, 500, 20, 3)
    B = rng.standard_normal(500 if B_1d else (500, 6))
    X = sk.lstsq(to_zarr(A), to_zarr(B), block_rows=45, fanin=2)
    ref = np.linalg.lstsq(A, B, rcond=None)[0]
    np.testing.assert_allclose(X, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    # min-norm: no component in the null space of A
    _, s, Vt = np.linalg.svd(A)
    null = Vt[3:]
    assert np.abs(null @ X).max() < 1e-9 * np.abs(X).max()
    np.testing.assert_allclose(np.linalg.norm(A @ X - B), np.linalg.norm(A @ ref - B), rtol=1e-10)


def test_zero_matrix_gives_zero(rng):
    X = sk.lstsq(to_zarr(np.zeros((60, 4))), rng.standard_normal((60, 2)), block_rows=25)
    np.testing.assert_array_equal(X, np.zeros((4, 2)))


def test_badly_conditioned_residual_matches_numpy(rng):
    """cond(A) = 1e12 (float64): same residual as numpy's lstsq; a consistent system is solved."""
    A = ill_conditioned(rng, 400, 25, 1e12)
    B = rng.standard_normal((400, 3))
    X = sk.lstsq(to_zarr(A), B, block_rows=60, fanin=2)
    ref = np.linalg.lstsq(A, B, rcond=None)[0]
    U = np.linalg.svd(A, full_matrices=False)[0]
    best = np.linalg.norm(B - U @ (U.T @ B), axis=0)  # the minimum residual
    # at cond 1e12 both solutions carry ~eps·cond² of error in the residual
    np.testing.assert_allclose(np.linalg.norm(A @ X - B, axis=0), best, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(A @ ref - B, axis=0), best, rtol=1e-6)
    x0 = rng.standard_normal(25)
    x = sk.lstsq(to_zarr(A), A @ x0, block_rows=60)
    assert np.linalg.norm(A @ x - A @ x0) <= 1e-12 * np.linalg.norm(A @ x0)


def test_rcond_truncates_like_numpy(rng):
    """A user rcond: singular values below rcond·σ_max are dropped, as numpy's rcond."""
    A = ill_conditioned(rng, 300, 12, 1e10)
    B = rng.standard_normal((300, 2))
    for rcond in (1e-3, 1e-6):
        X = sk.lstsq(to_zarr(A), B, rcond=rcond, block_rows=50)
        ref = np.linalg.lstsq(A, B, rcond=rcond)[0]
        np.testing.assert_allclose(X, ref, rtol=1e-7, atol=1e-9 * np.abs(ref).max())


def test_mixed_dtypes_promote(rng):
    A = rng.standard_normal((90, 4)).astype(np.float32)
    B = rng.standard_normal(90)
    X = sk.lstsq(to_zarr(A), B, block_rows=30)
    assert X.dtype == np.float64 and X.shape == (4,)
    ref = np.linalg.lstsq(A.astype(np.float64), B, rcond=None)[0]
    np.testing.assert_allclose(X, ref, atol=1e-12)
