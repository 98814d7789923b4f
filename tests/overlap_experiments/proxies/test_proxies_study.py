"""``overlap-experiments proxies``: the proxies of appendix A.2 on 16×16 MNIST, from the command line."""
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("curvlinops")

from overlap_experiments.cli import main  # noqa: E402


@pytest.mark.slow  # a training run, exact Hessians and D SAM perturbations (~10 s)
def test_cli_proxies_quick_writes_curves_parameters_and_figure(tmp_path):
    out = tmp_path / "prx"
    assert main(["proxies", "--out", str(out), "--quick", "--steps", "0", "--splits", "test",
                 "--no-progress", "--seed", "3"]) == 0
    res = json.loads((out / "proxies.json").read_text())
    assert res["seed"] == 3 and res["steps"] == [0] and res["D"] == 7030 and res["lams"] == [0.01, 0.1, 1.0]
    assert "digits" in res["data_source"]["name"].lower()
    c = res["curves"]["test"]["0"]
    for curve in [c["ggn"], c["h2"], *c["sam"].values()]:
        assert len(curve) == 7030 and curve[-1] == pytest.approx(1.0) and np.all(np.diff(curve) >= -1e-12)
    assert len(c["overlap"]) == res["k_max_overlap"] and 0 <= min(c["overlap"]) <= max(c["overlap"]) <= 1
    assert (out / "fig07_proxies_test.png").stat().st_size > 10_000


def test_cli_proxies_rejects_bad_lambda(tmp_path):
    assert main(["proxies", "--out", str(tmp_path), "--lams", "0.1", "-1", "1", "--no-progress"]) == 2
    assert not (tmp_path / "proxies.json").exists()
