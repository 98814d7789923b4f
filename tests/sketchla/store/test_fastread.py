"""``read_region``: a run store's arrays read from their chunk files equal Zarr's reads, damage included."""
import os

import numpy as np
import pytest
import zarr

from sketchla.store import RunStore
from sketchla.store.fastread import _layout, read_region


@pytest.fixture
def stored(tmp_path):
    run = RunStore.open(str(tmp_path / "run"), {"t": 1})
    arr = run.array("Y", (1000, 37), chunks=(128, 5), dtype=np.float32)  # edge chunks on both axes
    x = np.random.default_rng(0).standard_normal((1000, 37)).astype(np.float32)
    arr[...] = x
    return run, arr, x


def test_reads_equal_zarr_for_any_region(stored):
    run, arr, x = stored
    assert _layout(arr) is not None
    for rows, cols in [(slice(None), slice(None)), (slice(0, 128), slice(0, 5)), (slice(100, 900), slice(3, 36)),
                       (slice(999, 1000), slice(36, 37)), (slice(5, 5), slice(0, 37)), (slice(127, 257), slice(4, 11))]:
        got = read_region(arr, rows, cols)
        np.testing.assert_array_equal(got, arr[rows, cols])
        np.testing.assert_array_equal(got, x[rows, cols])
        assert got.flags.c_contiguous and got.dtype == np.float32


def test_missing_chunk_reads_fill_value_and_damage_raises_like_zarr(stored):
    run, arr, x = stored
    root = os.path.join(run.path.removeprefix("file://") if isinstance(run.path, str) else run.path, "Y", "c")
    os.remove(os.path.join(root, "1", "2"))
    np.testing.assert_array_equal(read_region(arr, slice(None), slice(None)), arr[...])
    path = os.path.join(root, "0", "0")
    data = bytearray(open(path, "rb").read())
    data[10] ^= 1
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="checksum do not match"):
        read_region(arr, slice(0, 10), slice(0, 3))
    with pytest.raises(ValueError, match="checksum do not match"):
        arr[0:10, 0:3]
    open(path, "wb").write(bytes(data[:-8]))
    with pytest.raises(ValueError, match="holds .* bytes"):
        read_region(arr, slice(0, 10), slice(0, 3))


def test_other_encodings_go_through_zarr(tmp_path):
    a = zarr.create_array(str(tmp_path / "z"), shape=(50, 4), chunks=(16, 4), dtype="f8")  # Zstandard
    a[...] = np.arange(200.0).reshape(50, 4)
    assert _layout(a) is None
    np.testing.assert_array_equal(read_region(a, slice(3, 40), slice(1, 3)), a[3:40, 1:3])
