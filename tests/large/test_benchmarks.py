"""Benchmark scripts run (CPU dry runs with tiny sizes) and write their JSON (issues 5 and 7)."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


def test_hvp_batching_quick(tmp_path, capsys):
    mod = _load("hvp_batching")
    out = tmp_path / "hvp.json"
    assert mod.main(["--quick", "--nets", "mnist_mlp", "--device", "cpu", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert [r["net"] for r in rep["rows"]] == ["mnist_mlp"]
    for r in rep["rows"]:
        assert r["D"] == 7030 and r["ratio_vectorized_to_per_column"] > 0
        assert r["max_rel_diff"] < 1e-4  # both ways give the same H V


def test_gpu_resnet18_help_no_gpu_and_cpu_dry_run(tmp_path, capsys):
    import torch

    mod = _load("gpu_resnet18")
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0 and "H100" in capsys.readouterr().out
    if mod.gpu_problem() is not None:
        assert mod.main(["--out", str(tmp_path / "x.json")]) == 2
        assert "needs a CUDA GPU" in capsys.readouterr().err
    out = tmp_path / "g.json"
    assert mod.main(["--cpu", "--quick", "--nets", "resnet18", "--qr-rows", "20000", "--n-outer", "4",
                     "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    est = rep["estimate"]
    assert rep["device"] == "cpu" and rep["qr"]["orthogonality_max"] < 1e-5
    assert est["n_inner"] == 9 and est["qr_scaled_from_rows"] == 20000
    want = 9 * rep["hvp"][0]["seconds_per_hvp"] + est["qr_seconds"] + est["solve_seconds"]
    assert abs(est["T_issue_seconds"] - want) < 1e-9
    assert abs(est["qr_seconds"] - rep["qr"]["seconds_qr"] * 11_689_512 / 20000) < 1e-6
    del torch


def test_sketch_io_quick_and_bad_sizes(tmp_path, capsys):
    mod = _load("sketch_io")
    out = tmp_path / "io.json"
    assert mod.main(["--quick", "--repeats", "1", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert [g["kind"] for g in rep["generation"]] == ["gaussian", "rademacher", "signs"]
    assert rep["generation"][0]["ratio_to_gaussian"] == 1.0 and all(g["seconds"] > 0 for g in rep["generation"])
    former, middle, current = rep["stores"]
    assert former["write_ratio"] == former["read_ratio"] == former["bytes_ratio"] == 1.0
    assert middle["bytes_on_disk"] == current["bytes_on_disk"]  # same codecs, only the fill-value check differs
    assert current["bytes_on_disk"] >= 20_000 * 64 * 4  # uncompressed: at least the raw float32 sketch
    with pytest.raises(SystemExit) as e:
        mod.main(["--D", "0", "--out", str(tmp_path / "bad.json")])
    assert e.value.code == 2 and "--D must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--test-kinds", "gaussian,sobol"], "--test-kinds: ['sobol']; choose from gaussian, rademacher, signs"),
    (["--test-kinds", ","], "--test-kinds: none given"),
    (["--repeats", "0"], "--repeats must be at least 1"),
])
def test_seigh_overhead_bad_arguments(tmp_path, capsys, args, message):
    mod = _load("seigh_overhead")
    with pytest.raises(SystemExit) as e:
        mod.main(args + ["--out", str(tmp_path / "x.json")])
    assert e.value.code == 2 and message in capsys.readouterr().err
