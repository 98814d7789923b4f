"""sketchla.store.lifetime: a temporary store lives while anything read from it is referenced;
checked reads refuse missing chunks instead of returning Zarr's fill values."""
import gc
import os
import pickle
import shutil

import numpy as np
import pytest
import zarr

from sketchla.store import RunStore, StoreCorruptError, keep_alive, lazy, open_temporary
from sketchla.store.lifetime import CheckedReads


def _filled(run, name="Q", shape=(10, 3), chunks=(4, 3)):
    arr = run.array(name, shape, chunks, "float64")
    arr[:] = np.arange(np.prod(shape), dtype=float).reshape(shape) + 1.0
    return arr


def test_temporary_store_lives_while_an_array_read_from_it_is_referenced():
    run = open_temporary({"seed": 0})
    root = os.path.dirname(run.path)
    Q = keep_alive(run, _filled(run))
    V = lazy(Q) * 2.0
    del run, Q
    gc.collect()
    assert os.path.isdir(root)  # V's graph holds the array, the array holds the directory
    np.testing.assert_array_equal(V.compute(), 2.0 * (np.arange(30.0).reshape(10, 3) + 1.0))
    del V
    gc.collect()
    assert not os.path.exists(root)  # nothing refers to it any more: removed


def test_temporary_store_is_removed_with_its_last_reference():
    run = open_temporary({"seed": 0})
    root = os.path.dirname(run.path)
    assert os.path.isdir(root) and os.path.basename(root).startswith("sketchla-run-")
    del run
    gc.collect()
    assert not os.path.exists(root)


def test_a_pickled_copy_does_not_own_the_directory():
    """Copies sent to Dask workers do not keep (or remove) the directory: its maker's process does."""
    run = open_temporary({"seed": 0})
    root = os.path.dirname(run.path)
    Q = keep_alive(run, _filled(run))
    copy = pickle.loads(pickle.dumps(lazy(Q)))
    np.testing.assert_array_equal(copy.compute(), Q[:])
    del run, Q
    gc.collect()
    assert not os.path.exists(root)
    with pytest.raises(StoreCorruptError, match="no longer exists"):
        copy.compute()


def test_keep_alive_leaves_stores_on_a_path_alone(tmp_path):
    run = RunStore.open(tmp_path / "run", {"seed": 0})
    Q = keep_alive(run, _filled(run))
    assert not hasattr(Q, "_sketchla_lifetime")
    del run, Q
    gc.collect()
    assert os.path.isdir(tmp_path / "run")


def test_deleted_store_is_an_error_not_zeros(tmp_path):
    run = RunStore.open(tmp_path / "run", {"seed": 0})
    V = lazy(_filled(run))
    arr = run["Q"]
    shutil.rmtree(run.path)
    assert np.all(arr[:] == 0)  # what Zarr alone returns for a deleted store: fill values
    with pytest.raises(StoreCorruptError, match=r"run store .*run' holding array 'Q' no longer exists"):
        V.compute()


def test_missing_chunk_is_named(tmp_path):
    run = RunStore.open(tmp_path / "run", {"seed": 0})
    arr = _filled(run)
    os.remove(os.path.join(run.path, "Q", "c", "1", "0"))
    assert np.all(arr[4:8] == 0)  # what Zarr alone returns: fill values
    V = lazy(arr)
    np.testing.assert_array_equal(V[:4].compute(), np.arange(12.0).reshape(4, 3) + 1.0)  # other chunks read
    with pytest.raises(StoreCorruptError, match=r"chunk\(s\) \(1, 0\) of array 'Q' in the run store .* missing"):
        V.compute()


def test_checked_reads_cover_every_touched_chunk(tmp_path):
    """A read across several chunks checks each of them; empty reads check none."""
    run = RunStore.open(tmp_path / "run", {"seed": 0})
    arr = _filled(run, shape=(9, 4), chunks=(2, 3))
    os.remove(os.path.join(run.path, "Q", "c", "3", "1"))  # rows 6:8, columns 3:4
    view = CheckedReads(arr)
    assert view[0:6, :].shape == (6, 4) and view[6:8, 0:3].shape == (2, 3) and view[5:5, :].shape == (0, 4)
    with pytest.raises(StoreCorruptError, match=r"\(3, 1\)"):
        view[5:9, 2:4]
    with pytest.raises(StoreCorruptError, match=r"\(3, 1\)"):
        view[6:8]  # a short key reads whole rows


def test_checked_reads_of_other_stores_use_the_store_api():
    arr = zarr.create_array(zarr.storage.MemoryStore(), shape=(6, 2), chunks=(3, 2), dtype="f8", fill_value=0)
    arr[:3] = 1.0  # the second chunk was never written
    view = CheckedReads(arr)
    assert np.all(view[:3] == 1.0)
    with pytest.raises(StoreCorruptError, match=r"chunk\(s\) \(1, 0\)"):
        view[2:5]
