"""sketchla.tsqr against numpy.linalg.qr for every method: Zarr → Zarr and Dask → lazy Q, many
blockings; what method="auto" chooses; ill-conditioned, rank-deficient, subnormal and huge inputs."""
import dask
import dask.array as da
import numpy as np
import pytest
import zarr

import sketchla as sk
from sketchla.linalg import _tree

from _linalg_helpers import assert_qr, empty_zarr, eps, ill_conditioned, low_rank, to_zarr

D, N = 300, 12
METHODS = ["auto", "cholesky", "householder"]

# (block_rows, fanin): default; ragged blocks; binary and ternary trees; blocks with
# fewer rows than columns (7 < N); one block holding everything
BLOCKINGS = [(None, None), (64, None), (40, 2), (25, 3), (7, 2), (1000, None)]


def _run(A, kind, dtype, block_rows, fanin, method="auto"):
    """tsqr on A (NumPy) given as ``kind`` → (Q as NumPy, R)."""
    kw = dict(block_rows=block_rows, fanin=fanin, method=method)
    if kind == "zarr->zarr":
        out = empty_zarr(A.shape, dtype, chunks=(block_rows or A.shape[0], A.shape[1]))
        Q, R = sk.tsqr(to_zarr(A), out=out, **kw)
        assert Q is out
        return Q[...], R
    if kind == "zarr->lazy":
        Q, R = sk.tsqr(to_zarr(A), **kw)
    elif kind == "dask->lazy":
        Q, R = sk.tsqr(da.from_array(A, chunks=(53, 5)), **kw)
    elif kind == "dask->zarr":
        out = empty_zarr(A.shape, dtype)
        Q, R = sk.tsqr(da.from_array(A, chunks=(53, 5)), out=out, **kw)
        return Q[...], R
    assert isinstance(Q, da.Array) and Q.shape == A.shape and Q.dtype == dtype
    return Q.compute(), R


CASES = ([(kind, br, fi) for kind in ("zarr->zarr", "dask->lazy") for br, fi in BLOCKINGS]
         + [(kind, 40, 2) for kind in ("zarr->lazy", "dask->zarr")])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind,block_rows,fanin", CASES)
def test_matches_numpy_qr(rng, kind, dtype, block_rows, fanin, method):
    A = rng.standard_normal((D, N)).astype(dtype)
    Q, R = _run(A, kind, dtype, block_rows, fanin, method)
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
        seen.append((len(factors), sum(f[0].shape[0] for f in factors), root))  # (R, exponent) pairs
        return real(*factors, root=root)

    monkeypatch.setattr(_tree, "node_qr", spy)
    return seen


@pytest.mark.parametrize("dtype,kind", [(np.float64, "zarr->zarr"), (np.float32, "dask->lazy")])
def test_deep_recursive_tree(rng, monkeypatch, dtype, kind):
    """Householder TSQR, 50 blocks with fan-in 2: a 6-level tree; every node gathers at most 2 R factors."""
    A = rng.standard_normal((400, 6)).astype(dtype)
    levels = _tree.reduction_tree(50, 2)
    assert len(levels) == 6 and len(levels[-1]) == 1
    seen = _spy_nodes(monkeypatch)
    Q, R = _run(A, kind, dtype, 8, 2, "householder")
    assert len(seen) == sum(len(g) for g in levels) == 25 + 13 + 7 + 4 + 2 + 1
    assert max(k for k, _, _ in seen) == 2 and sum(root for *_, root in seen) == 1
    assert_qr(Q, R, A, 30 * eps(dtype), 30 * eps(dtype))


def test_default_fanin_bounds_node_size(rng, monkeypatch):
    """Default fan-in: a node stacks at most block_rows rows (≈ one block), however many blocks."""
    n, block_rows = 6, 24
    A = rng.standard_normal((2400, n))
    seen = _spy_nodes(monkeypatch)
    Q, R = sk.tsqr(da.from_array(A, chunks=(500, n)), block_rows=block_rows, method="householder")
    assert _tree.tree_fanin(n, block_rows) == 4
    assert max(h for _, h, _ in seen) <= block_rows
    assert len(_tree.reduction_tree(100, 4)) >= 3  # 100 leaves → 25 → 7 → 2 → 1
    assert len(seen) == 25 + 7 + 2 + 1
    assert_qr(Q.compute(), R, A, 1e-14, 1e-14)


@pytest.mark.parametrize("method", ["auto", "householder"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["zarr->zarr", "dask->lazy"])
@pytest.mark.parametrize("rank", [0, 1, 3])
def test_rank_deficient_stays_orthonormal(rng, kind, dtype, rank, method):
    """Exactly rank r ≪ n (Hessian sketches are): Q is still orthonormal to working precision."""
    n = 40
    A = low_rank(rng, 600, n, rank, dtype) if rank else np.zeros((600, n), dtype)
    Q, R = _run(A, kind, dtype, 45, 2, method)
    assert_qr(Q, R, A, tol_orth=30 * eps(dtype), tol_rec=30 * eps(dtype))
    # the trailing part of R carries no more than rounding
    sv = np.linalg.svd(R.astype(np.float64), compute_uv=False)
    if rank:
        assert sv[rank] <= 100 * eps(dtype) * sv[0]


def _kappa_1e12(rng, dtype):
    """500×30 with κ₂ ≈ 1e12 *as stored*: float64 from log-spaced singular values; float32 (where
    rounding caps an SVD-built matrix near 1/u₃₂) a Gaussian with columns scaled by 2^0 … 2^-40, exactly."""
    if dtype == np.float64:
        return ill_conditioned(rng, 500, 30, 1e12, dtype)
    A = rng.standard_normal((500, 30)).astype(np.float32) * (2.0 ** -np.linspace(0, 40, 30).round()).astype(np.float32)
    assert np.linalg.cond(A.astype(np.float64)) > 1e11
    return A


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["zarr->zarr", "dask->lazy"])
def test_badly_conditioned(rng, kind, dtype, method):
    """κ₂(A) = 1e12: every method keeps ||QᵀQ − I|| within 1e-6 (float32) / 1e-13 (float64) — the
    Cholesky QR through a shifted first step and float64 products, Householder TSQR at eps."""
    A = _kappa_1e12(rng, dtype)
    Q, R = _run(A, kind, dtype, 60, 3, method)
    tol = {np.float32: 1e-6, np.float64: 1e-13}[dtype] if method == "cholesky" else 30 * eps(dtype)
    assert_qr(Q, R, A, tol_orth=tol, tol_rec=30 * eps(dtype))
    # the singular values of R are those of A (Weyl: to ‖ΔA‖₂, a few eps·‖A‖₂)
    sv = np.linalg.svd(A.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(np.linalg.svd(R.astype(np.float64), compute_uv=False), sv,
                               rtol=0, atol=100 * eps(dtype) * sv[0])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape,block_rows", [((12, 12), 5), ((13, 12), 12), ((31, 1), 7),
                                              ((100, 1), None), ((50, 20), 3)])
def test_edge_shapes(rng, shape, block_rows, method):
    """Square A, a single column, a last block of one row, every block shorter than n."""
    A = rng.standard_normal(shape)
    Q, R = sk.tsqr(to_zarr(A, chunks=(5, shape[1])), out=empty_zarr(shape, np.float64),
                   block_rows=block_rows, fanin=2, method=method)
    assert_qr(Q[...], R, A, 1e-14, 1e-14)
    Ql, Rl = sk.tsqr(da.from_array(A, chunks=4), block_rows=block_rows, fanin=2, method=method)
    assert_qr(Ql.compute(), Rl, A, 1e-14, 1e-14)
    np.testing.assert_allclose(Rl, R, atol=1e-13)


@pytest.mark.parametrize("method", METHODS)
def test_lazy_q_is_reproducible_and_chunked(rng, method):
    """The lazy Q recomputes its blocks from A: same numbers on every compute."""
    A = rng.standard_normal((250, 9)).astype(np.float32)
    Q, R = sk.tsqr(da.from_array(A, chunks=(64, 9)), block_rows=40, fanin=2, method=method)
    assert Q.chunks == ((40,) * 6 + (10,), (9,))
    q1, q2 = Q.compute(), Q.compute()
    np.testing.assert_array_equal(q1, q2)
    np.testing.assert_array_equal(Q[80:120].compute(), q1[80:120])
    assert_qr(q1, R, A, 30 * eps(np.float32), 30 * eps(np.float32))


@pytest.mark.parametrize("method", METHODS)
def test_zarr_lazy_equals_zarr_out(rng, method):
    A = rng.standard_normal((200, 8))
    z = to_zarr(A)
    Ql, Rl = sk.tsqr(z, block_rows=30, method=method)
    Qz, Rz = sk.tsqr(z, out=empty_zarr(A.shape, np.float64, chunks=(30, 8)), block_rows=30, method=method)
    np.testing.assert_array_equal(Rl, Rz)
    np.testing.assert_allclose(Ql.compute(), Qz[...], atol=1e-15)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("out_chunks,shards", [((64, 10), None), ((20, 10), None),
                                               ((16, 10), (48, 10))])
def test_out_chunks_not_matching_block_rows(rng, out_chunks, shards, method):
    """Blocks are aligned to out's chunks (or shards): concurrent writes never share one."""
    A = rng.standard_normal((400, 10))
    out = empty_zarr(A.shape, np.float64, chunks=out_chunks, shards=shards)
    Q, R = sk.tsqr(to_zarr(A, chunks=(33, 4)), out=out, block_rows=50, method=method)
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


@pytest.mark.parametrize("method", METHODS)
def test_local_schedulers_give_the_same_bits(rng, method):
    """Threads and the synchronous scheduler: the same Q and R, bit for bit (fixed reduction order)."""
    A = ill_conditioned(rng, 260, 11, 1e5)  # Cholesky QR takes a CholeskyQR2 chain here
    got = {}
    for scheduler in ("threads", "sync"):
        with dask.config.set(scheduler=scheduler):
            Q, R = sk.tsqr(to_zarr(A), out=empty_zarr(A.shape, np.float64, chunks=(20, 11)),
                           block_rows=20, fanin=3, method=method)
            Ql, Rl = sk.tsqr(da.from_array(A, chunks=50), block_rows=20, fanin=3, method=method)
            got[scheduler] = Q[...], R, Ql.compute(), Rl
        assert_qr(Q[...], R, A, 1e-14, 1e-14)
        assert_qr(got[scheduler][2], Rl, A, 1e-14, 1e-14)
        np.testing.assert_allclose(R, Rl, atol=1e-13)
    for a, b in zip(got["threads"], got["sync"]):
        np.testing.assert_array_equal(a, b)


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




# --------------------------------------------------------------------------- which algorithm, how many passes
def _passes(caplog):
    """("cholesky", passes over A) or ("householder", None) from the last tsqr's log."""
    import re

    msgs = [r.getMessage() for r in caplog.records if r.name == "sketchla.linalg.tsqr"]
    done = [m for m in msgs if m.startswith("tsqr: ")][-1]
    m = re.search(r"Cholesky QR in (\d+) passes", done)
    return ("cholesky", int(m.group(1))) if m else ("householder", None)


@pytest.mark.parametrize("dtype,cond,with_out,expected", [
    (np.float32, 1.0, True, ("cholesky", 2)),      # κ₂ ≤ 10: float32 solve
    (np.float32, 1e3, False, ("cholesky", 2)),     # κ₂ ≤ 1e4: float64 solve, also lazily
    (np.float32, 1e5, True, ("cholesky", 3)),      # CholeskyQR2 with a float64 chain
    (np.float32, 1e5, False, ("householder", None)),  # a lazy Q never takes a chain
    (np.float64, 3.0, False, ("cholesky", 2)),
    (np.float64, 1e4, True, ("cholesky", 3)),
    (np.float64, 1e9, True, ("householder", None)),  # would need a shift: Householder instead
])
def test_auto_picks_cholesky_where_safe(rng, caplog, dtype, cond, with_out, expected):
    caplog.set_level("INFO", logger="sketchla.linalg")
    A = (ill_conditioned(rng, 900, 16, cond) if cond > 1 else rng.standard_normal((900, 16))).astype(dtype)
    Q, R = _run(A, "zarr->zarr" if with_out else "zarr->lazy", dtype, 100, None)
    assert _passes(caplog) == expected
    assert_qr(Q, R, A, 30 * eps(dtype), 30 * eps(dtype))


@pytest.mark.parametrize("dtype,cond,passes", [(np.float32, 1e8, 3), (np.float64, 1e8, 3), (np.float64, 1e12, 4)])
def test_cholesky_shifts_a_badly_conditioned_a(rng, caplog, dtype, cond, passes):
    """Beyond GRAM_COND the first factor is shifted (Fukaya et al. 2020), then CholeskyQR2 steps."""
    caplog.set_level("INFO", logger="sketchla.linalg")
    A = ill_conditioned(rng, 900, 16, cond, dtype)
    Q, R = _run(A, "zarr->zarr", dtype, 100, None, "cholesky")
    assert _passes(caplog) == ("cholesky", passes)
    assert any("shifted" in r.getMessage() for r in caplog.records)
    assert_qr(Q, R, A, 30 * eps(dtype), 30 * eps(dtype))


@pytest.mark.parametrize("kind", ["zarr->zarr", "dask->lazy"])
@pytest.mark.parametrize("rank", [0, 3])
def test_cholesky_refuses_a_rank_deficient_a(rng, kind, rank):
    A = low_rank(rng, 400, 10, rank) if rank else np.zeros((400, 10))
    with pytest.raises(ValueError, match=r"numerically rank deficient .* use method='householder' or 'auto'"):
        _run(A, kind, np.float64, 50, None, "cholesky")


class _Drift:
    """A Dask A whose blocks change in the last bit from the third evaluation of each on: a pass
    that does not see the numbers an earlier pass saw (as another BLAS or CPU kind would make)."""

    def __init__(self, A):
        import threading

        self.A, self.seen, self.lock = A, {}, threading.Lock()

    def __call__(self, block, block_info=None):
        i = block_info[0]["chunk-location"][0]
        with self.lock:
            self.seen[i] = self.seen.get(i, 0) + 1
            late = self.seen[i] > 2
        return np.nextafter(block, np.inf) if late else block

    def dask(self, chunks):
        return da.from_array(self.A, chunks=chunks).map_blocks(self, dtype=self.A.dtype)


def test_a_final_pass_with_other_bits_is_detected(rng, caplog):
    """κ₂ = 1e5 in float64 needs a CholeskyQR2 chain: the final pass recomputes Z from A and
    compares its checksum with the Gram pass's. Explicit "cholesky" raises; "auto" falls back."""
    caplog.set_level("INFO", logger="sketchla.linalg")
    A = ill_conditioned(rng, 400, 8, 1e5)
    with pytest.raises(sk.linalg.NotReproducibleError, match=r"row block \d recomputed with other bits"):
        sk.tsqr(_Drift(A).dask((100, 8)), out=empty_zarr(A.shape, np.float64), block_rows=100, method="cholesky")
    Q, R = sk.tsqr(_Drift(A).dask((100, 8)), out=empty_zarr(A.shape, np.float64), block_rows=100)
    assert _passes(caplog) == ("householder", None)
    assert any("recomputed with other bits" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert_qr(Q[...], R, A, 30 * eps(np.float64), 30 * eps(np.float64))


@pytest.mark.parametrize("method,cond,evaluations", [("householder", 1, 1), ("cholesky", 1, 2), ("auto", 1, 2),
                                                     ("auto", 1e4, 3), ("auto", 1e9, 2)])
def test_dask_a_evaluated_once_per_pass(rng, method, cond, evaluations):
    """A Dask A's graph is evaluated once per pass: Householder TSQR 1 (with out), Cholesky QR 2 or 3,
    auto's fallback 1 + 1 (its Gram pass, then Householder)."""
    import threading

    A = ill_conditioned(rng, 200, 6, cond) if cond > 1 else rng.standard_normal((200, 6))
    seen, lock = [], threading.Lock()

    def record(block, block_info=None):
        with lock:
            seen.append(block_info[0]["chunk-location"][0])
        return block

    Ad = da.from_array(A, chunks=(50, 6)).map_blocks(record, dtype=A.dtype)
    Q, R = sk.tsqr(Ad, out=empty_zarr(A.shape, np.float64), block_rows=50, method=method)
    assert sorted(seen) == sorted(list(range(4)) * evaluations)
    assert_qr(Q[...], R, A, 1e-14, 1e-14)


# --------------------------------------------------------------------------- range: subnormal and huge entries
def _extreme(rng, what, dtype, D=600, n=12):
    """Inputs at the ends of the dtype's range (issue 16, point 6)."""
    fi = np.finfo(dtype)
    G = rng.standard_normal((D, n))
    if what == "subnormal":  # every entry below the smallest normal number, ~14 bits left of 24 / 53
        A = G * float(fi.tiny) * 2.0**-10
    elif what == "subnormal column":  # normal entries beside a column of subnormal ones
        A = G.copy()
        A[:, 3] *= float(fi.tiny) / 64
    elif what == "huge":  # entries near the largest value, ‖A‖₂ still representable
        A = G / np.abs(G).max() * float(fi.max) / (4 * np.sqrt(D * n))
    else:  # mixed: one row block near the largest value, another subnormal
        A = G.copy()
        A[:100] *= float(fi.max) / (8 * np.sqrt(D * n) * np.abs(G[:100]).max())
        A[300:400] *= float(fi.tiny) / 64
    A = A.astype(dtype)
    assert np.isfinite(A).all()
    return A


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("what", ["subnormal", "subnormal column", "huge", "mixed"])
@pytest.mark.parametrize("kind", ["zarr->zarr", "dask->lazy"])
def test_extreme_magnitudes_keep_q_orthonormal(rng, recwarn, kind, what, dtype, method):
    """Subnormal and near-overflow inputs: Q as orthonormal as for N(0, 1) data, whatever the method
    (formerly "auto" lost 1e-5 on float32 subnormals: its A R⁻¹ used an R spoilt by underflow)."""
    A = _extreme(rng, what, dtype)
    if method == "cholesky" and what == "subnormal column":  # κ₂ ≈ 1e40: not Cholesky's business
        with pytest.raises(ValueError, match="rank deficient"):
            _run(A, kind, dtype, 100, 2, method)
        return
    Q, R = _run(A, kind, dtype, 100, 2, method)
    Q = np.asarray(Q, dtype=np.float64)
    orth = np.abs(Q.T @ Q - np.eye(A.shape[1])).max()
    assert orth <= 30 * eps(dtype), orth
    assert np.isfinite(R).all() and np.array_equal(R, np.triu(R)) and (np.diagonal(R) >= 0).all()
    # QR ≈ A to rounding — where R itself is subnormal, to the spacing of the subnormals
    A64 = A.astype(np.float64)
    err = np.abs(Q @ R.astype(np.float64) - A64).max()
    assert err <= 30 * eps(dtype) * np.abs(A64).max() + 4 * A.shape[1] * float(np.finfo(dtype).smallest_subnormal)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("method", METHODS)
def test_r_beyond_the_dtype_is_inf_with_a_warning(rng, method):
    """Entries near float32's largest value whose column norms are not representable: Q is still
    orthonormal, R holds inf and a RuntimeWarning says so."""
    A = (rng.standard_normal((400, 5)) * float(np.finfo(np.float32).max) / 8).clip(-3e38, 3e38).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="R overflows float32"):
        Q, R = _run(A, "zarr->zarr", np.float32, 100, None, method)
    Q = Q.astype(np.float64)
    assert np.abs(Q.T @ Q - np.eye(5)).max() <= 30 * eps(np.float32)
    assert np.isinf(R).any()


def test_bad_method(rng):
    with pytest.raises(ValueError, match=r"method must be one of \('auto', 'cholesky', 'householder'\), got 'qr'"):
        sk.tsqr(da.from_array(rng.standard_normal((20, 2))), method="qr")


@pytest.mark.parametrize("cond, product", [(1e5, True), (1e8, True), (1e12, False)])
def test_float32_final_pass_solves_once_by_the_product_where_safe(rng, caplog, cond, product):
    """A float32 A with a chain (κ₂ > 1e4) is finished by one float64 solve by R_k ⋯ R_0 where
    κ₂(R) ≤ PRODUCT_COND, with the same orthogonality target; beyond it the chain is recomputed."""
    caplog.set_level("INFO", logger="sketchla.linalg")
    A = _kappa_1e12(rng, np.float32) if cond == 1e12 else ill_conditioned(rng, 900, 16, cond, np.float32)
    Q, R = _run(A, "zarr->zarr", np.float32, 100, None, "cholesky")
    msgs = [r.getMessage() for r in caplog.records if "Cholesky QR in" in r.getMessage()]
    assert msgs and ("one solve by the product" in msgs[-1]) == product
    assert _passes(caplog)[1] >= 3
    assert_qr(Q, R, A, 1e-6, 30 * eps(np.float32) if cond < 1e12 else 1e-5)


@pytest.mark.parametrize("dtype, cond", [(np.float32, 1e5), (np.float64, 1e3), (np.float64, 1e9)])
def test_cholesky_factor_blocks_give_tsqrs_q(rng, dtype, cond):
    """``cholesky_factor`` + ``q_block`` per block (what overwrite_sketch writes) is tsqr(method="cholesky")'s
    Q bit for bit, and its state round-trips (saved and reloaded by a resumed run)."""
    from sketchla.linalg import CholeskyFactor, cholesky_factor

    A = ill_conditioned(rng, 900, 16, cond, dtype)
    Q, R = _run(A, "zarr->zarr", dtype, 100, None, "cholesky")
    f = cholesky_factor(to_zarr(A, chunks=(100, 16)), block_rows=100)
    f = CholeskyFactor.from_state(*f.state())
    blocks = [f.q_block(A[s:s + 100], i, np.dtype(dtype)) for i, s in enumerate(range(0, 900, 100))]
    np.testing.assert_array_equal(np.vstack(blocks), np.asarray(Q))
    np.testing.assert_allclose(np.ldexp(f.r, f.e).astype(dtype), R, rtol=1e-6 if dtype == np.float32 else 1e-12)


def test_cholesky_factor_refuses_what_cholesky_qr_refuses(rng):
    from sketchla.linalg import cholesky_factor

    with pytest.raises(ValueError, match="rank deficient"):
        cholesky_factor(np.zeros((200, 5)), block_rows=50)
    with pytest.raises(ValueError, match="tall"):
        cholesky_factor(np.ones((3, 5)), block_rows=50)
    with pytest.raises(ValueError, match=r"block_rows must be >= 1, got 0 \(rows per block of A\)"):
        cholesky_factor(np.ones((30, 5)), block_rows=0)
    with pytest.raises(TypeError, match="block_rows must be a positive int"):
        cholesky_factor(np.ones((30, 5)), block_rows=2.5)
