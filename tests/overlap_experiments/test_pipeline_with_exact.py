"""The pipeline on a problem with exact Hessians: ``run mnist16 --quick`` end to end, resumption.

Exact and sketched analysis side by side (paper §6.1), the results.json
layout of :mod:`overlap_experiments.reports.comparison` and its figures.
"""
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("curvlinops")
pytest.importorskip("sklearn")

from overlap_experiments import cli  # noqa: E402
from overlap_experiments.figures import comparison  # noqa: E402
from overlap_experiments.figures.comparison import FIGURES  # noqa: E402

pytestmark = pytest.mark.slow  # a training run and 4 Hessian analyses (~15 s)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mnist16_quick")
    rc = cli.main(["run", "mnist16", "--quick", "--out", str(out), "--no-progress"])
    return rc, json.loads((out / "results.json").read_text()), out


def test_quick_run_writes_results_and_figures(quick_run):
    rc, res, out = quick_run
    assert rc == 0
    assert res["n_params"] == 7030 and res["problem"]["name"] == "mnist16"
    assert res["data_source"]["name"] == "digits" and "scikit-learn" in res["data_source"]["description"]
    cfg = res["config"]
    assert cfg["quick"] and cfg["n_outer"] == 20 and cfg["n_inner"] == 41 and cfg["steps"] == 100
    assert res["hessian_samples"]["train"]["n"] == 50 and len(res["hessian_samples"]["test"]["indices"]) == 50
    assert len(res["training"]["losses"]) == 100
    for name in FIGURES:
        assert (out / name).stat().st_size > 5000, name
    assert sorted(res["figures"]) == sorted(str(out / n) for n in FIGURES)
    assert res["disk"]["parts"]["seigh"] > 0 and res["disk"]["total"] >= sum(res["disk"]["parts"].values())
    # training worked: accuracy well above the 10% of chance, loss down
    ck = res["checkpoints"]
    assert ck["0"]["test_acc"] < 0.2 < 0.4 < ck["100"]["test_acc"]
    assert ck["100"]["train_loss"] < ck["0"]["train_loss"]
    for key in ("train", "evaluate", "exact_hessian", "exact_eigh", "seigh", "total"):
        assert res["timings"][key] >= 0
    # the per-step, per-k table of the issue
    item = res["overlap"]["train"]["100"]
    n = len(item["exact"])
    assert item["k"][:n] == list(range(1, n + 1))
    np.testing.assert_allclose(item["chance"], np.arange(1, len(item["k"]) + 1) / 7030)
    np.testing.assert_allclose(item["ratio_exact"], np.asarray(item["exact"]) / np.asarray(item["chance"][:n]))
    assert set(res["summary"]["train"]["100"]["10"]) >= {"exact", "sketched", "chance", "ratio_exact"}
    assert "sketched" in res["overlap"]["test"]["0"] and "exact" not in res["overlap"]["test"]["0"]


def test_quick_run_numbers(quick_run):
    _, res, _ = quick_run
    item = res["overlap"]["train"]["100"]
    ex, sk = np.asarray(item["exact"]), np.asarray(item["sketched"])
    # sketched top eigenpairs agree with the exact ones where the sketch is reliable (small k)
    agree = item["eigenspace_overlap_exact_vs_sketched"]
    assert agree["1"] > 0.85 and agree["3"] > 0.8
    ev_e, ev_s = np.asarray(item["eigenvalues_exact_top"][:3]), np.asarray(item["eigenvalues_sketched"][:3])
    np.testing.assert_allclose(ev_s, ev_e, rtol=0.2)
    assert np.max(np.abs(ex[:5] - sk[:5])) < 0.01
    # magnitude masks overlap the top eigenspace above chance (paper §6.1)
    k = np.arange(1, len(ex) + 1)
    assert np.mean(ex[9:] / (k[9:] / 7030)) > 1.2
    assert item["best_mask"][9] >= ex[9] and np.all(np.asarray(item["best_mask"]) >= ex - 1e-9)
    assert np.allclose(np.mean(np.asarray(item["random_mask_mean"][9:]) / (k[9:] / 7030)), 1.0, atol=0.5)
    # κ of the parameters grows from its initial value once training concentrates the weights
    kp = res["checkpoints"]["100"]["kappa_params"]
    assert 0 < kp["0.005"] < kp["0.01"] < kp["0.05"] < kp["0.2"] < 1


def test_quick_figures_are_readable_and_say_what_they_computed(quick_run, check_png, monkeypatch, tmp_path):
    _, res, out = quick_run
    for name in FIGURES:
        check_png(out / name)  # the naming scheme; nothing cut off at the canvas' edge
    drawn = {}

    def keep_texts(fig, path, plt, **kw):
        drawn[path.name] = {"title": fig.get_suptitle(),
                            "axes": [(a.get_title(), a.get_ylabel()) for a in fig.axes if a.get_visible()]}
        return path

    monkeypatch.setattr(comparison, "save_figure", keep_texts)
    comparison.make_figures(res, tmp_path)
    assert sorted(drawn) == sorted(FIGURES)
    for name, d in drawn.items():  # a caption line naming the problem, the data, and that this was --quick
        assert "16×16 MNIST" in d["title"] and "digits data" in d["title"] and "quick run" in d["title"], name
    # n_O = 20: Fig. 1 is drawn at the k every curve reaches, and says so
    assert "top-20 Hessian eigenspace" in drawn["fig01_left_overlap_vs_step.png"]["title"]
    assert "k = 20" in drawn["fig01_left_overlap_vs_step.png"]["title"]
    # no exact H_test here: no κ(Λ) panel for it (the caption says why)
    assert not any("H_test" in ylabel for _, ylabel in drawn["fig15_training_kappa.png"]["axes"])
    assert "no exact H_test" in drawn["fig15_training_kappa.png"]["title"]
    # collapsing metrics are named in the caption, not drawn as flat panels
    titles = [t for t, _ in drawn["fig17_grassmann_metrics.png"]["axes"]]
    assert titles and not any("2-norm" in t or "Fubini" in t for t in titles)
    assert "Fubini–Study" in drawn["fig17_grassmann_metrics.png"]["title"]


def test_report_html_holds_every_figure_and_the_numbers_of_results_json(quick_run, read_report):
    _, res, out = quick_run
    r = read_report(out)  # self-contained, every PNG embedded byte for byte
    assert sorted(r.figures) == sorted(n[:-4] for n in FIGURES)
    assert r.values["test_acc@100"] == res["checkpoints"]["100"]["test_acc"]
    assert r.values["overlap_exact@train/100/k20"] == res["overlap"]["train"]["100"]["exact"][19]
    assert r.values["overlap_sketched@train/100/k20"] == res["overlap"]["train"]["100"]["sketched"][19]
    assert r.values["max_abs_exact_minus_sketched"] == res["overlap"]["train"]["100"]["abs_diff_exact_sketched_max"]
    assert r.values["disk_seigh"] > 0
    assert {"Parameters", "Key numbers beside the paper's", "Figures", "Timings"} <= set(r.headings)


def test_rerun_resumes_without_recomputing(quick_run, capsys):
    _, res, out = quick_run
    rc = cli.main(["run", "mnist16", "--quick", "--out", str(out), "--no-progress", "--no-figures"])
    assert rc == 0
    # this invocation's time, the cached analyses' time apart (not added as if spent now)
    printed = capsys.readouterr().out
    assert "reused from the cache: 5 analyses" in printed
    again = json.loads((out / "results.json").read_text())
    assert again["timings"]["exact_eigh"] == again["timings"]["seigh"] == 0.0
    assert again["timings_reused"]["exact_eigh"] == pytest.approx(res["timings"]["exact_eigh"])
    assert again["timings_reused"]["seigh"] == pytest.approx(res["timings"]["seigh"])
    assert again["timings"]["total"] < res["timings"]["total"] + 60
    assert again["training"]["trained_steps"] == 0 and again["training"]["resumed_from"] == 100
    assert again["overlap"]["train"]["100"]["exact"] == res["overlap"]["train"]["100"]["exact"]
    assert again["overlap"]["test"]["100"]["sketched"] == res["overlap"]["test"]["100"]["sketched"]
    assert "mnist16" not in capsys.readouterr().err
    # the cache holds both analyses of a Hessian, keyed by what determines them
    assert sorted(p.name for p in (out / "analysis").iterdir()) == [
        "exact_train_step000100.npz", "sketched_test_step000000.npz", "sketched_test_step000100.npz",
        "sketched_train_step000000.npz", "sketched_train_step000100.npz"]


def test_clean_then_rerun_takes_the_results_from_the_cache(quick_run, capsys):
    _, res, out = quick_run
    assert any((out / "seigh").iterdir())
    assert cli.main(["clean", str(out)]) == 0
    assert "deleted 4 SEIGH stores" in capsys.readouterr().out
    assert not any((out / "seigh").iterdir())
    assert cli.main(["run", "mnist16", "--quick", "--out", str(out), "--no-progress", "--no-figures"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["overlap"]["test"]["100"]["sketched"] == res["overlap"]["test"]["100"]["sketched"]
    assert not any((out / "seigh").iterdir())  # nothing recomputed


def test_passes_spend_the_same_hvps_on_a_better_eigenspace(quick_run, tmp_path, capsys):
    """Issue 15.4 on the quick run: ``--passes 1 --n-outer 20`` spends 40 HVPs (single pass: n_I = 41)
    on block Krylov; the exact analyses and checkpoints are reused, the sketched eigenspace is
    closer to the exact one."""
    import shutil

    _, res, out = quick_run
    q1 = tmp_path / "q1"
    shutil.copytree(out, q1, ignore=shutil.ignore_patterns("seigh"))
    rc = cli.main(["run", "mnist16", "--quick", "--out", str(q1), "--no-progress", "--no-figures", "--passes", "1"])
    assert rc == 0
    again = json.loads((q1 / "results.json").read_text())
    assert again["config"]["passes"] == 1 and again["config"]["n_inner"] is None
    assert again["timings"]["exact_eigh"] == 0.0 and again["training"]["trained_steps"] == 0
    one, krylov = res["overlap"]["train"]["100"], again["overlap"]["train"]["100"]
    assert krylov["exact"] == one["exact"]
    for k in ("5", "10"):
        assert krylov["eigenspace_overlap_exact_vs_sketched"][k] > one["eigenspace_overlap_exact_vs_sketched"][k]
    ev_e = np.asarray(one["eigenvalues_exact_top"][:10])
    err = {name: np.max(np.abs(np.asarray(r["eigenvalues_sketched"][:10]) - ev_e) / np.abs(ev_e))
           for name, r in (("single", one), ("krylov", krylov))}
    assert err["krylov"] < 0.5 * err["single"], err  # measured 0.47 vs 2.2
    capsys.readouterr()
    # n_I belongs to single-pass sketches
    assert cli.main(["run", "mnist16", "--quick", "--out", str(q1), "--passes", "1", "--n-inner", "41"]) == 2
    assert "applies to a single-pass sketch" in capsys.readouterr().err
