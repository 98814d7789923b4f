"""Thin streamed products: inner (Aᵀ B, Aᵀ [B1, B2]) and matmul (Q U → Zarr or lazy)."""
import dask.array as da
import numpy as np
import pytest
import zarr

import sketchla as sk
from sketchla.linalg import inner, matmul

from _linalg_helpers import empty_zarr, eps, to_zarr


def _as(x, kind):
    if kind == "zarr":
        return to_zarr(x, chunks=(29,) + x.shape[1:])
    if kind == "dask":
        return da.from_array(x, chunks=(61,) + x.shape[1:])
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_kind,b_kind", [("zarr", "zarr"), ("dask", "numpy"), ("zarr", "dask")])
@pytest.mark.parametrize("block_rows", [None, 7, 64])
def test_inner_matches_numpy(rng, dtype, a_kind, b_kind, block_rows):
    A = rng.standard_normal((230, 9)).astype(dtype)
    B = rng.standard_normal((230, 4)).astype(dtype)
    G = inner(_as(A, a_kind), _as(B, b_kind), block_rows=block_rows)
    assert G.dtype == np.float64 and G.shape == (9, 4)
    ref = A.astype(np.float64).T @ B.astype(np.float64)
    # per-block products in the data's dtype, the sum over blocks in float64
    np.testing.assert_allclose(G, ref, rtol=0, atol=50 * eps(dtype) * np.abs(A).max() * np.abs(B).max()
                               * np.sqrt(230))


def test_inner_many_in_one_pass(rng):
    A = rng.standard_normal((300, 6)).astype(np.float32)
    B1 = rng.standard_normal((300, 3)).astype(np.float32)
    B2 = rng.standard_normal((300, 8))
    b3 = rng.standard_normal(300)
    G1, G2, g3 = inner(to_zarr(A), [to_zarr(B1), da.from_array(B2, chunks=77), b3], block_rows=40)
    np.testing.assert_allclose(G1, A.T.astype(np.float64) @ B1, atol=1e-4)
    np.testing.assert_allclose(G2, A.T.astype(np.float64) @ B2, atol=1e-10)
    assert g3.shape == (6,)
    np.testing.assert_allclose(g3, A.T.astype(np.float64) @ b3, atol=1e-10)
    # a tuple works as a list; a one-element list gives a one-element list
    assert len(inner(to_zarr(A), (B1, B2))) == 2
    (only,) = inner(to_zarr(A), [B1])
    np.testing.assert_allclose(only, G1, atol=1e-4)


def test_inner_single_pass_over_a(rng, monkeypatch):
    """Aᵀ[B1, B2] reads each block of A once (A may be an expensive generated matrix)."""
    from sketchla.linalg import _blocks

    reads = []
    real = _blocks._ZarrSlice.read

    def spy(self):
        reads.append((id(self.array), self.start))
        return real(self)

    monkeypatch.setattr(_blocks._ZarrSlice, "read", spy)
    A = to_zarr(rng.standard_normal((200, 5)))
    inner(A, [rng.standard_normal((200, 2)), rng.standard_normal((200, 3))], block_rows=50)
    a_reads = [r for r in reads if r[0] == id(A)]
    assert sorted(s for _, s in a_reads) == [0, 50, 100, 150]


def test_inner_compute_dtype_float64(rng):
    A = rng.standard_normal((500, 5)).astype(np.float32)
    G = inner(to_zarr(A), to_zarr(A), compute_dtype="float64", block_rows=100)
    np.testing.assert_allclose(G, A.T.astype(np.float64) @ A, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("q_kind", ["zarr", "dask"])
@pytest.mark.parametrize("block_rows", [None, 13, 100])
def test_matmul_to_zarr(rng, dtype, q_kind, block_rows):
    Q = rng.standard_normal((210, 7)).astype(dtype)
    U = rng.standard_normal((7, 3))
    out = empty_zarr((210, 3), dtype, chunks=(block_rows or 210, 3))
    res = matmul(_as(Q, q_kind), U, out=out, block_rows=block_rows)
    assert res is out
    np.testing.assert_allclose(out[...], Q @ U.astype(dtype), rtol=0,
                               atol=30 * eps(dtype) * np.abs(Q @ U).max())


def test_matmul_lazy_and_path(rng, tmp_path):
    Q = rng.standard_normal((150, 5))
    U = rng.standard_normal((5, 4))
    lazy = matmul(to_zarr(Q), U, block_rows=40)
    assert isinstance(lazy, da.Array) and lazy.chunks == ((40, 40, 40, 30), (4,))
    np.testing.assert_allclose(lazy.compute(), Q @ U, atol=1e-13)
    res = matmul(da.from_array(Q, chunks=50), U, out=str(tmp_path / "qu.zarr"), block_rows=40)
    assert isinstance(res, zarr.Array) and res.chunks == (40, 4)
    np.testing.assert_allclose(zarr.open_array(str(tmp_path / "qu.zarr"))[...], Q @ U, atol=1e-13)


def test_matmul_out_chunks_misaligned(rng):
    """out chunks of 16 rows, block_rows 50: blocks are aligned to whole chunks of out."""
    Q = rng.standard_normal((333, 6))
    U = rng.standard_normal((6, 6))
    out = empty_zarr((333, 6), np.float64, chunks=(16, 6))
    matmul(to_zarr(Q), U, out=out, block_rows=50)
    np.testing.assert_allclose(out[...], Q @ U, atol=1e-13)


def test_tsqr_then_matmul_then_inner(rng):
    """The decompositions' pattern: Q ← tsqr(Y); V = Q U into Zarr; Vᵀ V = Uᵀ U."""
    Y = rng.standard_normal((400, 10)).astype(np.float32)
    Q, R = sk.tsqr(to_zarr(Y), out=empty_zarr(Y.shape, np.float32, chunks=(64, 10)))
    U, _ = np.linalg.qr(rng.standard_normal((10, 4)))
    V = matmul(Q, U.astype(np.float32), out=empty_zarr((400, 4), np.float32, chunks=(64, 4)))
    np.testing.assert_allclose(V[...], Q[...] @ U.astype(np.float32), atol=1e-6)
    np.testing.assert_allclose(inner(V, V), np.eye(4), atol=2e-6)
    G, H = inner(Q, [V, to_zarr(Y)])
    np.testing.assert_allclose(G, U, atol=2e-6)
    np.testing.assert_allclose(H, R, atol=1e-4 * np.abs(R).max())


def test_matmul_to_a_path_writes_every_chunk(rng, tmp_path):
    """A result block of zeros (the fill value) still gets its chunk file, so a
    missing file always means a lost chunk, never a skipped one."""
    Q = rng.standard_normal((120, 5))
    U = np.zeros((5, 3))
    out = matmul(to_zarr(Q, chunks=(40, 5)), U, out=str(tmp_path / "qu.zarr"), block_rows=40)
    np.testing.assert_array_equal(out[...], 0.0)
    files = sorted(p.name for p in (tmp_path / "qu.zarr" / "c").iterdir())
    assert files == ["0", "1", "2"]


# --------------------------------------------------------------------------- inner_products: several pairs, generated factors
def _tm(D, n, name, dtype="float64"):
    from sketchla.random import TestMatrix

    return TestMatrix((D, n), seed=5, name=name, dtype=dtype)


@pytest.mark.parametrize("block_rows", [None, 64, 100, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inner_products_matches_numpy(rng, dtype, block_rows):
    """Generated, column-view, Zarr and Dask left factors; Zarr, Dask, NumPy and 1-D right ones."""
    D = 300
    ups, omg = _tm(D, 9, "ups", dtype), _tm(D, 12, "omg", dtype)
    L3 = rng.standard_normal((D, 4)).astype(dtype)
    Y = rng.standard_normal((D, 7)).astype(dtype)
    Q = rng.standard_normal((D, 5)).astype(dtype)
    v = rng.standard_normal(D)
    lefts = [ups, omg.columns(3, 12), to_zarr(L3), da.from_array(L3, chunks=71)]
    rights = [to_zarr(Y, chunks=(50, 7)), da.from_array(Q, chunks=(80, 5)), v, Q]
    pairs = [(0, 0), (0, 1), (1, 1), (2, 2), (3, 3), (1, 0)]
    got = sk.linalg.inner_products(lefts, rights, pairs, block_rows=block_rows)
    dense_l = [ups.toarray(), omg.toarray()[:, 3:], L3, L3]
    dense_r = [Y, Q, v, Q]
    for (j, k), g in zip(pairs, got):
        ref = dense_l[j].astype(np.float64).T @ np.asarray(dense_r[k], dtype=np.float64)
        assert g.dtype == np.float64 and g.shape == ref.shape
        scale = np.abs(dense_l[j]).max() * np.abs(dense_r[k]).max() * np.sqrt(D)
        np.testing.assert_allclose(g, ref, rtol=0, atol=50 * eps(np.result_type(dtype, dense_r[k].dtype)) * scale)


def test_inner_products_one_pass_each_block_drawn_and_read_once(rng, monkeypatch):
    """Each row block of each stored factor is read once and each block of each generated factor
    drawn once, however many products use it — SEIGH's thin products."""
    from sketchla.linalg import _blocks
    from sketchla.random import TestMatrix

    reads, draws = [], []
    real_read, real_block = _blocks._ZarrSlice.read, TestMatrix.block

    def spy_read(self):
        reads.append((id(self.array), self.start))
        return real_read(self)

    def spy_block(self, rows=slice(None), cols=slice(None), xp=None):
        draws.append((self.name, rows.start, rows.stop, cols.start, cols.stop))
        return real_block(self, rows, cols, xp)

    monkeypatch.setattr(_blocks._ZarrSlice, "read", spy_read)
    monkeypatch.setattr(TestMatrix, "block", spy_block)
    D = 400
    Y, Q = to_zarr(rng.standard_normal((D, 10)), chunks=(100, 10)), to_zarr(rng.standard_normal((D, 6)), chunks=(100, 6))
    ups, omg = _tm(D, 10, "upsilon"), _tm(D, 12, "omega")
    M, UQ, OQ = sk.linalg.inner_products([ups, omg.columns(2, 12)], [Y, Q], [(0, 0), (0, 1), (1, 1)], block_rows=100)
    assert sorted(s for i, s in reads if i == id(Y)) == [0, 100, 200, 300]
    assert sorted(s for i, s in reads if i == id(Q)) == [0, 100, 200, 300]
    assert sorted(d for d in draws if d[0] == "upsilon") == [("upsilon", r, r + 100, 0, 10) for r in (0, 100, 200, 300)]
    assert sorted(d for d in draws if d[0] == "omega") == [("omega", r, r + 100, 2, 12) for r in (0, 100, 200, 300)]
    np.testing.assert_allclose(OQ, omg.toarray()[:, 2:].T @ Q[...], atol=1e-12)
    np.testing.assert_allclose(M, ups.toarray().T @ Y[...], atol=1e-12)
    np.testing.assert_allclose(UQ, ups.toarray().T @ Q[...], atol=1e-12)


def test_inner_products_errors(rng):
    D = 50
    Y = to_zarr(rng.standard_normal((D, 3)))
    ups = _tm(D, 4, "ups")
    with pytest.raises(ValueError, match="at least one left and one right"):
        sk.linalg.inner_products([], [Y])
    with pytest.raises(ValueError, match=r"pairs holds \(0, 2\); there are 1 left and 1 right factors"):
        sk.linalg.inner_products([ups], [Y], [(0, 2)])
    with pytest.raises(ValueError, match="pairs is empty"):
        sk.linalg.inner_products([ups], [Y], [])
    with pytest.raises(ValueError, match=r"rights\[0\] has 49 rows but lefts\[0\] has 50"):
        sk.linalg.inner_products([ups], [rng.standard_normal((49, 2))])
    with pytest.raises(TypeError, match=r"rights\[0\] must be a zarr.Array"):
        sk.linalg.inner_products([Y], [ups])  # a generated factor only on the left
    with pytest.raises(TypeError, match=r"lefts\[0\] must be .* a generated factor"):
        sk.linalg.inner_products(["x"], [Y])
    bad = rng.standard_normal((D, 2))
    bad[7, 1] = np.inf
    with pytest.raises(ValueError, match=r"rights\[1\] contains NaN or Inf in row block 0"):
        sk.linalg.inner_products([ups], [Y, bad])


def test_test_matrix_columns_are_the_parents(rng):
    omg = _tm(300, 10, "omega")
    view = omg.columns(4, 10)
    assert view.shape == (300, 6) and view.dtype == omg.dtype and view.ndim == 2
    np.testing.assert_array_equal(view.block(slice(20, 90), slice(1, 5)), omg.block(slice(20, 90), slice(5, 9)))
    np.testing.assert_array_equal(view.block(), omg.toarray()[:, 4:])
    from dask.base import tokenize

    assert tokenize(view) == tokenize(omg.columns(4, 10)) != tokenize(omg.columns(3, 10))
    with pytest.raises(ValueError, match="out of range|step"):
        omg.columns(4, 10).block(slice(0, 5), slice(0, 9, 2))
