"""Bad input to tsqr / lstsq / inner / matmul: clear errors naming the argument (issue 3)."""
import dask.array as da
import numpy as np
import pytest
import zarr

import sketchla as sk
from sketchla.linalg import _blocks, inner, matmul

from _linalg_helpers import empty_zarr, to_zarr


@pytest.fixture
def A(rng):
    return rng.standard_normal((100, 10))


@pytest.fixture
def no_reads(monkeypatch):
    """Fail if any block of any Zarr input is read (validation must come first)."""
    def boom(self):
        raise AssertionError("a block was read before the arguments were validated")

    monkeypatch.setattr(_blocks._ZarrSlice, "read", boom)


# --------------------------------------------------------------------------- tsqr: A
def test_wide_a(A):
    with pytest.raises(ValueError, match=r"A must be tall \(D >= n\), got shape \(5, 10\)"):
        sk.tsqr(to_zarr(A[:5]))
    with pytest.raises(ValueError, match="A must be tall"):
        sk.tsqr(da.from_array(A[:9]))


@pytest.mark.parametrize("shape", [(100,), (10, 10, 1)])
def test_a_not_2d(rng, shape):
    x = rng.standard_normal(shape)
    with pytest.raises(ValueError, match=r"A must be 2-D \(D×n\), got an array with shape"):
        sk.tsqr(to_zarr(x, chunks=shape))
    with pytest.raises(ValueError, match="A must be 2-D"):
        sk.tsqr(da.from_array(x))


@pytest.mark.parametrize("bad", [[[1.0, 2.0]], None, "A.zarr"])
def test_a_wrong_type(bad):
    with pytest.raises(TypeError, match=r"A must be a zarr.Array or a dask.array.Array \(or a NumPy/CuPy array\), got"):
        sk.tsqr(bad)


@pytest.mark.parametrize("dtype", ["int32", "complex128", "float16"])
def test_a_bad_dtype(dtype):
    with pytest.raises(ValueError, match=rf"A.dtype={dtype} is not supported"):
        sk.tsqr(da.zeros((20, 3), dtype=dtype))


def test_a_empty():
    with pytest.raises(ValueError, match=r"A must be non-empty, got shape \(20, 0\)"):
        sk.tsqr(da.zeros((20, 0)))


def test_a_unknown_chunk_sizes(A):
    x = da.from_array(A, chunks=20)
    x = x[x[:, 0] > 0]
    with pytest.raises(ValueError, match=r"A has unknown shape .*compute_chunk_sizes"):
        sk.tsqr(x)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("lazy", [False, True])
def test_nonfinite_zarr_names_block(A, value, lazy):
    A[57, 3] = value
    out = None if lazy else empty_zarr(A.shape, np.float64, chunks=(10, 10))
    with pytest.raises(ValueError, match=r"A contains NaN or Inf in row block 5 \(rows 50:60\)"):
        sk.tsqr(to_zarr(A), out=out, block_rows=10)


def test_nonfinite_dask_names_block(A):
    A[99, 0] = np.nan
    with pytest.raises(ValueError, match=r"A contains NaN or Inf in row block 3 \(rows 75:100\)"):
        sk.tsqr(da.from_array(A, chunks=30), block_rows=25)


def test_check_finite_false_skips_the_check(A):
    A[3, 3] = np.nan
    Q, R = sk.tsqr(da.from_array(A), block_rows=50, check_finite=False)
    assert np.isnan(R).any()


@pytest.mark.parametrize("block_rows,exc,msg", [
    (0, ValueError, "block_rows must be >= 1, got 0"),
    (-5, ValueError, "block_rows must be >= 1"),
    (2.5, TypeError, "block_rows must be a positive int or None, got 2.5"),
    (True, TypeError, "block_rows must be a positive int"),
])
def test_bad_block_rows(A, block_rows, exc, msg):
    with pytest.raises(exc, match=msg):
        sk.tsqr(to_zarr(A), block_rows=block_rows)


@pytest.mark.parametrize("fanin", [1, 0, 2.0, True])
def test_bad_fanin(A, fanin):
    with pytest.raises(ValueError, match=r"fanin must be an int >= 2, got"):
        sk.tsqr(to_zarr(A), fanin=fanin)


# --------------------------------------------------------------------------- tsqr: out
def test_out_read_only_array(A, tmp_path, no_reads):
    empty_zarr(A.shape, np.float64, path=tmp_path / "q.zarr")
    ro = zarr.open_array(str(tmp_path / "q.zarr"), mode="r")
    with pytest.raises(ValueError, match="out is opened read-only; open it with mode='r\\+'"):
        sk.tsqr(to_zarr(A), out=ro)


def test_out_read_only_store(A, tmp_path, no_reads):
    empty_zarr(A.shape, np.float64, path=tmp_path / "q.zarr")
    store = zarr.storage.LocalStore(str(tmp_path / "q.zarr"), read_only=True)
    with pytest.raises(ValueError, match="out is opened read-only"):
        sk.tsqr(to_zarr(A), out=zarr.open_array(store))


def test_out_wrong_shape(A, no_reads):
    with pytest.raises(ValueError, match=r"out has shape \(100, 9\), expected \(100, 10\)"):
        sk.tsqr(to_zarr(A), out=empty_zarr((100, 9), np.float64))
    with pytest.raises(ValueError, match=r"out has shape \(10, 100\), expected \(100, 10\)"):
        sk.tsqr(to_zarr(A), out=empty_zarr((10, 100), np.float64))


def test_out_bad_dtype(A, no_reads):
    with pytest.raises(ValueError, match="out.dtype=int32 is not supported"):
        sk.tsqr(to_zarr(A), out=empty_zarr(A.shape, np.int32))
    with pytest.raises(ValueError, match=r"out.dtype=float32 would lose the precision of the "
                                         r"float64 result.*dtype='float32'"):
        sk.tsqr(to_zarr(A), out=empty_zarr(A.shape, np.float32))
    with pytest.raises(ValueError, match="out.dtype=float64 does not match dtype=float32"):
        sk.tsqr(to_zarr(A), out=empty_zarr(A.shape, np.float64), dtype="float32")
    with pytest.raises(ValueError, match="dtype=int64 is not supported"):
        sk.tsqr(to_zarr(A), dtype="int64")


def test_out_wrong_type(A, no_reads):
    with pytest.raises(TypeError, match="out must be None, a path or a zarr.Array, got ndarray"):
        sk.tsqr(to_zarr(A), out=np.empty(A.shape))


def test_out_path_not_zarr(A, tmp_path, no_reads):
    (tmp_path / "file.txt").write_text("not a zarr array")
    with pytest.raises(ValueError, match=r"out='.*file.txt' exists and is not a writable Zarr array"):
        sk.tsqr(to_zarr(A), out=tmp_path / "file.txt")
    with pytest.raises(ValueError, match=r"cannot create out at '.*file.txt/q.zarr'"):
        sk.tsqr(to_zarr(A), out=str(tmp_path / "file.txt" / "q.zarr"))


def test_out_path_existing_wrong_shape(A, tmp_path, no_reads):
    empty_zarr((50, 10), np.float64, path=tmp_path / "q.zarr")
    with pytest.raises(ValueError, match=r"out has shape \(50, 10\), expected \(100, 10\)"):
        sk.tsqr(to_zarr(A), out=tmp_path / "q.zarr")


# --------------------------------------------------------------------------- lstsq
def test_lstsq_mismatched_rows(A, no_reads):
    with pytest.raises(ValueError, match="B has 99 rows but A has 100; they must have the same"):
        sk.lstsq(to_zarr(A), np.ones(99))
    with pytest.raises(ValueError, match="B has 101 rows but A has 100"):
        sk.lstsq(to_zarr(A), to_zarr(np.ones((101, 2))))


def test_lstsq_bad_shapes(A, rng):
    with pytest.raises(ValueError, match=r"B must be 1-D or 2-D, got an array with shape \(100, 2, 2\)"):
        sk.lstsq(to_zarr(A), np.ones((100, 2, 2)))
    with pytest.raises(ValueError, match=r"A must be 2-D"):
        sk.lstsq(da.from_array(A[:, 0]), np.ones(100))
    with pytest.raises(ValueError, match=r"A must be tall \(D >= n\), got shape \(5, 10\)"):
        sk.lstsq(to_zarr(A[:5]), np.ones(5))
    with pytest.raises(TypeError, match="B must be a zarr.Array or a dask.array.Array "
                                        r"\(or a NumPy/CuPy array\), got list"):
        sk.lstsq(to_zarr(A), [1.0] * 100)
    with pytest.raises(TypeError, match=r"A must be a zarr.Array or a dask.array.Array \(or a NumPy/CuPy array\), got list"):
        sk.lstsq(A.tolist(), np.ones(100))


@pytest.mark.parametrize("which", ["A", "B"])
def test_lstsq_nonfinite_names_array_and_block(A, rng, which):
    B = rng.standard_normal((100, 2))
    (A if which == "A" else B)[42, 1] = np.inf
    with pytest.raises(ValueError, match=rf"{which} contains NaN or Inf in row block 2 \(rows 40:60\)"):
        sk.lstsq(to_zarr(A), to_zarr(B), block_rows=20)


def test_lstsq_bad_b_dtype(A):
    with pytest.raises(ValueError, match="B.dtype=int64 is not supported"):
        sk.lstsq(to_zarr(A), np.ones(100, dtype=np.int64))


# --------------------------------------------------------------------------- inner / matmul
def test_inner_errors(A, rng):
    with pytest.raises(ValueError, match="B has 99 rows but A has 100"):
        inner(to_zarr(A), np.ones((99, 2)))
    with pytest.raises(ValueError, match=r"B\[1\] has 98 rows but A has 100"):
        inner(to_zarr(A), [np.ones((100, 2)), np.ones((98, 2))])
    with pytest.raises(ValueError, match="B is an empty list; give at least one array"):
        inner(to_zarr(A), [])
    with pytest.raises(TypeError, match=r"B\[0\] must be a zarr.Array"):
        inner(to_zarr(A), ["x"])
    B = rng.standard_normal((100, 2))
    B[5, 0] = np.nan
    with pytest.raises(ValueError, match=r"B\[1\] contains NaN or Inf in row block 0 \(rows 0:50\)"):
        inner(to_zarr(A), [np.ones((100, 1)), B], block_rows=50)


def test_matmul_errors(A, rng, tmp_path, no_reads):
    Q = to_zarr(A)
    with pytest.raises(TypeError, match="U must be an in-memory NumPy/CuPy array, got list"):
        matmul(Q, [[1.0]])
    with pytest.raises(TypeError, match="U must be an in-memory NumPy/CuPy array, got Array"):
        matmul(Q, da.ones((10, 2)))
    with pytest.raises(ValueError, match=r"U must be 2-D \(n×m\), got shape \(10,\)"):
        matmul(Q, np.ones(10))
    with pytest.raises(ValueError, match="U has 9 rows but Q has 10 columns; U must be 10×m"):
        matmul(Q, np.ones((9, 2)))
    U = np.ones((10, 2))
    U[1, 1] = np.nan
    with pytest.raises(ValueError, match="U contains NaN or Inf"):
        matmul(Q, U)
    with pytest.raises(ValueError, match=r"out has shape \(100, 3\), expected \(100, 2\)"):
        matmul(Q, np.ones((10, 2)), out=empty_zarr((100, 3), np.float64))
    empty_zarr((100, 2), np.float64, path=tmp_path / "o.zarr")
    with pytest.raises(ValueError, match="out is opened read-only"):
        matmul(Q, np.ones((10, 2)), out=zarr.open_array(str(tmp_path / "o.zarr"), mode="r"))
    with pytest.raises(ValueError, match="U.dtype=int64 is not supported"):
        matmul(Q, np.ones((10, 2), dtype=np.int64))


def test_in_memory_a_gives_the_zarr_result(rng):
    """tsqr/lstsq/inner/matmul take a NumPy A as they take a NumPy B (issue 20), with the same numbers."""
    A = rng.standard_normal((300, 7))
    B = rng.standard_normal((300, 2))
    U = rng.standard_normal((7, 3))
    Qm, Rm = sk.tsqr(A, block_rows=64)
    Qz, Rz = sk.tsqr(to_zarr(A, chunks=(64, 7)), block_rows=64)
    np.testing.assert_array_equal(Rm, Rz)
    np.testing.assert_array_equal(Qm.compute(), Qz.compute())
    np.testing.assert_allclose(Qm.compute() @ Rm, A, atol=1e-12)
    np.testing.assert_array_equal(sk.lstsq(A, B, block_rows=64), sk.lstsq(to_zarr(A, chunks=(64, 7)), B, block_rows=64))
    np.testing.assert_allclose(sk.inner(A, B), A.T @ B, atol=1e-12)
    np.testing.assert_allclose(sk.matmul(A, U).compute(), A @ U, atol=1e-12)
