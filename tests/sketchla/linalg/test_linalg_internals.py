"""Building blocks: the reduction tree, block sizes, the kernels (LAPACK, scaling, Cholesky QR); a hypothesis sweep."""
import math

import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sketchla as sk
from sketchla.linalg import _blocks, _kernels, _tree

from _linalg_helpers import assert_qr, empty_zarr, to_zarr


@pytest.mark.parametrize("n_leaves,fanin,widths", [
    (1, 2, [1]), (2, 2, [1]), (5, 2, [3, 2, 1]), (9, 3, [3, 1]), (10, 3, [4, 2, 1]),
    (100, 4, [25, 7, 2, 1]),
])
def test_reduction_tree_shape(n_leaves, fanin, widths):
    levels = _tree.reduction_tree(n_leaves, fanin)
    assert [len(g) for g in levels] == widths
    below = n_leaves
    for groups in levels:  # every member of the level below in exactly one group of ≤ fanin
        assert sorted(i for g in groups for i in g) == list(range(below))
        assert max(len(g) for g in groups) <= fanin
        below = len(groups)


def test_reduction_tree_and_fanin_validation():
    with pytest.raises(ValueError, match="n_leaves must be >= 1"):
        _tree.reduction_tree(0, 2)
    with pytest.raises(ValueError, match="fanin must be >= 2"):
        _tree.reduction_tree(3, 1)
    assert _tree.tree_fanin(256, 65536) == 256
    assert _tree.tree_fanin(100, 150) == 2  # never below 2
    assert _tree.tree_fanin(100, 150, 7) == 7


def test_row_bounds_and_the_default_block_height():
    assert _blocks.row_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert _blocks.plan_rows(None, 256, 4, n_rows=10**6) == 65536  # BlockPlan's rule, see test_block_plan
    assert _blocks.plan_rows(7, 256, 4, n_rows=10**6) == 7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", [(500, 20), (7, 20), (20, 20)])
def test_local_r_is_the_r_of_local_qr(rng, dtype, order, shape):
    """Bit-identical R from both kernels (the lazy Q relies on it); the input is untouched."""
    block = np.asarray(rng.standard_normal(shape), dtype=dtype, order=order)
    keep = block.copy()
    r = _kernels.local_r(block)
    q, r2 = _kernels.local_qr(block)
    np.testing.assert_array_equal(block, keep)
    np.testing.assert_array_equal(r, r2)
    k = min(shape)
    assert q.shape == (shape[0], k) and r.shape == (k, shape[1]) and q.dtype == dtype
    np.testing.assert_allclose(q @ r, block, atol=50 * np.finfo(dtype).eps * np.abs(block).max())


def test_node_qr_root_sign(rng):
    rs = [np.triu(rng.standard_normal((4, 4))) for _ in range(3)]
    q, r = _kernels.node_qr(*rs, root=True)
    assert q.shape == (12, 4) and (np.diagonal(r) >= 0).all() and r.dtype == np.float64
    np.testing.assert_allclose(q @ r, np.concatenate(rs), atol=1e-13)
    np.testing.assert_array_equal(_kernels.node_r(*rs, root=True), r)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(D=st.integers(1, 120), n=st.integers(1, 9), block_rows=st.integers(1, 50),
       fanin=st.one_of(st.none(), st.integers(2, 5)), seed=st.integers(0, 2**16),
       f32=st.booleans(), lazy=st.booleans(), method=st.sampled_from(["auto", "cholesky", "householder"]))
def test_any_blocking_gives_a_qr(D, n, block_rows, fanin, seed, f32, lazy, method):
    """Any D ≥ n, block height and fan-in (ragged blocks, blocks shorter than n, one block), any method."""
    D = max(D, n)
    dtype = np.float32 if f32 else np.float64
    A = np.random.default_rng(seed).standard_normal((D, n)).astype(dtype)
    tol = 30 * np.finfo(dtype).eps
    if lazy:
        Q, R = sk.tsqr(da.from_array(A, chunks=11), block_rows=block_rows, fanin=fanin, method=method)
        Q = Q.compute()
    else:
        Q, R = sk.tsqr(to_zarr(A, chunks=(13, n)), out=empty_zarr((D, n), dtype, chunks=(7, n)),
                       block_rows=block_rows, fanin=fanin, method=method)
        Q = Q[...]
    assert_qr(Q, R, A, tol, tol)


def test_cond_estimate(rng):
    assert _kernels.cond_estimate(np.eye(5)) == pytest.approx(1.0)
    assert _kernels.cond_estimate(np.diag([1.0, 1e-8, 1.0])) == pytest.approx(1e8, rel=1e-6)
    assert _kernels.cond_estimate(np.triu(np.ones((3, 3))) - np.diag([0, 1, 0])) == np.inf
    assert _kernels.cond_estimate(np.full((2, 2), np.nan)) == np.inf
    with pytest.raises(ValueError, match="square"):
        _kernels.cond_estimate(np.ones((3, 2)))
    for _ in range(20):  # never over, and under by less than 2x, on random triangles
        n = int(rng.integers(2, 60))
        r = np.triu(rng.standard_normal((n, n))) + np.diag(rng.uniform(0.1, 3, n))
        true, est = np.linalg.cond(r), _kernels.cond_estimate(r)
        assert true / 2 <= est <= true * (1 + 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scaling_by_powers_of_two_is_exact(dtype):
    """Blocks outside [2^-64, 2^64] are scaled to a largest entry in [0.5, 1), bit for bit."""
    fi = np.finfo(dtype)
    assert _kernels.scale_exponent(1.0) == 0 and _kernels.scale_exponent(2.0**60) == 0
    assert _kernels.scale_exponent(0.0) == 0 and _kernels.scale_exponent(float("nan")) == 0
    for amax in (float(fi.smallest_subnormal) * 7, float(fi.tiny), float(fi.max), 2.0**70, 2.0**-70):
        e = _kernels.scale_exponent(amax)
        assert e != 0 and 0.5 <= math.ldexp(amax, -e) < 1
    x = np.array([[fi.smallest_subnormal * 3, -fi.smallest_subnormal], [fi.tiny, 0]], dtype=dtype)
    e = _kernels.scale_exponent(_kernels.max_abs(x))
    y = _kernels.scaled(x, e)
    assert y.dtype == dtype and _kernels.max_abs(y) < 1
    np.testing.assert_array_equal(_kernels.scaled(y, -e), x)  # exact both ways
    assert _kernels.scaled(x, 0) is x
    assert _kernels.max_abs(np.array([[1.0, np.nan]])) != _kernels.max_abs(np.array([[1.0, np.nan]]))
    assert _kernels.max_abs(np.zeros((0, 3))) == 0.0


def test_node_qr_carries_exponents(rng):
    """Pairs (r, e) stand for r·2^e: the node's R is the R of the unscaled stack."""
    rs = [np.triu(rng.standard_normal((4, 4))) for _ in range(3)]
    exps = [0, 500, -300]
    _, (r, e) = _kernels.node_qr(*zip(rs, exps), root=True)
    assert e == 500
    # the largest member dominates: the others enter scaled by 2^-500 and 2^-800
    ref = np.linalg.qr(np.vstack([rs[0] * 2.0**-500, rs[1], np.zeros((4, 4))]))[1]
    np.testing.assert_allclose(np.abs(r), np.abs(ref), rtol=1e-14)
    assert _kernels.node_r(*zip(rs, exps), root=True)[1] == 500
    big = _kernels.unscale((np.eye(2), 1100), np.float64)
    assert np.isinf(big[0, 0]) and big[0, 1] == 0
    np.testing.assert_array_equal(_kernels.unscale((np.eye(2), -3), np.float32), np.eye(2, dtype=np.float32) / 8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_solve_right_and_cholesky(rng, dtype):
    z = rng.standard_normal((500, 12))
    r = _kernels.cholesky_upper(z.T @ z)
    np.testing.assert_allclose(r.T @ r, z.T @ z, rtol=1e-13)
    assert np.array_equal(r, np.triu(r)) and (np.diagonal(r) > 0).all()
    zc = z.astype(dtype)
    q = _kernels.solve_right(zc, r)
    assert q.dtype == dtype and q.shape == z.shape
    np.testing.assert_allclose(q, np.linalg.qr(z)[0] * np.sign(np.diagonal(np.linalg.qr(z)[1])),
                               atol=100 * np.finfo(dtype).eps)
    np.testing.assert_array_equal(zc, z.astype(dtype))  # not owned: left alone
    scratch = zc.copy()
    q2 = _kernels.solve_right(scratch, r, owned=True)
    np.testing.assert_array_equal(q2, q)
    # a singular or indefinite Gram has no Cholesky factor; a shift gives one
    g = np.ones((3, 3))
    assert _kernels.cholesky_upper(g) is None
    assert _kernels.cholesky_upper(g, shift=1e-8) is not None


def test_bits_checksum(rng):
    z = rng.standard_normal((50, 7))
    assert _kernels.bits_checksum(z) == _kernels.bits_checksum(z.copy())
    assert _kernels.bits_checksum(np.asfortranarray(z)) == _kernels.bits_checksum(z)
    w = z.copy()
    w[17, 3] = np.nextafter(w[17, 3], np.inf)  # one bit of one entry
    assert _kernels.bits_checksum(w) != _kernels.bits_checksum(z)
    z32 = z.astype(np.float32)
    assert _kernels.bits_checksum(z32) != _kernels.bits_checksum(z32 * np.float32(1 + 2**-20))


@pytest.mark.parametrize("shape", [(1000, 7), (3, 5), (257, 1), (0, 4)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_reorder(rng, shape, order):
    x = rng.standard_normal(shape).astype(np.float32)
    for src in (x, np.asfortranarray(x)):
        y = _kernels.reorder(src, order)
        assert y.flags["C_CONTIGUOUS" if order == "C" else "F_CONTIGUOUS"]
        np.testing.assert_array_equal(y, x)
        assert not np.shares_memory(y, src)
