"""The writer lock within one process (dead and killed owners: tests/reliability/test_faults.py)."""
import json
import os

import pytest

from sketchla.store import RunStore, StoreLockedError
from sketchla.store.lock import DirectoryLock, writer_lock


def _plant_lock(path, **owner):
    """A lock record as another run would leave it."""
    os.makedirs(os.path.join(path, "_lock"))
    with open(os.path.join(path, "_lock", "zarr.json"), "w") as f:
        json.dump({"attributes": {"sketchla_lock": owner}, "zarr_format": 3, "node_type": "group"}, f)


def test_lock_is_held_reentrantly_and_released(tmp_path):
    s = RunStore.open(tmp_path / "run", {"seed": 0})
    assert isinstance(writer_lock(s.path), DirectoryLock) and s.lock_owner() is None
    with s.lock() as held:
        assert held is s
        owner = s.lock_owner()
        assert owner["pid"] == os.getpid() and owner["token"]
        with RunStore.open(s.path, mode="r+").lock():  # another handle, same process: shared
            assert s.lock_owner() == owner
        assert s.lock_owner() == owner
    assert s.lock_owner() is None and os.listdir(s.path) == ["zarr.json"]
    with pytest.raises(PermissionError, match="read-only"):
        with RunStore.open(s.path, mode="r").lock():
            pass


def test_lock_of_another_host_is_refused_until_broken(tmp_path):
    s = RunStore.open(tmp_path / "run", {"seed": 0})
    _plant_lock(s.path, pid=4242, host="elsewhere.example", since="then", token="t" * 32)
    with pytest.raises(StoreLockedError, match=r"pid 4242 on host 'elsewhere.example' \(since then\) whose "
                                               r"liveness cannot be checked from this host.*break_lock"):
        with s.lock():
            pass
    with pytest.raises(StoreLockedError, match="^mode='w' would delete a store in use: store "):
        RunStore.open(s.path, {"seed": 1}, mode="w")
    assert RunStore.break_lock(s.path)["pid"] == 4242
    assert RunStore.break_lock(s.path) is None  # nothing left to break
    with s.lock():
        assert s.lock_owner()["pid"] == os.getpid()
    assert RunStore.open(s.path, {"seed": 1}, mode="w").params == {"seed": 1}


def test_unreadable_lock_is_refused(tmp_path):
    s = RunStore.open(tmp_path / "run", {"seed": 0})
    os.makedirs(os.path.join(s.path, "_lock"))
    with open(os.path.join(s.path, "_lock", "zarr.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(StoreLockedError, match="an unknown owner"):
        with s.lock():
            pass
