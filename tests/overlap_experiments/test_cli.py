"""``overlap-experiments``: subcommands and their options, bad input (exit status 2, nothing written), help."""
import importlib.util
import json

import pytest

from overlap_experiments import cli

pytest.importorskip("torch")
pytest.importorskip("torchvision")


def test_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "mnist17", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "invalid choice: 'mnist17'" in err and "cifar100_allcnnc" in err
    assert cli.main(["run", "imagenet_resnet18", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--data-root" in err and "--synthetic" in err
    assert cli.main(["run", "mnist16", "--quick", "--out", str(tmp_path), "--data-root", str(tmp_path / "nope")]) == 2
    assert "data_root" in capsys.readouterr().err
    assert cli.main(["run", "mnist16", "--quick", "--out", str(tmp_path), "--n-outer", "30", "--n-inner", "10"]) == 2
    assert "n_inner" in capsys.readouterr().err
    assert cli.main(["run", "mnist16", "--quick", "--out", str(tmp_path), "--steps", "100",
                     "--exact-steps", "200"]) == 2
    assert "exact_steps" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()
    with pytest.raises(SystemExit):
        cli.main(["run", "mnist16", "--out", str(tmp_path), "--quick", "--paper"])
    with pytest.raises(SystemExit):
        cli.main(["run", "mnist16"])  # --out is required


def test_synthetic_subcommand_is_wired(tmp_path, monkeypatch, capsys):
    from overlap_experiments.synthetic import study

    tiny = study.Grid(dims_vs_d=(16, 32), rhos_vs_d=(0.25,), dims_vs_rho=(16,), rhos_vs_rho=(0.5, 1.0),
                      table_d=32, table_rhos=(0.25,))
    monkeypatch.setattr(study, "QUICK_GRID", tiny)
    rc = cli.main(["synthetic", "--out", str(tmp_path), "--quick", "--samples", "2", "--no-figures"])
    assert rc == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["samples"] == 2 and doc["quick"] is True
    assert cli.main(["synthetic", "--out", str(tmp_path), "--samples", "0", "--no-figures"]) == 2
    assert "samples=0" in capsys.readouterr().err


def test_help_without_command(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "run" in out and "synthetic" in out and "proxies" in out


def test_each_problem_has_its_own_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "mnist16", "--help"])
    mnist = capsys.readouterr().out
    assert "--exact-steps" in mnist and "--paper" in mnist and "--synthetic" not in mnist
    with pytest.raises(SystemExit):
        cli.main(["run", "cifar10_3c3d", "--help"])
    c10 = capsys.readouterr().out
    assert "--synthetic" in c10 and "--image-size" in c10 and "--exact-steps" not in c10
    assert "cifar-10-batches-py" in c10 and "(default 16)" in c10  # the problem's own defaults in its help


def test_missing_and_bad_data_root(tmp_path, capsys):
    assert cli.main(["run", "cifar10_3c3d", "--out", str(tmp_path)]) == 2
    assert "--data-root" in capsys.readouterr().err
    assert cli.main(["run", "cifar100_allcnnc", "--out", str(tmp_path), "--data-root", str(tmp_path)]) == 2
    assert "cifar-100-python" in capsys.readouterr().err
    assert cli.main(["run", "imagenet_resnet18", "--out", str(tmp_path), "--data-root", str(tmp_path)]) == 2
    assert str(tmp_path / "train") in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


@pytest.mark.skipif(importlib.util.find_spec("dask_cuda") is not None and importlib.util.find_spec("cupy") is not None,
                    reason="dask-cuda and CuPy are installed")
def test_gpu_without_dask_cuda_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["run", "cifar10_3c3d", "--synthetic", "--gpu", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--gpu needs" in err and ("dask-cuda" in err or "cupy" in err)


def test_option_misuse(tmp_path, capsys):
    """An option a problem does not have is refused by the parser (exit status 2), naming the option."""
    for argv, option in ((["run", "mnist16", "--synthetic"], "--synthetic"),
                         (["run", "cifar10_3c3d", "--synthetic", "--paper"], "--paper"),
                         (["run", "imagenet_resnet18", "--synthetic", "--exact-steps", "0"], "--exact-steps")):
        with pytest.raises(SystemExit) as e:
            cli.main(argv + ["--out", str(tmp_path)])
        assert e.value.code == 2 and f"unrecognized arguments: {option}" in capsys.readouterr().err
    assert cli.main(["run", "cifar10_3c3d", "--synthetic", "--scheduler", "localhost", "--out", str(tmp_path)]) == 2
    assert "tcp://" in capsys.readouterr().err


def test_cuda_device_without_gpu(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert cli.main(["run", "imagenet_resnet18", "--synthetic", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "CUDA" in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()
