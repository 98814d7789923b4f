"""The two reports: which problem gets which, and the sketch-only entry of one Hessian."""
import numpy as np
import pytest

from overlap_experiments import problems, reports
from overlap_experiments.reports import sketch_only

NAMES = ("BASIS_COLUMNS", "checkpoint_metrics", "assemble", "make_figures", "print_summary")


def test_problems_with_exact_hessians_get_the_comparison():
    assert reports.for_problem(problems.get("mnist16")) is reports.comparison
    for name in ("cifar10_3c3d", "cifar100_allcnnc", "imagenet_resnet18"):
        assert reports.for_problem(problems.get(name)) is reports.sketch_only
    for report in (reports.comparison, reports.sketch_only):
        assert all(hasattr(report, n) for n in NAMES)
    assert reports.comparison.BASIS_COLUMNS == 350 and reports.sketch_only.BASIS_COLUMNS == 0


def test_sketch_only_entry():
    rec = {"eigenvalues": np.array([-3.0, 2.0]), "overlap": np.array([0.5, 0.25]), "n_samples": 8, "store": "s",
           "stages": {"measure": 4.0, "qr": 1.0}, "seconds_overlap": 0.5, "seconds": 6.0, "per_hvp": 0.8,
           "seconds_this_call": 0.0}
    e = sketch_only._entry(rec, 2, 100)
    assert e["k"] == [1, 2] and e["chance"] == [0.01, 0.02] and e["ratio"] == pytest.approx([50.0, 12.5])
    assert e["eigenvalues"] == [-3.0, 2.0] and e["n_samples"] == 8 and e["store"] == "s"
    assert e["timings"]["measurement"] == 4.0 and e["timings"]["rest"] == 1.5 and e["timings"]["this_call"] == 0.0
