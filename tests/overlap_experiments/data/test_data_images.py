"""Image data of the larger problems: local layouts, safe unpickling, generated stand-ins."""
import os
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from overlap_experiments import data as dsets  # noqa: E402
from overlap_experiments.data import images as idata  # noqa: E402
from overlap_experiments.data.generated import generated  # noqa: E402


def _write_cifar10(root, n_per_batch=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, f, protocol=2)
        batches[name] = (data, labels)
    return batches


def test_cifar10_layout_is_read_and_normalised(tmp_path):
    batches = _write_cifar10(tmp_path)
    data = idata.load_cifar(tmp_path, 10)
    assert len(data.split("train")) == 30 and len(data.split("test")) == 6 and data.num_classes == 10
    X, y = data.split("test").batch([2, 0])
    raw, labels = batches["test_batch"]
    assert X.shape == (2, 3, 32, 32) and X.dtype == torch.float32 and y.tolist() == [labels[2], labels[0]]
    mean, std = idata.STATS["cifar10"]
    expect = (raw[2].reshape(3, 32, 32) / 255.0 - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(X[0].numpy(), expect, atol=1e-5)
    np.testing.assert_array_equal(data.split("train").labels()[:6], batches["data_batch_1"][1])
    assert data.source["kind"] == "real" and data.source["name"] == "CIFAR-10" and not data.augment


def test_augmentation_keeps_shape_and_changes_pixels(tmp_path):
    _write_cifar10(tmp_path)
    data = idata.load_cifar(tmp_path, 10, augment=True)
    assert data.augment
    torch.manual_seed(0)
    xs = [data.split("train").batch([0])[0][0] for _ in range(8)]
    assert all(x.shape == (3, 32, 32) for x in xs)
    assert any(not torch.equal(xs[0], x) for x in xs[1:])


def test_malicious_batch_is_refused(tmp_path):
    _write_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        idata.load_cifar(tmp_path, 10)
    assert not (tmp_path / "pwned").exists()


def test_missing_data_names_the_expected_path(tmp_path):
    with pytest.raises(dsets.DataNotFoundError, match="cifar-100-python"):
        idata.load_cifar(tmp_path, 100)
    with pytest.raises(dsets.DataNotFoundError, match="cifar-100-python"):
        dsets.load("cifar100", tmp_path)
    with pytest.raises(dsets.DataNotFoundError, match="ImageFolder"):
        idata.load_imagenet(tmp_path)
    with pytest.raises(dsets.DataNotFoundError, match="--data-root"):
        dsets.load("cifar10")
    with pytest.raises(ValueError, match="unknown dataset"):
        dsets.load("svhn", tmp_path)
    with pytest.raises(ValueError, match="no generated stand-in"):
        dsets.load("mnist16", synthetic=True)


def test_imagenet_imagefolder_layout(tmp_path):
    pytest.importorskip("torchvision")
    from PIL import Image

    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for wnid in ("n01440764", "n01443537"):
            d = tmp_path / split / wnid
            d.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(d / f"{i}.png")
    data = idata.load_imagenet(tmp_path, image_size=32)
    X, y = data.split("test").batch([3])
    assert X.shape == (1, 3, 32, 32) and y.tolist() == [1] and data.num_classes == 2
    np.testing.assert_array_equal(data.split("test").labels(), [0, 0, 1, 1])


def test_generated_is_seeded_labelled_and_balanced():
    a = generated(10, n_train=40, n_test=20, seed=3)
    b = generated(10, n_train=40, n_test=20, seed=3)
    assert a.source["kind"] == "synthetic" and "SYNTHETIC" in a.source["note"]
    assert np.array_equal(a.split("train").labels(), b.split("train").labels())
    assert np.bincount(a.split("train").labels()).tolist() == [4] * 10
    assert torch.equal(a.split("train").batch([0])[0], b.split("train").batch([0])[0])
    small = dsets.load("imagenet", synthetic=True, image_size=16, n_train=10, n_test=5, augment=True)
    assert small.split("train").batch([0])[0].shape == (1, 3, 16, 16) and small.num_classes == 1000
    assert small.augment and small.source["augment"] is True
    assert generated(5, image_size=16).split("test").batch([0, 1])[0].shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="n_train"):
        generated(10, n_train=0)
