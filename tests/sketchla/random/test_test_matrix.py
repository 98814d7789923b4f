"""TestMatrix: blocks are pure functions of (seed, name, position), across chunkings and processes."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from sketchla.random import TILE_ROWS, TestMatrix

D_BIG = 2 * TILE_ROWS + 1234  # three row tiles, the last one short


@pytest.fixture(scope="module")
def big():
    tm = TestMatrix((D_BIG, 5), seed=7, name="Omega", dtype="float64")
    return tm, tm.toarray()


@pytest.mark.parametrize("rows,cols", [
    (slice(0, 10), slice(0, 5)),
    (slice(TILE_ROWS - 3, TILE_ROWS + 4), slice(1, 3)),         # crosses a tile boundary
    (slice(TILE_ROWS - 1, 2 * TILE_ROWS + 2), slice(4, 5)),     # spans three tiles
    (slice(D_BIG - 7, None), slice(None)),                        # short last tile
    (slice(5, 5), slice(0, 2)),                                   # empty
    (3, slice(0, 5)),
])
def test_block_equals_slice_of_full(big, rows, cols):
    tm, full = big
    blk = tm.block(rows, cols)
    ref = full[rows, cols] if not isinstance(rows, int) else full[rows:rows + 1, cols]
    assert blk.shape == ref.shape
    assert np.array_equal(blk, ref)


def test_to_dask_any_chunking_equals_full(big):
    tm, full = big
    for rc, cc in [(1000, 1), (TILE_ROWS + 17, 2), (None, None)]:
        assert np.array_equal(tm.to_dask(rc, cc).compute(scheduler="sync"), full)


def test_small_matrix_chunkings_and_getitem():
    tm = TestMatrix((37, 11), seed=1, name="U", kind="rademacher")
    full = tm.toarray()
    for c in (1, 3, 11):
        cols = np.concatenate([tm[:, j:j + c] for j in range(0, 11, c)], axis=1)
        assert np.array_equal(cols, full)
    assert set(np.unique(full)) == {-1.0, 1.0}
    assert full.dtype == np.float32


def test_float32_is_rounded_float64():
    a32 = TestMatrix((100, 4), seed=3, name="x").toarray()
    a64 = TestMatrix((100, 4), seed=3, name="x", dtype="float64").toarray()
    assert np.array_equal(a32, a64.astype(np.float32))


def test_seed_name_kind_give_independent_matrices():
    base = TestMatrix((500, 3), seed=0, name="A", dtype="float64").toarray()
    for other in (TestMatrix((500, 3), seed=1, name="A", dtype="float64"),
                  TestMatrix((500, 3), seed=0, name="B", dtype="float64")):
        o = other.toarray()
        assert abs(np.corrcoef(base.ravel(), o.ravel())[0, 1]) < 0.1
    # columns are independent of each other too
    c = np.corrcoef(base.T)
    assert np.all(np.abs(c[np.triu_indices(3, 1)]) < 0.15)


def test_gaussian_and_rademacher_moments():
    g = TestMatrix((TILE_ROWS, 4), seed=5, name="g", dtype="float64").toarray()
    assert abs(g.mean()) < 0.01 and abs(g.std() - 1) < 0.01
    r = TestMatrix((TILE_ROWS, 4), seed=5, name="r", kind="rademacher", dtype="float64").toarray()
    assert abs(r.mean()) < 0.01 and np.all(np.abs(r) == 1)


@pytest.mark.parametrize("rows,cols", [
    (slice(0, 10), slice(0, 3)), (slice(60, 70), slice(1, 2)),          # inside a 64-entry word, across words
    (slice(TILE_ROWS - 5, TILE_ROWS + 5), slice(0, 3)),                 # across a tile boundary
    (slice(TILE_ROWS + 1, TILE_ROWS + 130), slice(2, 3)),               # short last tile
])
def test_signs_blocks_equal_slices_of_full(rows, cols):
    tm = TestMatrix((TILE_ROWS + 130, 3), seed=4, name="s", kind="signs", dtype="float64")
    full = tm.toarray()
    assert np.array_equal(tm.block(rows, cols), full[rows, cols])
    assert np.array_equal(TestMatrix(tm.shape, seed=4, name="s", kind="signs").block(rows, cols),
                          full[rows, cols].astype(np.float32))


def test_signs_are_fair_independent_and_not_the_rademacher_stream():
    s = TestMatrix((TILE_ROWS, 4), seed=5, name="r", kind="signs", dtype="float64").toarray()
    assert np.all(np.abs(s) == 1)
    # mean of 2**18 fair signs: standard deviation 2**-9 ≈ 0.002
    assert abs(s.mean()) < 0.01
    c = np.corrcoef(s.T)
    assert np.all(np.abs(c[np.triu_indices(4, 1)]) < 0.02)
    # consecutive entries (neighbouring bits of one word) are uncorrelated
    assert abs(np.mean(s[1:, 0] * s[:-1, 0])) < 0.02
    r = TestMatrix((TILE_ROWS, 4), seed=5, name="r", kind="rademacher", dtype="float64").toarray()
    assert abs(np.mean(r * s)) < 0.01


def test_shape_independent_prefix():
    """Entries depend on position only, not on the declared number of columns."""
    a = TestMatrix((300, 3), seed=2, name="p").toarray()
    b = TestMatrix((300, 8), seed=2, name="p").toarray()
    assert np.array_equal(a, b[:, :3])


def test_pickle_roundtrip_and_equality():
    tm = TestMatrix((20, 4), seed=9, name="Omega_O", kind="rademacher", dtype="float64")
    tm2 = pickle.loads(pickle.dumps(tm))
    assert tm2 == tm and hash(tm2) == hash(tm)
    assert np.array_equal(tm2.toarray(), tm.toarray())
    assert len(pickle.dumps(tm)) < 1000


@pytest.mark.slow
def test_same_values_in_another_process_with_other_hash_seed():
    tm = TestMatrix((70000, 2), seed=11, name="Ω-unicode", dtype="float64")
    code = ("import numpy as np,sys; from sketchla.random import TestMatrix;"
            "b=TestMatrix((70000,2),seed=11,name='Ω-unicode',dtype='float64').block(slice(65530,65540),slice(0,2));"
            "sys.stdout.write(b.tobytes().hex())")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    other = np.frombuffer(bytes.fromhex(out.stdout), dtype=np.float64).reshape(10, 2)
    assert np.array_equal(other, tm.block(slice(65530, 65540), slice(0, 2)))


@pytest.mark.parametrize("kwargs,match", [
    (dict(shape=(3,), seed=0, name="a"), "shape"),
    (dict(shape=(3, -1), seed=0, name="a"), "shape"),
    (dict(shape=(3, 2), seed=-1, name="a"), "seed"),
    (dict(shape=(3, 2), seed=1.5, name="a"), "seed"),
    (dict(shape=(3, 2), seed=0, name=""), "name"),
    (dict(shape=(3, 2), seed=0, name="a", kind="uniform"), "kind"),
    (dict(shape=(3, 2), seed=0, name="a", dtype="float16"), "dtype"),
])
def test_bad_arguments(kwargs, match):
    shape = kwargs.pop("shape")
    with pytest.raises(ValueError, match=match):
        TestMatrix(shape, **kwargs)


def test_bad_block_slices():
    tm = TestMatrix((10, 4), seed=0, name="a")
    with pytest.raises(ValueError, match="rows"):
        tm.block(slice(0, 10, 2), slice(None))
    with pytest.raises(ValueError, match="cols"):
        tm.block(slice(None), 7)
    with pytest.raises(TypeError, match="rows"):
        tm.block([1, 2], slice(None))
    with pytest.raises(ValueError, match="row_block"):
        tm.to_dask(row_block=0)
    with pytest.raises(ValueError, match="chunk"):
        tm.to_dask(chunk=0)


@pytest.mark.gpu
def test_cupy_block_bitwise_equal_to_numpy():
    import cupy

    tm = TestMatrix((1000, 3), seed=4, name="gpu")
    g = tm.block(slice(10, 900), slice(0, 3), xp=cupy)
    assert isinstance(g, cupy.ndarray)
    assert np.array_equal(cupy.asnumpy(g), tm.block(slice(10, 900), slice(0, 3)))


@pytest.mark.parametrize("kind", ["gaussian", "rademacher", "signs"])
def test_block_ending_inside_a_tile_is_the_prefix_of_the_full_tile(kind):
    """Partial tiles draw only up to their last row; the values must not change."""
    tm = TestMatrix((TILE_ROWS + 50, 2), seed=9, name="p", kind=kind, dtype="float64")
    full = tm.toarray()
    for r0, r1 in [(0, 7), (100, 5000), (TILE_ROWS - 10, TILE_ROWS + 20), (TILE_ROWS + 3, TILE_ROWS + 50)]:
        np.testing.assert_array_equal(tm.block(slice(r0, r1), slice(0, 2)), full[r0:r1])


def test_values_are_pinned_across_versions():
    """Stored runs stay reproducible: the generator's output is fixed forever (spec 'philox-blake2b-v1')."""
    g = TestMatrix((10, 2), seed=1, name="omega", dtype="float64").toarray()[:3].ravel()
    np.testing.assert_array_equal(g, [1.7046923755074008, -0.9782005835733067, 0.4060078034388396,
                                      2.377937430540642, 0.6180124114089813, 0.300690477895615])
    r = TestMatrix((10, 2), seed=1, name="omega", kind="rademacher", dtype="float64").toarray()[:4].ravel()
    np.testing.assert_array_equal(r, [-1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    s = TestMatrix((10, 2), seed=1, name="omega", kind="signs", dtype="float64").toarray()[:5].ravel()
    np.testing.assert_array_equal(s, [-1.0, 1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0])


def test_from_spec_round_trips():
    tm = TestMatrix((300, 7), seed=5, name="upsilon", kind="signs", dtype="float64")
    again = TestMatrix.from_spec(tm.spec())
    assert again == tm and np.array_equal(again.toarray(), tm.toarray())
