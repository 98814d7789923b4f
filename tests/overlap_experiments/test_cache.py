"""The analysis cache: a record is reused for its key only; damage means recompute."""
import numpy as np

from overlap_experiments.cache import AnalysisCache

KEY = {"kind": "sketched", "store": "abc", "basis_columns": 2}


def test_round_trip_key_and_damage(tmp_path):
    cache = AnalysisCache(tmp_path / "analysis")
    record = {"overlap": np.linspace(0, 1, 5), "basis": np.eye(4, 2, dtype=np.float32), "store": "x.zarr",
              "stages": {"measure": 1.5}, "per_hvp": None, "metrics": {"0.2": {"overlap": 0.3}}}
    calls = []
    got, reused = cache.fetch("sketched", "test", 7, KEY, lambda: calls.append(1) or record)
    assert got is record and not reused and calls == [1]
    assert cache.path("sketched", "test", 7).name == "sketched_test_step000007.npz"
    again, reused = cache.fetch("sketched", "test", 7, KEY, lambda: calls.append(1) or record)
    assert reused and calls == [1]
    np.testing.assert_array_equal(again["overlap"], record["overlap"])
    assert again["basis"].dtype == np.float32 and again["stages"] == {"measure": 1.5}
    assert again["per_hvp"] is None and again["metrics"] == record["metrics"] and again["store"] == "x.zarr"
    assert cache.load("sketched", "test", 7, {**KEY, "store": "other"}) is None  # another Hessian or sketch
    assert cache.load("exact", "test", 7, KEY) is None
    cache.path("sketched", "test", 7).write_bytes(b"not an npz")
    assert cache.load("sketched", "test", 7, KEY) is None  # damaged: recompute
