"""CLI routing and error messages of ``overlap-experiments run`` for the large problems."""
import importlib.util

import pytest

from overlap_experiments import cli


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
    assert cli.main(["run", "mnist16", "--synthetic", "--out", str(tmp_path)]) == 2
    assert "--synthetic is an option of the large problems" in capsys.readouterr().err
    assert cli.main(["run", "cifar10_3c3d", "--synthetic", "--paper", "--out", str(tmp_path)]) == 2
    assert "mnist16 only" in capsys.readouterr().err
    assert cli.main(["run", "cifar10_3c3d", "--synthetic", "--scheduler", "localhost", "--out", str(tmp_path)]) == 2
    assert "tcp://" in capsys.readouterr().err


def test_cuda_device_without_gpu(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert cli.main(["run", "imagenet_resnet18", "--synthetic", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "CUDA" in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()
