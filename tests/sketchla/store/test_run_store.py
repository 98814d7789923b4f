"""RunStore: params/seed/version attributes, refusal of other params, modes, arrays."""
import os

import numpy as np
import pytest
import zarr

import sketchla
from sketchla.store import RunStore, StoreMismatchError, write_done_record

from reliability._helpers import snapshot  # tests/ is on sys.path (pytest rootdir conftest)


def test_create_and_reopen(tmp_path):
    p = tmp_path / "run"
    s = RunStore.open(p, {"seed": 4, "n": (3, 5), "x": np.int64(2)})
    info = s.info
    assert info["params"] == {"seed": 4, "n": [3, 5], "x": 2}
    assert info["seed"] == 4 and info["version"] == sketchla.__version__ and info["created"]
    assert isinstance(s.group, zarr.Group) and s.path == str(p)
    # the attributes are plain Zarr attributes
    assert zarr.open_group(str(p), mode="r").attrs["sketchla"]["params"]["n"] == [3, 5]
    s2 = RunStore.open(str(p), {"x": 2, "n": [3, 5], "seed": 4})
    assert s2.params == s.params
    assert RunStore.open(p, mode="r").params == s.params


def test_mismatch_refused_and_store_untouched(tmp_path):
    p = tmp_path / "run"
    s = RunStore.open(p, {"seed": 1, "n_outer": 10})
    s.array("Y", (6, 4), (6, 2), "float32")[:] = 1.0
    write_done_record(s.path, "Y", 0)
    before = snapshot(p)
    with pytest.raises(StoreMismatchError, match=r"differing keys: n_outer, seed") as ei:
        RunStore.open(p, {"seed": 2, "n_outer": 12})
    assert "stored=10 requested=12" in str(ei.value)
    with pytest.raises(ValueError):  # StoreMismatchError is a ValueError
        RunStore.open(p, {"seed": 1})
    assert snapshot(p) == before


def test_mode_w_replaces_and_r_is_read_only(tmp_path):
    p = tmp_path / "run"
    RunStore.open(p, {"seed": 1}).array("Y", (2, 2), (2, 2), "float64")
    s = RunStore.open(p, {"seed": 2}, mode="w")
    assert s.params == {"seed": 2} and "Y" not in s
    r = RunStore.open(p, mode="r")
    for write in (lambda: r.forget_done("Y", 0), lambda: r.set_stage("qr"), lambda: r.clear_stage("qr"),
                  lambda: r.array("Z", (2, 2), (2, 2), "float64")):
        with pytest.raises(PermissionError, match="read-only"):
            write()
    with pytest.raises(FileNotFoundError):
        RunStore.open(tmp_path / "nope", mode="r+")
    with pytest.raises(ValueError, match="mode"):
        RunStore.open(p, {"seed": 2}, mode="x")
    with pytest.raises(ValueError, match="params"):
        RunStore.open(tmp_path / "new", None)
    with pytest.raises(ValueError, match="params"):
        RunStore.open(tmp_path / "new", {"f": object()})


def test_foreign_directories_refused(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "file.txt").write_text("hello")
    with pytest.raises(StoreMismatchError, match="not a Zarr store"):
        RunStore.open(d, {"seed": 0})
    g = tmp_path / "plain"
    zarr.open_group(str(g), mode="w")
    with pytest.raises(StoreMismatchError, match="not a sketchla run store"):
        RunStore.open(g, {"seed": 0})


def test_unwritable_path_gives_clear_error(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        RunStore.open(f / "store", {"seed": 0})
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(ro, 0o500)
        try:
            with pytest.raises(PermissionError, match="not writable"):
                RunStore.open(ro / "store", {"seed": 0})
        finally:
            os.chmod(ro, 0o700)


def test_array_create_open_and_mismatch(tmp_path):
    s = RunStore.open(tmp_path / "r", {"seed": 0})
    a = s.array("Y", (10, 4), (5, 2), "float32", attrs={"k": 1})
    a[:] = np.arange(40, dtype=np.float32).reshape(10, 4)
    b = s.array("Y", (10, 4), (5, 2), np.float32, attrs={"k": 1})
    assert np.array_equal(b[:], a[:])
    for shape, chunks, dtype in [((10, 5), (5, 2), "float32"), ((10, 4), (10, 2), "float32"),
                                 ((10, 4), (5, 2), "float64")]:
        with pytest.raises(StoreMismatchError, match="'Y'"):
            s.array("Y", shape, chunks, dtype)
    with pytest.raises(StoreMismatchError, match="k"):
        s.array("Y", (10, 4), (5, 2), "float32", attrs={"k": 2})
    for bad in ("", "_done", "a/b", 3):
        with pytest.raises(ValueError, match="name"):
            s.array(bad, (2, 2), (2, 2), "float32")
    with pytest.raises(ValueError, match="chunks"):
        s.array("Z", (2, 2), (0, 2), "float32")
