"""Deterministic graph keys: identical work, identical keys; other inputs (a rewritten Zarr array too), other keys."""
import numpy as np
import pytest
import zarr

import sketchla as sk
from sketchla.graph_keys import ZarrOutput, key_prefix, token, zarr_token


def _local(path, data, chunks=(25, 3)):
    z = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype, overwrite=True)
    z[:] = data
    return z


@pytest.fixture
def data():
    return np.random.default_rng(0).standard_normal((100, 3))


def test_same_inputs_same_key_other_inputs_other_key(data):
    assert key_prefix("x", data, 3) == key_prefix("x", data.copy(), 3)
    assert key_prefix("x", data, 3) != key_prefix("x", data, 4) != key_prefix("y", data, 4)
    assert key_prefix("x", data).startswith("sketchla-x-")
    op = sk.aslinearoperator(data)
    assert token(op) == token(sk.aslinearoperator(data.copy())) != token(sk.aslinearoperator(2 * data))


def test_zarr_arrays_by_place_and_contents(tmp_path, data):
    a = _local(tmp_path / "a.zarr", data)
    b = _local(tmp_path / "b.zarr", data)
    assert token(a) == token(zarr.open_array(str(tmp_path / "a.zarr"), mode="r"))  # same place, same files
    assert token(a) != token(b)  # another place
    before = token(a)
    a[:25] = data[:25]  # rewritten in place, same values: new files
    assert token(a) != before
    after = token(a)
    assert token(a) == after  # reading does not change it
    # an output is named by place and metadata only: rewriting it does not change its token
    out_token = token(ZarrOutput(a))
    a[:] = 0.0
    assert token(ZarrOutput(a)) == out_token != token(ZarrOutput(b))
    assert zarr_token(a, contents=False) == zarr_token(zarr.open_array(str(tmp_path / "a.zarr")), contents=False)
    assert zarr_token(a, contents=False) != zarr_token(b, contents=False)


def test_arrays_of_other_stores_never_share_keys(data):
    m = zarr.create_array(zarr.storage.MemoryStore(), shape=data.shape, chunks=(25, 3), dtype=data.dtype)
    m[:] = data
    assert token(m) != token(m)  # contents cannot be stamped cheaply: a fresh key each time


def test_linalg_keys_follow_the_inputs(tmp_path, data, monkeypatch):
    """The keys a routine builds repeat for the same input and change once the input is rewritten."""
    from sketchla.linalg import products

    seen = []
    real = products.compute

    def spy(*objs, client=None):
        seen.append(sorted(str(k) for obj in objs for k in dict(obj.__dask_graph__())))
        return real(*objs, client=client)

    monkeypatch.setattr(products, "compute", spy)
    a = _local(tmp_path / "a.zarr", data)
    G1 = sk.inner(a, a)
    G2 = sk.inner(a, a)
    a[:] = 2 * data
    G3 = sk.inner(a, a)
    assert seen[0] == seen[1] != seen[2]
    np.testing.assert_allclose(G3, 4 * G1) and np.testing.assert_array_equal(G1, G2)
