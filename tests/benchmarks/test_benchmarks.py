"""Benchmark scripts run (CPU dry runs with tiny sizes) and write their JSON (issues 5 and 7)."""
import json

import numpy as np
import pytest
from _scripts import load_script  # tests/_scripts.py

pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("curvlinops")

pytestmark = pytest.mark.slow  # runs the benchmark scripts (CPU dry runs, ~15 s together)

def _load(name):
    return load_script("benchmarks", name)


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


def test_peers_quick_and_one_isolated_run(tmp_path):
    """peers.py end to end at tiny sizes: every problem and method, the reference, the table's columns;
    then one problem in fresh processes (the full run's mode, with per-method peak RSS)."""
    mod = _load("peers")
    out = tmp_path / "peers.json"
    assert mod.main(["--quick", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert set(rep["problems"]) == {"sym", "heavy", "fast", "mlp"}
    for name, prob in rep["problems"].items():
        rows = prob["methods"]
        assert ("dask" in rows) == (name in ("heavy", "fast"))
        assert rows["ARPACK"]["time_ratio_to_arpack"] == 1.0 and rows["ARPACK"]["max_rel_err"] < 1e-6
        for m, row in rows.items():
            assert row["products"] > 0 and np.isfinite(row["max_rel_err"]) and 0 <= row["sin_max_angle"] <= 1, m
        q2, rf = rows["sketchla q=2"], rows["sklearn it=2"]
        assert q2["params"]["passes"] == 2 and q2["products"] - 10 <= rf["products"]  # 10: the certificate
        assert 0 < q2["certificate_share"] < np.inf  # a timing ratio: reported, not bounded (tiny and noisy here)
        if name != "mlp":  # the tiny MLP's top 20 are nearly tied: no order to compare
            assert q2["max_rel_err"] < rows["sketchla q=0"]["max_rel_err"]
    out2 = tmp_path / "iso.json"
    assert mod.main(["--quick", "--isolate", "--problems", "fast", "--methods", "sketchla q=2", "ARPACK",
                     "--out", str(out2)]) == 0
    rows = json.loads(out2.read_text())["problems"]["fast"]["methods"]
    assert rows["sketchla q=2"]["rss_peak_mib"] >= rows["sketchla q=2"]["rss_before_mib"] > 0


def test_passes_mnist16_compares_sorted_magnitudes_and_refuses_mixed_runs(tmp_path, capsys):
    """The table of issue 15.4 from two results.json files: |λ| errors on sorted magnitudes (a ± pair
    of nearly equal size is no sign error), curve gaps over the sketched k, runs checked for q."""
    mod = _load("passes_mnist16")

    def results(passes, sketched_eigs, curve):
        item = {"eigenvalues_exact_top": [5.0, -4.0, 3.9, 1.0], "eigenvalues_sketched": sketched_eigs,
                "exact": [0.1, 0.2, 0.3, 0.4], "sketched": curve,
                "eigenspace_overlap_exact_vs_sketched": {str(k): 0.5 for k in mod.KS}}
        return {"config": {"passes": passes, "n_outer": 3, "n_inner": 7}, "timings": {"seigh": 2.0},
                "overlap": {"train": {"0": item, "10": {"sketched": curve}}}}

    single = results(0, [5.0, 3.9, -4.0], [0.1, 0.2, 0.35])  # the ± pair swapped: no error
    krylov = results(1, [4.5, -4.0, 3.9], [0.1, 0.2, 0.3])
    (row,) = mod.compare(single, krylov)
    assert row["step"] == 0 and row["single"]["max_rel_err_abs_eigenvalues"][10] == 0.0
    assert row["krylov"]["max_rel_err_abs_eigenvalues"][10] == pytest.approx(0.1)
    assert row["single"]["mask_curve_gap_max"] == pytest.approx(0.05) and row["krylov"]["mask_curve_gap_max"] == 0
    for name, r in (("a", single), ("b", krylov)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(r))
    out = tmp_path / "t.json"
    assert mod.main(["--single", str(tmp_path / "a"), "--krylov", str(tmp_path / "b"), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["hvps"] == {"single": 7, "krylov": 6}
    with pytest.raises(SystemExit):
        mod.main(["--single", str(tmp_path / "b"), "--krylov", str(tmp_path / "a"), "--json", str(out)])
