"""Completion records (written as workers write them) and stage records; their files on disk."""
import json
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from sketchla.store import RunStore, StoreCorruptError, chunk_manifest, write_done_record


def test_done_records_and_stages(tmp_path):
    s = RunStore.open(tmp_path / "r", {"seed": 0})
    assert s.done_keys("Y") == set()
    write_done_record(s.path, "Y", 0)
    write_done_record(s.path, "Y", "7")
    write_done_record(s.path, "Y", 0)  # idempotent
    assert s.done_keys("Y") == {"0", "7"} and s.done_keys("Z") == set()
    s.forget_done("Y", 7)
    s.forget_done("Y", 7)  # forgetting a missing record is no error
    assert s.done_keys("Y") == {"0"}
    with pytest.raises(ValueError, match="key"):
        write_done_record(s.path, "Y", "a/b")
    with pytest.raises(ValueError, match="name"):
        s.done_keys("_done")
    assert s.get_stage("qr") is None and s.stages() == []
    s.set_stage("qr", {"R": [[1.0, 2.0], [0.0, 3.0]], "rank": 2})
    assert s.get_stage("qr") == {"R": [[1.0, 2.0], [0.0, 3.0]], "rank": 2}
    assert RunStore.open(tmp_path / "r", {"seed": 0}).get_stage("qr")["rank"] == 2
    assert s.stages() == ["qr"]
    s.clear_stage("qr")
    assert s.get_stage("qr") is None and s.stages() == []


def test_records_on_disk(tmp_path):
    """The files of the records as stores written before (and by other versions) have them."""
    s = RunStore.open(tmp_path / "r", {"seed": 0})
    Y = s.array("Y", (4, 2), (2, 1), "float64")
    Y[:] = 1.0
    write_done_record(s.path, "Y", 1, chunk_manifest(s.path, "Y", Y, [(0, 1), (1, 1)]))
    s.set_stage("qr", {"rank": 2}, arrays=["Y"])

    def attrs(*parts):
        with open(os.path.join(s.path, *parts, "zarr.json")) as f:
            meta = json.load(f)
        assert meta["zarr_format"] == 3 and meta["node_type"] == "group"
        return meta["attributes"]

    assert attrs()["sketchla"]["params"] == {"seed": 0}
    assert attrs("_done") == {} and attrs("_done", "Y") == {} and attrs("_stages") == {}
    files = attrs("_done", "Y", "1")["files"]
    assert sorted(files) == ["c/0/1", "c/1/1"] and all(isinstance(v, list) and len(v) == 2 for v in files.values())
    stage = attrs("_stages", "qr")
    assert stage["info"] == {"rank": 2} and stage["finished"]
    assert sorted(stage["files"]["Y"]) == ["c/0/0", "c/0/1", "c/1/0", "c/1/1", "zarr.json"]


@pytest.mark.parametrize("verify", ["size", "full"])
def test_damaged_chunk_fails_its_record(tmp_path, verify):
    s = RunStore.open(tmp_path / "r", {"seed": 0})
    Y = s.array("Y", (4, 2), (4, 1), "float64")
    for j in range(2):
        Y[:, j] = j + 1.0
        write_done_record(s.path, "Y", j, chunk_manifest(s.path, "Y", Y, [(0, j)]))
    write_done_record(s.path, "Y", 9)  # no manifest: trusted
    assert s.verify_done("Y", verify=verify) == {} and s.verify() == {}
    chunk = os.path.join(s.path, "Y", "c", "0", "1")
    if verify == "size":
        n = os.path.getsize(chunk)
        with open(chunk, "ab") as f:
            f.write(b"\0")
        assert s.verify_done("Y", verify=verify) == {"1": f"Y/c/0/1 has {n + 1} bytes, {n} were written"}
    else:
        Y[:, 1] = 7.0  # same size, other bytes
        assert s.verify_done("Y", verify="size") == {}
        assert "CRC-32" in s.verify_done("Y", verify=verify)["1"]
    assert s.verify_done("Y", verify=False) == {}
    assert set(s.verify()) == {"Y/1"}


def test_damaged_stage_is_forgotten_or_refused(tmp_path):
    s = RunStore.open(tmp_path / "r", {"seed": 0})
    s.array("Q", (4, 2), (2, 2), "float64")[:] = np.ones((4, 2))
    s.set_stage("qr", {"rank": 2}, arrays=["Q"])
    os.remove(os.path.join(s.path, "Q", "c", "1", "0"))
    assert s.verify() == {"stage qr": "Q/c/1/0 is missing"}
    assert s.get_stage("qr", verify=False) == {"rank": 2}
    with pytest.raises(StoreCorruptError, match=r"stage 'qr' of store .* is damaged: Q/c/1/0 is missing"):
        RunStore.open(s.path, mode="r").get_stage("qr")
    assert s.get_stage("qr") is None and s.stages() == []  # writable: forgotten, to be recomputed


def _write_many(args):
    path, start = args
    for k in range(start, start + 25):
        write_done_record(path, "Y", k)
    return start


@pytest.mark.slow
def test_concurrent_records_from_many_processes(tmp_path):
    p = str(tmp_path / "r")
    RunStore.open(p, {"seed": 0})
    with ProcessPoolExecutor(4) as ex:
        list(ex.map(_write_many, [(p, 25 * i) for i in range(4)]))
    assert RunStore.open(p, mode="r").done_keys("Y") == {str(k) for k in range(100)}
