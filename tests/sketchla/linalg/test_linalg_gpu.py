"""The same checks with CuPy blocks (marked ``gpu``: skipped without CuPy and a CUDA device).

Two ways blocks reach the GPU: a Dask array whose blocks are CuPy arrays, and
a Zarr array read straight into CuPy with ``gpu=True`` (zarr's GPU buffers).
"""
import dask.array as da
import numpy as np
import pytest

import sketchla as sk
from sketchla.linalg import inner, matmul

from _linalg_helpers import assert_qr, empty_zarr, eps, ill_conditioned, low_rank, to_zarr

pytestmark = pytest.mark.gpu


@pytest.fixture
def cp():
    return pytest.importorskip("cupy")


def _cupy_dask(cp, A, rows=64):
    return da.from_array(A, chunks=(rows, A.shape[1])).map_blocks(cp.asarray)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block_rows,fanin", [(None, None), (40, 2), (7, 3)])
def test_tsqr_cupy_dask_lazy(cp, rng, dtype, block_rows, fanin):
    A = rng.standard_normal((300, 12)).astype(dtype)
    Q, R = sk.tsqr(_cupy_dask(cp, A), block_rows=block_rows, fanin=fanin)
    assert isinstance(R, cp.ndarray) and isinstance(Q._meta, cp.ndarray)
    q = Q.compute()
    assert isinstance(q, cp.ndarray)
    assert_qr(cp.asnumpy(q), cp.asnumpy(R), A, 30 * eps(dtype), 30 * eps(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tsqr_zarr_read_into_cupy(cp, rng, dtype):
    A = ill_conditioned(rng, 400, 16, 1e12, dtype)
    out = empty_zarr(A.shape, dtype, chunks=(50, 16))
    Q, R = sk.tsqr(to_zarr(A, chunks=(50, 16)), out=out, block_rows=50, fanin=2, gpu=True)
    assert isinstance(R, cp.ndarray)
    assert_qr(np.asarray(out[...]), cp.asnumpy(R), A, 30 * eps(dtype), 30 * eps(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cond,lazy", [(1.0, True), (1e4, False), (1e10, False)])
def test_tsqr_cholesky_cupy(cp, rng, dtype, cond, lazy):
    """Cholesky QR on CuPy blocks: float64 Grams, chains of solves checked by their checksums,
    a shifted first step; subnormal float32 entries scaled like on the host."""
    A = ill_conditioned(rng, 600, 16, cond, dtype) if cond > 1 else rng.standard_normal((600, 16)).astype(dtype)
    if lazy:
        Q, R = sk.tsqr(_cupy_dask(cp, A), block_rows=100, method="cholesky")
        q = cp.asnumpy(Q.compute())
    else:
        out = empty_zarr(A.shape, dtype, chunks=(100, 16))
        Q, R = sk.tsqr(to_zarr(A, chunks=(100, 16)), out=out, block_rows=100, gpu=True, method="cholesky")
        q = np.asarray(out[...])
    assert isinstance(R, cp.ndarray)
    assert_qr(q, cp.asnumpy(R), A, 30 * eps(dtype), 30 * eps(dtype))
    tiny = (rng.standard_normal((600, 16)) * float(np.finfo(np.float32).tiny) * 2.0**-10).astype(np.float32)
    Q, R = sk.tsqr(_cupy_dask(cp, tiny, 100), block_rows=100)
    q = cp.asnumpy(Q.compute()).astype(np.float64)
    assert np.abs(q.T @ q - np.eye(16)).max() <= 30 * eps(np.float32)


def test_inner_products_generated_on_cupy(cp, rng):
    """Generated left factors are drawn on the host and moved to the device of the stored ones."""
    from sketchla.random import TestMatrix

    D = 300
    ups = TestMatrix((D, 9), seed=1, name="upsilon", dtype="float32")
    omg = TestMatrix((D, 11), seed=1, name="omega", dtype="float32")
    Y = rng.standard_normal((D, 6)).astype(np.float32)
    Q = rng.standard_normal((D, 4)).astype(np.float32)
    M, UQ, OQ = sk.linalg.inner_products([ups, omg.columns(2, 11)], [to_zarr(Y), _cupy_dask(cp, Q)],
                                         [(0, 0), (0, 1), (1, 1)], block_rows=100, gpu=True)
    assert isinstance(M, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(M), ups.toarray().T.astype(np.float64) @ Y, atol=1e-3)
    np.testing.assert_allclose(cp.asnumpy(OQ), omg.toarray()[:, 2:].T.astype(np.float64) @ Q, atol=1e-3)


def test_tsqr_rank_deficient_cupy(cp, rng):
    A = low_rank(rng, 500, 30, 2, np.float32)
    Q, R = sk.tsqr(_cupy_dask(cp, A), block_rows=45, fanin=2)
    assert_qr(cp.asnumpy(Q.compute()), cp.asnumpy(R), A, 30 * eps(np.float32), 30 * eps(np.float32))


def test_nonfinite_cupy_names_block(cp, rng):
    A = rng.standard_normal((200, 5))
    A[130, 1] = np.nan
    with pytest.raises(ValueError, match=r"A contains NaN or Inf in row block 3 \(rows 120:160\)"):
        sk.tsqr(_cupy_dask(cp, A), block_rows=40)


def test_lstsq_inner_matmul_cupy(cp, rng):
    A = rng.standard_normal((300, 8))
    B = rng.standard_normal((300, 3))
    X = sk.lstsq(_cupy_dask(cp, A), cp.asarray(B), block_rows=30, fanin=2)
    assert isinstance(X, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(X), np.linalg.lstsq(A, B, rcond=None)[0], atol=1e-10)
    x = sk.lstsq(to_zarr(A), to_zarr(B[:, 0]), block_rows=30, gpu=True)
    np.testing.assert_allclose(cp.asnumpy(x), cp.asnumpy(X[:, 0]), atol=1e-10)
    G1, G2 = inner(_cupy_dask(cp, A), [cp.asarray(B), _cupy_dask(cp, A)], block_rows=45)
    np.testing.assert_allclose(cp.asnumpy(G1), A.T @ B, atol=1e-10)
    np.testing.assert_allclose(cp.asnumpy(G2), A.T @ A, atol=1e-10)
    U = rng.standard_normal((8, 2))
    out = empty_zarr((300, 2), np.float64, chunks=(30, 2))
    matmul(_cupy_dask(cp, A), cp.asarray(U), out=out)
    np.testing.assert_allclose(out[...], A @ U, atol=1e-12)
    lazy = matmul(to_zarr(A), U, gpu=True, block_rows=64)
    np.testing.assert_allclose(cp.asnumpy(lazy.compute()), A @ U, atol=1e-12)
