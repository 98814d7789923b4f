"""benchmarks/store_s3.py runs (tiny sizes) and reports disk vs S3 and writer scaling (issue 21)."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
def test_store_s3_benchmark_quick(tmp_path, capsys):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    spec = importlib.util.spec_from_file_location("_bench_store_s3", BENCH / "store_s3.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    out = tmp_path / "store_s3.json"
    assert mod.main(["--quick", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["ratio_s3_to_disk"] > 0 and rep["seconds_disk"] > 0
    assert [r["writers"] for r in rep["writers"]] == [1, 2] and rep["writers"][0]["speedup"] == 1.0
    assert "stops scaling at" in capsys.readouterr().out
