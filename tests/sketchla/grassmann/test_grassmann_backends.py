"""Dask / Zarr inputs give the NumPy results; CuPy variants are marked gpu."""
import numpy as np
import pytest

from sketchla import grassmann as gm

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")

D, K = 60, 5


@pytest.fixture(scope="module")
def bases():
    return gm.random_stiefel(D, K, 1), gm.random_stiefel(D, K, 2)


def to_zarr(A, chunks):
    z = zarr.create_array(store=zarr.storage.MemoryStore(), shape=A.shape, chunks=chunks, dtype=A.dtype)
    z[...] = A
    return z


def test_dask_pair_metrics_equal_numpy(bases):
    Q1, Q2 = bases
    d1, d2 = da.from_array(Q1, chunks=(16, K)), da.from_array(Q2, chunks=(7, K))
    np.testing.assert_allclose(gm.principal_angles(d1, d2), gm.principal_angles(Q1, Q2), atol=1e-12)
    for name in gm.METRICS:
        want = gm.normalized(name, Q1, Q2)
        assert gm.normalized(name, d1, d2) == pytest.approx(want, abs=1e-12)
        assert gm.normalized(name, d1, Q2) == pytest.approx(want, abs=1e-12)  # mixed Dask / NumPy
        assert gm.normalized(name, to_zarr(Q1, (16, K)), d2) == pytest.approx(want, abs=1e-12)
    with pytest.raises(ValueError, match="Q1 does not have orthonormal columns"):
        gm.overlap(2 * d1, d2)


def test_dask_mask_metrics_equal_numpy(bases):
    Q1, _ = bases
    d1 = da.from_array(Q1, chunks=(13, K))
    idx = gm.random_mask(D, K, 3)
    assert gm.overlap(d1, idx) == pytest.approx(gm.overlap(Q1, idx), abs=1e-12)
    assert gm.geodesic(idx, d1) == pytest.approx(gm.geodesic(idx, Q1), abs=1e-12)
    assert gm.mask_overlap(idx, d1) == pytest.approx(gm.mask_overlap(idx, Q1), abs=1e-12)
    assert gm.iou(da.from_array(np.isin(np.arange(D), idx), chunks=20), idx) == 1.0


@pytest.mark.parametrize("wrap", ["dask", "zarr"])
def test_overlap_curve_streamed_equals_numpy(wrap):
    Q = gm.random_stiefel(D, 8, 4)
    A = da.from_array(Q, chunks=(9, 4)) if wrap == "dask" else to_zarr(Q, (9, 4))
    order = np.random.default_rng(0).permutation(D)
    np.testing.assert_allclose(gm.overlap_curve(order, A), gm.overlap_curve(order, Q), atol=1e-12)
    np.testing.assert_allclose(gm.overlap_curve(order, A, 3), gm.overlap_curve(order, Q, 3), atol=1e-12)
    assert gm.mask_overlap(order[:5], A) == pytest.approx(gm.mask_overlap(order[:5], Q), abs=1e-12)
    # a lazily computed order is fine too
    np.testing.assert_allclose(gm.overlap_curve(da.from_array(order, chunks=7), A), gm.overlap_curve(order, Q))


def test_overlap_curve_dask_reads_only_needed_chunks():
    """Rows outside the requested ones live in chunks that are never computed."""
    n = 4
    Q = gm.random_stiefel(D, n, 5)
    order = np.array([0, 1, 2, 3])  # all in the first chunk of 10 rows

    def block(i):
        if i > 0:
            raise AssertionError(f"chunk {i} was read")
        return Q[:10]

    import dask

    parts = [da.from_delayed(dask.delayed(block)(i), shape=(10, n), dtype=Q.dtype) for i in range(D // 10)]
    lazy = da.concatenate(parts, axis=0)
    np.testing.assert_allclose(gm.overlap_curve(order, lazy), gm.overlap_curve(order, Q), atol=1e-12)


@pytest.mark.gpu
def test_cupy_metrics_equal_numpy(bases):
    import cupy as cp

    Q1, Q2 = bases
    c1, c2 = cp.asarray(Q1), cp.asarray(Q2)
    for name in gm.METRICS:
        assert gm.normalized(name, c1, c2) == pytest.approx(gm.normalized(name, Q1, Q2), abs=1e-10)
    idx = gm.random_mask(D, K, 3)
    assert gm.overlap(c1, cp.asarray(idx)) == pytest.approx(gm.overlap(Q1, idx), abs=1e-10)
    assert gm.mask_overlap(idx, c1) == pytest.approx(gm.mask_overlap(idx, Q1), abs=1e-10)
    order = np.random.default_rng(1).permutation(D)
    np.testing.assert_allclose(gm.overlap_curve(cp.asarray(order), c1), gm.overlap_curve(order, Q1), atol=1e-10)
    dc = da.from_array(c1, chunks=(16, K), asarray=False)
    assert gm.overlap(dc, c2) == pytest.approx(gm.overlap(Q1, Q2), abs=1e-10)
    with pytest.raises(ValueError, match="Q1 does not have orthonormal columns"):
        gm.overlap(2 * c1, c2)
    with pytest.raises(TypeError, match="different devices"):
        gm.overlap(c1, Q2)
