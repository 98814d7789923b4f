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
