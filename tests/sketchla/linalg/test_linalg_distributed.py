"""The streaming routines under a distributed Client (2 worker processes, 1 thread each)."""
import dask
import dask.array as da
import numpy as np
import pytest
import zarr

import sketchla as sk
from sketchla.linalg import inner, matmul

from _linalg_helpers import assert_qr, empty_zarr, eps, low_rank, to_zarr

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow  # real Dask clusters


@pytest.fixture
def client(cluster_client):
    """The session's 2-process LocalCluster (tests/conftest.py)."""
    return cluster_client


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tsqr_zarr_to_zarr(client, rng, tmp_path, dtype):
    """Blocks read and Q written by the worker processes (on-disk Zarr)."""
    A = low_rank(rng, 500, 16, 4, dtype)  # rank-deficient on top
    a = to_zarr(A, chunks=(40, 16), path=tmp_path / "a.zarr")
    Q, R = sk.tsqr(a, out=str(tmp_path / "q.zarr"), block_rows=40, fanin=2, client=client)
    assert_qr(zarr.open_array(str(tmp_path / "q.zarr"))[...], R, A, 30 * eps(dtype), 30 * eps(dtype))


def test_tsqr_dask_lazy_q(client, rng):
    A = rng.standard_normal((420, 9))
    Q, R = sk.tsqr(da.from_array(A, chunks=(70, 9)), block_rows=35, fanin=3, client=client)
    (q,) = dask.compute(Q, scheduler=client.get)
    assert_qr(q, R, A, 1e-14, 1e-14)
    # the memory-store input is pickled to the workers: reading it is fine
    Q2, R2 = sk.tsqr(to_zarr(A), block_rows=35, client=client)
    np.testing.assert_allclose(R2, R, atol=1e-13)


def test_lstsq_inner_matmul(client, rng, tmp_path):
    A = rng.standard_normal((300, 8))
    B = rng.standard_normal((300, 3))
    a = to_zarr(A, path=tmp_path / "a.zarr")
    X = sk.lstsq(a, B, block_rows=30, fanin=2, client=client)
    np.testing.assert_allclose(X, np.linalg.lstsq(A, B, rcond=None)[0], atol=1e-12)
    x = sk.lstsq(a, da.from_array(B[:, 0], chunks=50), block_rows=30, client=client)
    np.testing.assert_allclose(x, X[:, 0], atol=1e-12)
    G1, G2 = inner(a, [B, a], block_rows=45, client=client)
    np.testing.assert_allclose(G1, A.T @ B, atol=1e-12)
    np.testing.assert_allclose(G2, A.T @ A, atol=1e-12)
    U = rng.standard_normal((8, 2))
    out = empty_zarr((300, 2), np.float64, chunks=(30, 2), path=tmp_path / "qu.zarr")
    matmul(a, U, out=out, client=client)
    np.testing.assert_allclose(out[...], A @ U, atol=1e-13)


def test_errors_cross_the_process_boundary(client, rng, tmp_path):
    A = rng.standard_normal((200, 5))
    A[120, 2] = np.nan
    a = to_zarr(A, path=tmp_path / "a.zarr")
    with pytest.raises(ValueError, match=r"A contains NaN or Inf in row block 3 \(rows 120:160\)"):
        sk.tsqr(a, out=str(tmp_path / "q.zarr"), block_rows=40, client=client)


def test_memory_store_out_refused(client, rng):
    """Tasks get pickled copies of a MemoryStore (writes would be lost): refused up front."""
    A = to_zarr(rng.standard_normal((100, 4)))
    msg = "out is a Zarr array in a MemoryStore, which the tasks of a distributed client"
    with pytest.raises(ValueError, match=msg):
        sk.tsqr(A, out=empty_zarr((100, 4), np.float64), client=client)
    with pytest.raises(ValueError, match=msg):
        matmul(A, np.eye(4), out=empty_zarr((100, 4), np.float64), client=client)


def test_default_in_process_client(rng, tmp_path):
    """A default Client (here with in-process workers) is used when client=None."""
    A = rng.standard_normal((240, 7))
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as c:
        assert dask.base.get_scheduler().__self__ is c
        with pytest.raises(ValueError, match="out is a Zarr array in a MemoryStore"):
            sk.tsqr(to_zarr(A), out=empty_zarr(A.shape, np.float64))
        out = empty_zarr(A.shape, np.float64, chunks=(30, 7), path=tmp_path / "q.zarr")
        Q, R = sk.tsqr(to_zarr(A), out=out, block_rows=30, fanin=2)
        assert_qr(out[...], R, A, 1e-14, 1e-14)
        X = sk.lstsq(to_zarr(A), A[:, :2], block_rows=30)
        np.testing.assert_allclose(X, np.eye(7)[:, :2], atol=1e-12)
