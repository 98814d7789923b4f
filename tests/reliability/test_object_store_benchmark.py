"""benchmarks/store_s3.py runs (tiny sizes) and reports disk vs S3 and writer scaling (issue 21)."""
import json

import pytest
from _scripts import load_script  # tests/_scripts.py


@pytest.mark.slow
def test_store_s3_benchmark_quick(tmp_path, capsys):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    mod = load_script("benchmarks", "store_s3")
    out = tmp_path / "store_s3.json"
    assert mod.main(["--quick", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["ratio_s3_to_disk"] > 0 and rep["seconds_disk"] > 0
    assert [r["writers"] for r in rep["writers"]] == [1, 2] and rep["writers"][0]["speedup"] == 1.0
    assert "stops scaling at" in capsys.readouterr().out
