"""``overlap-experiments synthetic``: every output file of a run."""
import json

import numpy as np
import pytest

from overlap_experiments import synthetic as syn
from overlap_experiments.figures import synthetic as figures
from overlap_experiments.synthetic import study

from _synthetic_grids import TINY  # noqa: E402  (a plain name: see conftest.py)


@pytest.mark.slow  # draws seven figures (~4 s)
def test_cli_writes_all_outputs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(study, "QUICK_GRID", TINY)
    monkeypatch.setattr(figures, "DPI", 30)
    rc = syn.main(["--out", str(tmp_path), "--quick", "--samples", "5", "--seed", "3"])
    assert rc == 0
    for name in ["results.json", "samples.npz", "table2.csv", "table2.md", "report.html",
                 "fig02_om_chordal2_and_overlap.png", "fig08_oo_metrics_vs_d.png", "fig09_oo_metrics_vs_rho.png",
                 "fig10_mm_metrics_vs_d.png", "fig11_mm_metrics_vs_rho.png", "fig12_om_metrics_vs_d.png",
                 "fig13_om_metrics_vs_rho.png"]:
        assert (tmp_path / name).stat().st_size > 0, name
    assert sorted(p.name for p in tmp_path.glob("fig*.png")) == sorted(figures.FIGURES)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["seed"] == 3 and doc["samples"] == 5 and doc["quick"] is True
    assert doc["grid"]["table_d"] == 64
    n_cells = len(TINY.cells())
    assert len(doc["summaries"]) == 3 * n_cells * len(syn.METRICS)
    s = next(r for r in doc["summaries"] if r["modality"] == "M-M" and r["d"] == 64 and r["rho"] == 1.0)
    assert s["mean"] == s["median"] == s["p5"] == 1.0 and s["n"] == 5
    # the raw samples round-trip
    with np.load(tmp_path / "samples.npz") as z:
        again = syn.run_study(seed=3, samples=5, grid=TINY, scheduler="sync")
        np.testing.assert_array_equal(z["O-M_d32_k2"], again.values[("O-M", 32, 2)])
