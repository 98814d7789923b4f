"""Benchmark scripts run (CPU dry runs with tiny sizes) and write their JSON (issues 5 and 7)."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("curvlinops")

pytestmark = pytest.mark.slow  # runs the benchmark scripts (CPU dry runs, ~15 s together)

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


def test_gpu_check_refuses_without_gpu_and_cpu_dry_run(tmp_path, capsys):
    """The GPU kit's stages run end to end on the CPU (tiny sizes) and the report adds them up."""
    mod = _load("gpu_check")
    if mod.gpu_problem() is not None:
        assert mod.main(["hvp", "--out", str(tmp_path / "x")]) == 2
        assert "needs a CUDA GPU" in capsys.readouterr().err
    out = tmp_path / "g"
    args = ["--cpu", "--quick", "--out", str(out), "--nets", "mnist_mlp", "resnet18", "--seigh-net", "mnist_mlp",
            "--seigh-samples", "64", "--qr-rows", "20000", "--n-outer", "4", "--seigh-probes", "2"]
    assert mod.main(["all", *args]) == 0
    assert mod.main(["variants", *args, "--variant-net", "mnist_mlp"]) == 0
    assert mod.main(["report", "--out", str(out)]) == 0
    rep = json.loads((out / "gpu_check.json").read_text())
    assert all(rep[st]["ok"] for st in ("peaks", "hvp", "qr", "seigh", "variants"))
    res18 = next(r for r in rep["hvp"]["rows"] if r["net"] == "resnet18")
    assert res18["D"] == 11_689_512 and res18["max_rel_diff_vmapped_vs_one"] < 1e-4
    qr, est = rep["qr"], rep["extrapolation_seconds"]
    assert qr["orthogonality_max"] < 1e-5 and qr["n_inner"] == 9
    scale = 11_689_512 / 20000
    assert est["measurement"] == pytest.approx(9 * res18["seconds_per_hvp_best"])
    assert est["qr"] == pytest.approx(qr["seconds_tsqr"] * scale)
    parts = ("measurement", "qr", "thin_products", "core_solve", "eigenvectors_QU")
    assert est["total"] == pytest.approx(sum(est[k] for k in parts))
    sg = rep["seigh"]
    assert sg["cluster"] == "LocalCluster" and len(sg["eigenvalues_eigsh"]) == 4
    # Lanczos and SEIGH see the same Hessian: the exact top eigenvalue bounds both from above
    assert max(abs(v) for v in sg["eigenvalues_eigsh"]) <= max(abs(v) for v in sg["eigenvalues_seigh"]) * 1.5
    rows = rep["variants"]["rows"]
    assert [r["variant"] for r in rows] == ["vmap8_b32_bench", "revrev8_b64_bench", "vmap16_b64_bench"]
    assert all(r["max_rel_diff_vs_base"] < 1e-4 for r in rows)  # reverse-over-reverse gives the same H V


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


def test_trust_costs_quick(tmp_path):
    """benchmarks/trust_costs.py: the operator check and the checked reads, timed as ratios."""
    mod = _load("trust_costs")
    out = tmp_path / "trust.json"
    assert mod.main(["--D", "5000", "--n-outer", "4", "--n-inner", "9", "--repeats", "2", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["D"] == 5000 and set(rep["seconds_median"]) == {
        "reopen_operator_id", "reopen_operator_check", "eigenvectors_raw_zarr", "eigenvectors_checked_reads"}
    assert rep["operator_check_over_full_run"] is not None and rep["checked_over_raw_eigenvector_reads"] > 0
    assert rep["peak_rss_mib"] > 0
