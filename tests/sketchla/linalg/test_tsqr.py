"""sketchla.tsqr against numpy.linalg.qr: Zarr → Zarr and Dask → lazy Q, many blockings."""
import dask
import dask.array as da
import numpy as np
import pytest
import zarr

import sketchla as sk
from sketchla.linalg import _tree

from _linalg_helpers import assert_qr, empty_zarr, eps, ill_conditioned, low_rank, to_zarr

D, N = 300, 12

# (block_rows, fanin): default; ragged blocks; binary and ternary trees; blocks with
# fewer rows than columns (7 < N); one block holding everything
BLOCKINGS = [(None, None), (64, None), (40, 2), (25, 3), (7, 2), (1000, None)]


def _run(A, kind, dtype, block_rows, fanin, tmp_path=None):
    """tsqr on A (NumPy) given as ``kind`` → (Q as NumPy, R)."""
    if kind == "zarr->zarr":
        out = empty_zarr(A.shape, dtype, chunks=(block_rows or A.shape[0], A.shape[1]))
        Q, R = sk.tsqr(to_zarr(A), out=out, block_rows=block_rows, fanin=fanin)
        assert Q is out
        return Q[...], R
    if kind == "zarr->lazy":
        Q, R = sk.tsqr(to_zarr(A), block_rows=block_rows, fanin=fanin)
    elif kind == "dask->lazy":
        Q, R = sk.tsqr(da.from_array(A, chunks=(53, 5)), block_rows=block_rows, fanin=fanin)
    elif kind == "dask->zarr":
        out = empty_zarr(A.shape, dtype)
        Q, R = sk.tsqr(da.from_array(A, chunks=(53, 5)), out=out, block_rows=block_rows,
                       fanin=fanin)
        return Q[...], R
    assert isinstance(Q, da.Array) and Q.shape == A.shape and Q.dtype == dtype
    return Q.compute(), R


CASES = ([(kind, br, fi) for kind in ("zarr->zarr", "dask->lazy") for br, fi in BLOCKINGS]
         + [(kind, 40, 2) for kind in ("zarr->lazy", "dask->zarr")])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind,block_rows,fanin", CASES)
def test_matches_numpy_qr(rng, kind, dtype, block_rows, fanin):
    A = rng.standard_normal((D, N)).astype(dtype)
    Q, R = _run(A, kind, dtype, block_rows, fanin)
    assert Q.dtype == dtype and R.dtype == dtype
    assert_qr(Q, R, A, tol_orth=30 * eps(dtype), tol_rec=30 * eps(dtype))
    # the reduced QR is unique up to column signs; ours has diag(R) ≥ 0
    Qn, Rn = np.linalg.qr(A.astype(np.float64))
    d = np.sign(np.diagonal(Rn))
    np.testing.assert_allclose(R, d[:, None] * Rn, atol=200 * eps(dtype) * np.abs(Rn).max())
    np.testing.assert_allclose(Q, Qn * d, atol=200 * eps(dtype))


def _spy_nodes(monkeypatch):
    """Record the stack height and member count of every reduction-tree node."""
    seen = []
    real = _tree.node_qr

    def spy(*factors, root=False):
        seen.append((len(factors), sum(f.shape[0] for f in factors), root))
        return real(*factors, root=root)

    monkeypatch.setattr(_tree, "node_qr", spy)
    return seen


@pytest.mark.parametrize("dtype,kind", [(np.float64, "zarr->zarr"), (np.float32, "dask->lazy")])
def test_deep_recursive_tree(rng, monkeypatch, dtype, kind):
    """50 blocks with fan-in 2: a 6-level tree; every node gathers at most 2 R factors."""
    A = rng.standard_normal((400, 6)).astype(dtype)
    levels = _tree.reduction_tree(50, 2)
    assert len(levels) == 6 and len(levels[-1]) == 1
    seen = _spy_nodes(monkeypatch)
    Q, R = _run(A, kind, dtype, 8, 2)
    assert len(seen) == sum(len(g) for g in levels) == 25 + 13 + 7 + 4 + 2 + 1
    assert max(k for k, _, _ in seen) == 2 and sum(root for *_, root in seen) == 1
    assert_qr(Q, R, A, 30 * eps(dtype), 30 * eps(dtype))


def test_default_fanin_bounds_node_size(rng, monkeypatch):
    """Default fan-in: a node stacks at most block_rows rows (≈ one block), however many blocks."""
    n, block_rows = 6, 24
    A = rng.standard_normal((2400, n))
    seen = _spy_nodes(monkeypatch)
    Q, R = sk.tsqr(da.from_array(A, chunks=(500, n)), block_rows=block_rows)
    assert _tree.tree_fanin(n, block_rows) == 4
    assert max(h for _, h, _ in seen) <= block_rows
    assert len(_tree.reduction_tree(100, 4)) >= 3  # 100 leaves → 25 → 7 → 2 → 1
    assert len(seen) == 25 + 7 + 2 + 1
    assert_qr(Q.compute(), R, A, 1e-14, 1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["zarr->zarr", "dask->lazy"])
@pytest.mark.parametrize("rank", [0, 1, 3])
def test_rank_deficient_stays_orthonormal(rng, kind, dtype, rank):
    """Exactly rank r ≪ n (Hessian sketches are): Q is still orthonormal to working precision."""
    n = 40
    A = low_rank(rng, 600, n, rank, dtype) if rank else np.zeros((600, n), dtype)
    Q, R = _run(A, kind, dtype, 45, 2)
    assert_qr(Q, R, A, tol_orth=30 * eps(dtype), tol_rec=30 * eps(dtype))
    # the trailing part of R carries no more than rounding
    sv = np.linalg.svd(R.astype(np.float64), compute_uv=False)
    if rank:
        assert sv[rank] <= 100 * eps(dtype) * sv[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["zarr->zarr", "dask->lazy"])
def test_badly_conditioned(rng, kind, dtype):
    """cond(A) = 1e12: Householder TSQR keeps ||QᵀQ − I|| at eps (CholeskyQR would not)."""
    A = ill_conditioned(rng, 500, 30, 1e12, dtype)
    Q, R = _run(A, kind, dtype, 60, 3)
    assert_qr(Q, R, A, tol_orth=30 * eps(dtype), tol_rec=30 * eps(dtype))
    if dtype == np.float64:  # the singular values of R are those of A
        np.testing.assert_allclose(np.linalg.svd(R, compute_uv=False)[:10],
                                   np.linalg.svd(A, compute_uv=False)[:10], rtol=1e-10)


@pytest.mark.parametrize("shape,block_rows", [((12, 12), 5), ((13, 12), 12), ((31, 1), 7),
                                              ((100, 1), None), ((50, 20), 3)])
def test_edge_shapes(rng, shape, block_rows):
    """Square A, a single column, a last block of one row, every block shorter than n."""
    A = rng.standard_normal(shape)
    Q, R = sk.tsqr(to_zarr(A, chunks=(5, shape[1])), out=empty_zarr(shape, np.float64),
                   block_rows=block_rows, fanin=2)
    assert_qr(Q[...], R, A, 1e-14, 1e-14)
    Ql, Rl = sk.tsqr(da.from_array(A, chunks=4), block_rows=block_rows, fanin=2)
    assert_qr(Ql.compute(), Rl, A, 1e-14, 1e-14)
    np.testing.assert_allclose(Rl, R, atol=1e-13)


def test_lazy_q_is_reproducible_and_chunked(rng):
    """The lazy Q recomputes local factors from A: same numbers on every compute."""
    A = rng.standard_normal((250, 9)).astype(np.float32)
    Q, R = sk.tsqr(da.from_array(A, chunks=(64, 9)), block_rows=40, fanin=2)
    assert Q.chunks == ((40,) * 6 + (10,), (9,))
    q1, q2 = Q.compute(), Q.compute()
    np.testing.assert_array_equal(q1, q2)
    np.testing.assert_array_equal(Q[80:120].compute(), q1[80:120])
    assert_qr(q1, R, A, 30 * eps(np.float32), 30 * eps(np.float32))


def test_zarr_lazy_equals_zarr_out(rng):
    A = rng.standard_normal((200, 8))
    z = to_zarr(A)
    Ql, Rl = sk.tsqr(z, block_rows=30)
    Qz, Rz = sk.tsqr(z, out=empty_zarr(A.shape, np.float64, chunks=(30, 8)), block_rows=30)
    np.testing.assert_array_equal(Rl, Rz)
    np.testing.assert_allclose(Ql.compute(), Qz[...], atol=1e-15)


@pytest.mark.parametrize("out_chunks,shards", [((64, 10), None), ((20, 10), None),
                                               ((16, 10), (48, 10))])
def test_out_chunks_not_matching_block_rows(rng, out_chunks, shards):
    """Blocks are aligned to out's chunks (or shards): concurrent writes never share one."""
    A = rng.standard_normal((400, 10))
    out = empty_zarr(A.shape, np.float64, chunks=out_chunks, shards=shards)
    Q, R = sk.tsqr(to_zarr(A, chunks=(33, 4)), out=out, block_rows=50)
    assert_qr(Q[...], R, A, 1e-14, 1e-14)


def test_out_path_created_and_reused(rng, tmp_path):
    A = rng.standard_normal((120, 7)).astype(np.float32)
    path = tmp_path / "q.zarr"
    Q, R = sk.tsqr(to_zarr(A, path=tmp_path / "a.zarr"), out=str(path), block_rows=50)
    assert isinstance(Q, zarr.Array) and Q.dtype == np.float32
    assert Q.chunks == (50, 7) and not Q.compressors  # noise does not compress
    reopened = zarr.open_array(str(path), mode="r")
    assert_qr(reopened[...], R, A, 30 * eps(np.float32), 30 * eps(np.float32))
    B = rng.standard_normal((120, 7)).astype(np.float32)
    Q2, R2 = sk.tsqr(da.from_array(B), out=path)  # existing array of the right shape: reused
    assert_qr(zarr.open_array(str(path))[...], R2, B, 30 * eps(np.float32), 30 * eps(np.float32))


def test_out_dtype_rules(rng):
    A = rng.standard_normal((90, 5)).astype(np.float32)
    # a wider out is fine: Q is written in float64
    Q, R = sk.tsqr(to_zarr(A), out=empty_zarr(A.shape, np.float64), block_rows=30)
    assert Q.dtype == np.float64 and R.dtype == np.float32
    assert_qr(Q[...], R, A, 30 * eps(np.float32), 30 * eps(np.float32))
    # dtype= asks for the lazy Q's dtype
    Ql, _ = sk.tsqr(to_zarr(A), dtype="float64", block_rows=30)
    assert Ql.dtype == np.float64
    # a narrower out only when asked for explicitly
    A64 = A.astype(np.float64)
    Q32, _ = sk.tsqr(to_zarr(A64), out=empty_zarr(A.shape, np.float32), dtype="float32")
    assert np.abs(Q32[...].T @ Q32[...] - np.eye(5)).max() < 1e-5


def test_column_chunked_zarr_and_dask(rng):
    """A chunked along columns too: every row block gathers several column chunks."""
    A = rng.standard_normal((180, 16))
    Q, R = sk.tsqr(to_zarr(A, chunks=(25, 5)), out=empty_zarr(A.shape, np.float64, chunks=(30, 16)),
                   block_rows=30, fanin=2)
    assert_qr(Q[...], R, A, 1e-14, 1e-14)
    Ql, Rl = sk.tsqr(da.from_array(A, chunks=(17, 3)), block_rows=30)
    assert_qr(Ql.compute(), Rl, A, 1e-14, 1e-14)


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_local_schedulers(rng, scheduler):
    A = rng.standard_normal((260, 11))
    with dask.config.set(scheduler=scheduler):
        Q, R = sk.tsqr(to_zarr(A), out=empty_zarr(A.shape, np.float64, chunks=(20, 11)),
                       block_rows=20, fanin=3)
        Ql, Rl = sk.tsqr(da.from_array(A, chunks=50), block_rows=20, fanin=3)
        ql = Ql.compute()
    assert_qr(Q[...], R, A, 1e-14, 1e-14)
    assert_qr(ql, Rl, A, 1e-14, 1e-14)
    np.testing.assert_allclose(R, Rl, atol=1e-13)


def test_blas_threads_restored(rng):
    """The BLAS-thread limit used while Dask runs tasks here is undone afterwards."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    A = rng.standard_normal((100, 4))
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):  # the test session runs with 1
        before = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        with dask.config.set(scheduler="threads", num_workers=2):
            sk.tsqr(to_zarr(A), out=empty_zarr(A.shape, np.float64), block_rows=20)
        after = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    assert before == after and 2 in before


# --------------------------------------------------------------------------- local Q: A R⁻¹ or Householder
def _fast_count(caplog):
    import re

    found = [re.search(r"\((\d+) of (\d+) blocks with Q = A R⁻¹", r.getMessage())
             for r in caplog.records if r.name == "sketchla.linalg.tsqr"]
    m = [f for f in found if f][-1]
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("kind", ["zarr->zarr", "dask->lazy", "dask->zarr"])
def test_well_conditioned_blocks_take_a_r_inverse(rng, caplog, kind):
    """Gaussian blocks: every block's Q is A_i R_i⁻¹ — as orthonormal as Householder's."""
    caplog.set_level("INFO", logger="sketchla.linalg.tsqr")
    A = rng.standard_normal((400, 10)).astype(np.float32)
    Q, R = _run(A, kind, np.float32, 50, 2)
    assert _fast_count(caplog) == (8, 8)
    assert_qr(Q, R, A, 30 * eps(np.float32), 30 * eps(np.float32))


@pytest.mark.parametrize("kind", ["zarr->zarr", "dask->lazy"])
def test_householder_method_matches_auto(rng, caplog, kind):
    caplog.set_level("INFO", logger="sketchla.linalg.tsqr")
    A = rng.standard_normal((300, 8))
    Qa, Ra = _run(A, kind, np.float64, 40, 3)
    if kind == "zarr->zarr":
        Qh, Rh = sk.tsqr(to_zarr(A), out=empty_zarr(A.shape, np.float64, chunks=(40, 8)),
                         block_rows=40, fanin=3, method="householder")
        Qh = Qh[...]
    else:
        Qh, Rh = sk.tsqr(da.from_array(A, chunks=(53, 5)), block_rows=40, fanin=3,
                         method="householder")
        Qh = Qh.compute()
    assert _fast_count(caplog) == (0, 8)
    np.testing.assert_array_equal(Ra, Rh)  # same Householder R_i, same tree
    np.testing.assert_allclose(Qa, Qh, atol=1e-14)


@pytest.mark.parametrize("kind", ["zarr->zarr", "dask->lazy", "dask->zarr"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mixed_blocks_fall_back_per_block(rng, caplog, kind, dtype):
    """Rank-deficient, badly conditioned and short blocks use the Householder Q; the rest A R⁻¹."""
    caplog.set_level("INFO", logger="sketchla.linalg.tsqr")
    n = 12
    A = rng.standard_normal((330, n))
    A[50:100] = low_rank(rng, 50, n, 2)                  # block 1: rank 2
    A[150:200] = ill_conditioned(rng, 50, n, 1e6)        # block 3: cond 1e6
    A[250:300] = ill_conditioned(rng, 50, n, 30)         # block 5: cond 30 > FAST_COND
    A = A.astype(dtype)                                  # block 6: 30 rows, square R → fast
    Q, R = _run(A, kind, dtype, 50, 2)
    assert _fast_count(caplog) == (4, 7)
    assert_qr(Q, R, A, 30 * eps(dtype), 30 * eps(dtype))


def test_short_blocks_use_householder(rng, caplog):
    caplog.set_level("INFO", logger="sketchla.linalg.tsqr")
    A = rng.standard_normal((60, 12))
    Q, R = sk.tsqr(to_zarr(A), out=empty_zarr(A.shape, np.float64, chunks=(10, 12)),
                   block_rows=10)  # 10 < n rows
    assert _fast_count(caplog) == (0, 6)
    assert_qr(Q[...], R, A, 1e-14, 1e-14)


@pytest.mark.parametrize("method,evaluations", [("auto", 2), ("householder", 1)])
def test_dask_a_evaluated_once_or_twice_with_out(rng, method, evaluations):
    """Documented: with out given, "auto" evaluates a Dask A's blocks once per pass."""
    import threading

    A = rng.standard_normal((200, 6))
    seen, lock = [], threading.Lock()

    def record(block, block_info=None):
        with lock:
            seen.append(block_info[0]["chunk-location"][0])
        return block

    Ad = da.from_array(A, chunks=(50, 6)).map_blocks(record, dtype=A.dtype)
    Q, R = sk.tsqr(Ad, out=empty_zarr(A.shape, np.float64), block_rows=50, method=method)
    assert sorted(seen) == sorted(list(range(4)) * evaluations)
    assert_qr(Q[...], R, A, 1e-14, 1e-14)


def test_bad_method(rng):
    with pytest.raises(ValueError, match=r"method must be one of \('auto', 'householder'\), got 'cholesky'"):
        sk.tsqr(da.from_array(rng.standard_normal((20, 2))), method="cholesky")
