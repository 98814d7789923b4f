"""Building blocks: the reduction tree, block sizes, the LAPACK kernels; a hypothesis sweep."""
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
       f32=st.booleans(), lazy=st.booleans())
def test_any_blocking_gives_a_qr(D, n, block_rows, fanin, seed, f32, lazy):
    """Any D ≥ n, block height and fan-in (ragged blocks, blocks shorter than n, one block)."""
    D = max(D, n)
    dtype = np.float32 if f32 else np.float64
    A = np.random.default_rng(seed).standard_normal((D, n)).astype(dtype)
    tol = 30 * np.finfo(dtype).eps
    if lazy:
        Q, R = sk.tsqr(da.from_array(A, chunks=11), block_rows=block_rows, fanin=fanin)
        Q = Q.compute()
    else:
        Q, R = sk.tsqr(to_zarr(A, chunks=(13, n)), out=empty_zarr((D, n), dtype, chunks=(7, n)),
                       block_rows=block_rows, fanin=fanin)
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


def test_factor_q_is_orgqr_of_the_same_reflectors(rng):
    block = rng.standard_normal((300, 20)).astype(np.float32)
    f = _kernels.factor(block)
    r0 = f.r.copy()
    q, r = f.q()
    np.testing.assert_array_equal(r, r0)
    q2, r2 = _kernels.local_qr(block)
    np.testing.assert_array_equal(q, q2)
    np.testing.assert_array_equal(r, r2)


@pytest.mark.parametrize("shape", [(1000, 7), (3, 5), (257, 1), (0, 4)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_reorder(rng, shape, order):
    x = rng.standard_normal(shape).astype(np.float32)
    for src in (x, np.asfortranarray(x)):
        y = _kernels.reorder(src, order)
        assert y.flags["C_CONTIGUOUS" if order == "C" else "F_CONTIGUOUS"]
        np.testing.assert_array_equal(y, x)
        assert not np.shares_memory(y, src)
