"""Issue 16, point 5: everything read from a store is untrusted input.

Manifest paths are confined to the store, types are checked (a malformed lock
record, ``params`` or stage record gives a store error naming the path, never
``AttributeError``), and there is one documented way to replace a store,
``RunStore.delete``, which the hints name and which works as they say.
"""
import json
import os
import re
import zlib

import numpy as np
import pytest

import sketchla as sk
from sketchla.store import (RunStore, StoreCorruptError, StoreLockCorruptError, StoreLockedError,
                            StoreMismatchError, chunk_manifest, write_done_record)
from sketchla.store import location as location_module

from reliability import _helpers as h  # tests/ is on sys.path (pytest rootdir conftest)


def _write_group(path, attributes):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "zarr.json"), "w") as f:
        json.dump({"attributes": attributes, "zarr_format": 3, "node_type": "group"}, f)


@pytest.fixture
def opened(monkeypatch):
    """Every file a store opens or stats through its location (local stores)."""
    seen = []
    size, size_crc32 = location_module.LocalLocation.size, location_module.LocalLocation.size_crc32

    def spy_size(self, rel):
        seen.append(self.join(rel))
        return size(self, rel)

    def spy_crc(self, rel):
        seen.append(self.join(rel))
        return size_crc32(self, rel)

    monkeypatch.setattr(location_module.LocalLocation, "size", spy_size)
    monkeypatch.setattr(location_module.LocalLocation, "size_crc32", spy_crc)
    return seen


@pytest.mark.parametrize("evil", ["../../outside", "c/../../../outside", "/abs/outside", "..", "c/0/../../.."])
def test_manifest_paths_outside_the_store_are_never_opened(tmp_path, opened, evil):
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret")
    s = RunStore.open(tmp_path / "a" / "run", {"seed": 0})
    Y = s.array("Y", (4, 2), (4, 1), "float64")
    Y[:] = 1.0
    files = chunk_manifest(s.path, "Y", Y, [(0, 0)])
    files[evil] = [6, zlib.crc32(b"secret")]  # would pass, if it were checked
    write_done_record(s.path, "Y", 0, files)
    s.set_stage("st", {}, arrays=["Y"])
    stage = os.path.join(s.path, "_stages", "st", "zarr.json")
    with open(stage) as f:
        meta = json.load(f)
    meta["attributes"]["files"]["../.."] = {"outside": [6, 0]}  # an "array" outside the store
    meta["attributes"]["files"]["Y"][evil] = [6, 0]
    with open(stage, "w") as f:
        json.dump(meta, f)
    opened.clear()
    for level in ("size", "full"):
        problems = s.verify(level)
        assert f"not a chunk key inside the store; not checked" in problems["Y/0"]
        assert "'../..' does not name an array of the store; not checked" in problems["stage st"]
    assert opened and all(os.path.realpath(p).startswith(os.path.realpath(s.path) + os.sep) for p in opened)
    assert s.verify_done("Y") == {"0": f"Y: manifest entry {evil!r} is not a chunk key inside the store; not checked"}


@pytest.mark.parametrize("entry", [5, "abc", [1], [-1, 0], [1.5, 0], ["1", 2], [True, 0], {"a": 1}, [3, "crc"]])
def test_malformed_manifest_entries_are_problems_not_crashes(tmp_path, entry):
    s = RunStore.open(tmp_path / "run", {"seed": 0})
    s.array("Y", (4, 1), (4, 1), "float64")[:] = 1.0
    write_done_record(s.path, "Y", 0, {"c/0/0": entry})
    write_done_record(s.path, "Y", 1, ["not", "a", "mapping"])
    got = s.verify_done("Y")
    assert got["0"] == f"Y/c/0/0: malformed manifest entry {entry!r}"
    assert got["1"] == "its completion record has no valid manifest"


@pytest.mark.parametrize("owner", [
    "a string", ["a", "list"], {"pid": "42", "host": "h", "token": "t", "since": "s"},
    {"pid": 42, "host": None, "token": "t", "since": "s"}, {"pid": True, "host": "h", "token": "t", "since": "s"},
    {"host": "h", "token": "t", "since": "s"},
])
def test_malformed_lock_record_is_a_store_error_naming_it(tmp_path, owner):
    s = RunStore.open(tmp_path / "run", {"seed": 0})
    _write_group(os.path.join(s.path, "_lock"), {"sketchla_lock": owner})
    record = os.path.join(s.path, "_lock", "zarr.json")
    with pytest.raises(StoreCorruptError, match=re.escape(record)):
        s.lock_owner()
    for attempt in (lambda: s.lock().__enter__(), lambda: RunStore.open(s.path, {"seed": 1}, mode="w")):
        with pytest.raises(StoreLockCorruptError, match="unknown owner") as ei:
            attempt()
        assert isinstance(ei.value, StoreLockedError) and isinstance(ei.value, StoreCorruptError)
    with pytest.raises(StoreLockedError):
        sk.measure(h.A, h.omega(), s, "Y", client="sync", progress=False)
    RunStore.break_lock(s.path)  # the way out the message names
    with s.lock():
        assert s.lock_owner()["pid"] == os.getpid()


def test_lock_record_with_wrong_attribute_types(tmp_path):
    s = RunStore.open(tmp_path / "run", {"seed": 0})
    os.makedirs(os.path.join(s.path, "_lock"))
    with open(os.path.join(s.path, "_lock", "zarr.json"), "w") as f:
        json.dump({"attributes": ["not", "a", "dict"], "zarr_format": 3}, f)
    with pytest.raises(StoreLockCorruptError, match="_lock"):
        s.lock_owner()


@pytest.mark.parametrize("params", [["seed", 0], "seed=0", 7, None])
def test_params_of_the_wrong_type_is_a_store_error_naming_the_path(tmp_path, params):
    p = tmp_path / "run"
    _write_group(p, {"sketchla": {"params": params, "seed": 0}})
    for call in (lambda: RunStore.open(p, {"seed": 0}), lambda: RunStore.open(p, mode="r"),
                 lambda: sk.open_result(p),
                 lambda: sk.seigh(h.A, h.N_OUTER, h.N_INNER, store=str(p), client="sync", **h.RUN)):
        with pytest.raises(StoreCorruptError, match=re.escape(f"{p}/zarr.json")):
            call()
    _write_group(p, {"sketchla": ["not", "a", "dict"]})
    with pytest.raises(StoreCorruptError, match="sketchla attribute .* is malformed"):
        RunStore.open(p, mode="r")


def test_stage_record_of_the_wrong_shape_is_damage(tmp_path):
    s = RunStore.open(tmp_path / "run", {"seed": 0})
    _write_group(os.path.join(s.path, "_stages", "core"), {"info": ["a", "list"], "finished": "now"})
    _write_group(os.path.join(s.path, "_stages", "qr"), {"info": {}, "finished": "now", "files": 5})
    with pytest.raises(StoreCorruptError, match="stage 'core' .* is damaged: the record of stage 'core' is unreadable"):
        RunStore.open(s.path, mode="r").get_stage("core")
    with pytest.raises(StoreCorruptError, match="its manifest is malformed"):
        RunStore.open(s.path, mode="r").get_stage("qr")
    assert s.verify() == {"stage core": "unreadable record", "stage qr": "its manifest is malformed"}
    assert s.get_stage("core") is None and s.stages() == ["qr"]  # writable: forgotten (recomputed)
    with pytest.raises(ValueError, match="info must be a dict"):
        s.set_stage("x", ["a"])


def test_the_mismatch_hint_names_the_way_to_replace_a_store_and_it_works(tmp_path):
    """The hint of StoreMismatchError is followed literally: RunStore.delete, then the new run."""
    path = str(tmp_path / "run")
    ref = sk.seigh(h.A, h.N_OUTER, h.N_INNER, store=path, client="sync", **h.RUN)
    with pytest.raises(StoreMismatchError) as ei:
        sk.seigh(h.A, h.N_OUTER, h.N_INNER, store=path, client="sync", **{**h.RUN, "seed": h.SEED + 1})
    msg = str(ei.value)
    assert "mode='w'" not in msg
    call = re.search(r"delete this store with (sketchla\.store\.RunStore\.delete\(.*?\)) and run again", msg)
    assert call and call.group(1) == f"sketchla.store.RunStore.delete({path!r})"
    import sketchla  # noqa: F401 (the hint names sketchla.store.RunStore.delete)

    eval(call.group(1))
    assert not os.path.exists(path)
    other = sk.seigh(h.A, h.N_OUTER, h.N_INNER, store=path, client="sync", **{**h.RUN, "seed": h.SEED + 1})
    assert other.params["seed"] == h.SEED + 1 and not np.array_equal(other.eigenvalues, ref.eigenvalues)
    # an array made from another test matrix: the hint names the store, not the array
    s = RunStore.open(path, mode="r+")
    with pytest.raises(StoreMismatchError, match=re.escape(f"RunStore.delete({path!r})")):
        s.array("Y", s["Y"].shape, s["Y"].chunks, s["Y"].dtype, attrs={"sketchla_measure": {}})


def test_delete_refuses_stores_in_use_and_foreign_folders(tmp_path):
    path = tmp_path / "run"
    RunStore.open(path, {"seed": 0}).array("Y", (2, 2), (2, 2), "float64")
    _write_group(os.path.join(path, "_lock"), {"sketchla_lock": {
        "pid": 4242, "host": "elsewhere.example", "since": "then", "token": "t" * 32}})  # a live run elsewhere
    with pytest.raises(StoreLockedError, match="is being written by another run: pid 4242"):
        RunStore.delete(path)
    assert RunStore.open(path, mode="r").params == {"seed": 0}  # untouched
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(StoreMismatchError, match="not a sketchla run store; not deleting it"):
        RunStore.delete(foreign)
    assert (foreign / "keep.txt").exists()
    RunStore.delete(tmp_path / "missing")  # nothing there: no error
    RunStore.break_lock(path)
    RunStore.delete(path)
    assert not path.exists()
