"""Completion records (written as workers write them) and stage records."""
from concurrent.futures import ProcessPoolExecutor

import pytest

from sketchla.store import RunStore, write_done_record


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
