"""The non-Hessian examples run at a small size and agree with their peers (issue 20)."""

import pytest
from _scripts import load_script  # tests/_scripts.py


def _load(name):
    return load_script("examples", name)


def test_pca_matches_numpy_exactly_and_sklearn_on_a_subsample(capsys):
    mod = _load("pca_zarr")
    assert mod.main(["--rows", "20000", "--features", "40", "--subsample", "5000", "--exact"]) == 0
    out = capsys.readouterr().out
    err = float(out.split("max_rel_err_variance_vs_numpy:")[1].split()[0])
    angle = float(out.split("angle_vs_numpy:")[1].split()[0])
    assert err < 1e-5 and angle < 1e-4  # the exact SVD, up to float32 data


def test_lstsq_matches_numpy(capsys):
    mod = _load("lstsq_out_of_core")
    assert mod.main(["--rows", "30000", "--cols", "20"]) == 0
    out = capsys.readouterr().out
    assert float(out.split("rel_diff_vs_numpy:")[1].split()[0]) < 1e-4


@pytest.mark.parametrize("name, args, message", [
    ("pca_zarr", ["--rows", "10", "--features", "20"], "must be at least --features"),
    ("lstsq_out_of_core", ["--rows", "5", "--cols", "10"], "need --rows"),
    ("graph_laplacian", ["--nodes", "50"], "need --communities >= 2"),
    ("graph_laplacian", ["--passes", "2", "-1"], "--passes >= 0"),
])
def test_bad_sizes_are_usage_errors(name, args, message, capsys):
    with pytest.raises(SystemExit) as e:
        _load(name).main(args)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_graph_laplacian_block_krylov_reaches_eigsh(capsys):
    """Example (1): the 8 smallest eigenpairs of a planted-partition graph's normalised Laplacian;
    8 passes of block Krylov agree with eigsh, the single pass is far off and its residuals say so."""
    mod = _load("graph_laplacian")
    with pytest.warns(Warning):  # the single pass's TailDominatedWarning
        assert mod.main(["--nodes", "20000", "--passes", "8", "0"]) == 0
    out = capsys.readouterr().out
    err8 = float(out.split("passes=8: max_rel_err=")[1].split()[0])
    err0 = float(out.split("passes=0: max_rel_err=")[1].split()[0])
    assert err8 < 1e-6 and err0 > 0.1
