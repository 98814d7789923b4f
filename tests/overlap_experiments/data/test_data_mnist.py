"""Data sources: scikit-learn digits (default) and MNIST from torchvision's folder layout."""
import gzip

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from overlap_experiments import data  # noqa: E402
from overlap_experiments.data import mnist  # noqa: E402


def _write_idx(path, arr, gz=False):
    arr = np.asarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    payload = header + arr.tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _fake_mnist(root, n_train=60, n_test=20, gz=False):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    tr = rng.integers(0, 256, (n_train, 28, 28))
    tr[0] = 255  # an all-white image stays all-ones after resizing
    te = rng.integers(0, 256, (n_test, 28, 28))
    _write_idx(raw / "train-images-idx3-ubyte", tr, gz)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(n_train) % 10, gz)
    _write_idx(raw / "t10k-images-idx3-ubyte", te, gz)
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10, gz)
    return tr, te


def test_digits_default_source(digits):
    ds = digits
    assert ds.source["name"] == "digits" and ds.source["image_size"] == [16, 16] and ds.num_classes == 10
    assert list(ds.splits) == ["train", "val", "test"] and not ds.augment
    assert sum(len(s) for s in ds.splits.values()) == 1797
    test = ds.split("test")
    assert test.X.shape == (500, 16, 16) and len(ds.split("val")) == 200
    for split in ds.splits.values():
        assert split.X.dtype == torch.float32 and split.y.dtype == torch.int64
        assert float(split.X.min()) >= 0.0 and float(split.X.max()) <= 1.0
    assert np.bincount(test.labels()).tolist() == [50] * 10
    # the splits are disjoint: no test image appears in train
    tr = {tuple(x) for x in ds.split("train").X.reshape(len(ds.split("train")), -1).numpy().round(5)}
    assert sum(tuple(x) in tr for x in test.X.reshape(500, -1).numpy().round(5)) < 5  # duplicates in the raw set only
    with pytest.raises(ValueError, match="split"):
        ds.split("validation")


def test_the_dataset_protocol(digits):
    """``batch`` and ``labels`` of an in-memory split: the same samples as indexing its tensors."""
    test = digits.split("test")
    idx = np.array([3, 0, 499])
    X, y = test.batch(idx)
    assert torch.equal(X, test.X[idx]) and torch.equal(y, test.y[idx]) and X.shape == (3, 16, 16)
    np.testing.assert_array_equal(test.labels(), test.y.numpy())
    assert data.load("mnist16").source == digits.source  # the registry's bundled default


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("which", ["root", "mnist", "raw"])
def test_mnist_folder_layout(tmp_path, gz, which):
    tr, te = _fake_mnist(tmp_path, gz=gz)
    root = {"root": tmp_path, "mnist": tmp_path / "MNIST", "raw": tmp_path / "MNIST" / "raw"}[which]
    ds = mnist.load(root)
    assert ds.source["name"] == "mnist" and ds.source["original_size"] == [28, 28]
    X_test = ds.split("test").X
    assert [len(ds.split(s)) for s in ("train", "val", "test")] == [50, 10, 20] and X_test.shape == (20, 16, 16)
    assert ds.split("test").y.tolist() == (np.arange(20) % 10).tolist()
    # bilinear (antialiased) downsampling of the test images, in [0, 1]
    ref = torch.nn.functional.interpolate(torch.as_tensor(te, dtype=torch.float32)[:, None] / 255, size=(16, 16),
                                          mode="bilinear", antialias=True, align_corners=False)[:, 0]
    torch.testing.assert_close(X_test, ref.clamp(0, 1))
    all_train = torch.cat([ds.split("train").X, ds.split("val").X])
    assert any(torch.allclose(x, torch.ones(16, 16)) for x in all_train)


def test_missing_or_wrong_data_path(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="does not exist"):
        data.load("mnist16", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="data_root"):  # DataNotFoundError is a ValueError too
        mnist.load(tmp_path / "nowhere")
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        mnist.load(tmp_path)
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(data.DataNotFoundError, match="not a folder"):
        mnist.load(f)


def test_corrupt_idx_is_refused(tmp_path):
    _fake_mnist(tmp_path)
    p = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-7])
    with pytest.raises(ValueError, match="header says"):
        mnist.read_idx(p)
    p.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        mnist.read_idx(p)
