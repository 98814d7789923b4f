"""``report.html`` and the README's figures of synthetic studies (the runs' reports: in the pipeline tests)."""
import json

import numpy as np
import pytest

from overlap_experiments import cli
from overlap_experiments.figures import synthetic as figures
from overlap_experiments.reports import key_numbers, readme
from overlap_experiments.synthetic import study

from _synthetic_grids import TINY  # noqa: E402  (a plain name: see conftest.py)


@pytest.fixture
def tiny_grid(monkeypatch):
    monkeypatch.setattr(study, "QUICK_GRID", TINY)
    monkeypatch.setattr(figures, "DPI", 30)


def _study(out, seed, *flags):
    assert cli.main(["synthetic", "--out", str(out), "--quick", "--samples", "4", "--seed", str(seed),
                     "--no-progress", *flags]) == 0
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow  # draws seven figures (~4 s)
def test_report_of_a_synthetic_study(tmp_path, tiny_grid, read_report, check_png):
    doc = _study(tmp_path, 3)
    r = read_report(tmp_path)  # self-contained, every figure embedded byte for byte
    assert sorted(r.figures) == sorted(p[:-4] for p in figures.FIGURES)  # all seven, one naming scheme
    for p in tmp_path.glob("fig*.png"):
        check_png(p)
    tab = doc["table2"]["O-O"]
    for metric, vals in tab["rows"].items():
        for rho, v in zip(tab["rhos"], vals):
            assert r.values[f"table2/O-O/{metric}/{rho:g}"] == v
    assert r.values["synthetic_seconds"] == doc["elapsed_s"]
    assert "Parameters" in r.headings and "Disk use of this folder" in r.headings
    assert any("quick grid" in h for h in r.headings)


def test_readme_tables_with_the_spread_over_seeds(tmp_path, tiny_grid, capsys):
    docs = [_study(tmp_path / f"s{seed}", seed, "--no-figures") for seed in (0, 1, 2)]
    text = ("# title\n\nbefore\n\n" + readme.begin_marker("synthetic (quick grid)") + "\nold numbers\n"
            + readme.end_marker("synthetic (quick grid)") + "\n\nafter\n")
    (tmp_path / "README.md").write_text(text)
    written_by_run = (tmp_path / "s0" / "report.html").stat().st_mtime_ns
    argv = ["report", "--no-html", "--markdown", "--readme", str(tmp_path / "README.md")]
    assert cli.main(argv + [str(tmp_path / f"s{seed}") for seed in (0, 1, 2)]) == 0
    assert "wrote synthetic (quick grid)" in capsys.readouterr().out
    new = (tmp_path / "README.md").read_text()
    assert new.startswith("# title\n\nbefore\n\n<!-- report: synthetic (quick grid) -->\n")
    assert new.endswith("<!-- end of report: synthetic (quick grid) -->\n\nafter\n")
    assert "old numbers" not in new and "3 runs" in new and "seeds 0, 1, 2" in new
    assert (tmp_path / "s0" / "report.html").stat().st_mtime_ns == written_by_run  # --no-html
    # the geodesic row at ρ = 0.4: mean and range of the three studies' Table 2 means
    vals = [d["table2"]["O-O"]["rows"]["geodesic"][d["table2"]["O-O"]["rhos"].index(0.4)] for d in docs]
    row = next(line for line in new.splitlines() if line.startswith("| geodesic, ρ = 0.4 "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == f"{np.mean(vals):.5f}" and cells[2] == f"{min(vals):.5f} – {max(vals):.5f}"
    assert min(vals) < max(vals)  # the seeds differ
    # a group without markers is reported, not appended
    (tmp_path / "OTHER.md").write_text("no markers\n")
    written, missing = readme.update_readme(tmp_path / "OTHER.md", {"run mnist16": "x"})
    assert written == [] and missing == ["run mnist16"] and (tmp_path / "OTHER.md").read_text() == "no markers\n"


def test_report_of_a_folder_without_results_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "holds no results.json" in capsys.readouterr().err
    assert key_numbers.sections(tmp_path) == []
