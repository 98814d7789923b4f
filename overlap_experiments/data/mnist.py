"""Data for the 16×16 MNIST problem (paper §6.1).

Two sources, both giving 16×16 grey images in [0, 1] and labels 0–9:

* ``"mnist"`` — the real MNIST digits, read from local files laid out as
  torchvision stores them: ``ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``
  (optionally ``.gz``); ``ROOT`` may also be the ``MNIST`` or the ``raw`` folder
  itself. Nothing is downloaded. The 28×28 images are downsampled to 16×16
  with antialiased bilinear interpolation. Splits: the 60,000 training
  images are split into 50,000 train (so B = 500 gives T = 100 steps per
  epoch, as in paper Table 1) and 10,000 validation; test = the 10,000 t10k images.
* ``"digits"`` (default, needs no download) — scikit-learn's bundled
  handwritten digits (UCI optdigits test set, 1,797 real 8×8 images scanned
  from 43 writers), scaled from 0–16 to [0, 1] and upsampled to 16×16 with
  bilinear interpolation. Splits (balanced per class, fixed): 50 per class
  test (500), 20 per class validation (200), the remaining 1,097 train —
  with B = 500 that is 2 steps per epoch, so 1000 steps revisit each image
  many times (the network still reaches ~95% test accuracy).

Both load into the :class:`~overlap_experiments.data.base.Dataset` protocol
with three in-memory splits (:class:`~.base.TensorSplit`): ``"train"``,
``"val"``, ``"test"``, images (N, 16, 16) float32, labels (N,) int64. Every
result records :attr:`Dataset.source` (name, files, sizes, resizing).
"""
from __future__ import annotations

import functools
import gzip
import logging
import os
from pathlib import Path

import numpy as np

from .base import DataNotFoundError, Dataset, TensorSplit

logger = logging.getLogger(__name__)

__all__ = ["load", "load_digits16", "load_mnist16", "read_idx", "resolve_mnist_root", "IMAGE_SIZE"]

IMAGE_SIZE = 16
NUM_CLASSES = 10
_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
#: fixed seed of the train/validation/test split (independent of the training seed)
SPLIT_SEED = 20240


# ---------------------------------------------------------------------------- helpers
def _resize(images_u8_or_float, scale: float, antialias: bool):
    """(N, h, w) array → (N, 16, 16) float32 torch tensor, values × ``scale``, bilinear."""
    import torch  # torch: optional dependency (the experiments extra)
    import torch.nn.functional as F

    x = torch.as_tensor(np.asarray(images_u8_or_float), dtype=torch.float32) * scale
    x = F.interpolate(x[:, None], size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear",
                      align_corners=False, antialias=antialias)
    return x[:, 0].clamp_(0.0, 1.0).contiguous()


def _split_balanced(y, n_test: int, n_val: int, seed: int):
    """Disjoint (train, val, test) index arrays, test/val balanced per class."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    tr, va, te = [], [], []
    for c in range(NUM_CLASSES):
        idx = rng.permutation(np.flatnonzero(y == c))
        te.append(idx[:n_test])
        va.append(idx[n_test:n_test + n_val])
        tr.append(idx[n_test + n_val:])
    return tuple(np.sort(np.concatenate(a)) for a in (tr, va, te))


# ---------------------------------------------------------------------------- digits
@functools.lru_cache(maxsize=2)
def load_digits16() -> Dataset:
    """scikit-learn's digits, upsampled 8×8 → 16×16 (see module docstring)."""
    import torch  # optional dependencies
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32)  # (1797, 8, 8), values 0..16
    labels = bunch.target.astype(np.int64)
    X = _resize(images, 1.0 / 16.0, antialias=False)
    y = torch.as_tensor(labels)
    tr, va, te = _split_balanced(labels, n_test=50, n_val=20, seed=SPLIT_SEED)
    source = {
        "name": "digits",
        "description": "scikit-learn load_digits (UCI optdigits, 1797 real 8x8 handwritten digits), "
                       "bilinear upsampling to 16x16, pixel values scaled to [0, 1]",
        "path": None,
        "original_size": [8, 8],
        "image_size": [IMAGE_SIZE, IMAGE_SIZE],
        "resize": "bilinear",
        "n_train": int(tr.size), "n_val": int(va.size), "n_test": int(te.size),
        "split": "50/class test, 20/class validation, rest train (fixed seed)",
    }
    logger.info("loaded scikit-learn digits: %d train / %d val / %d test", tr.size, va.size, te.size)
    return _dataset((X[tr], y[tr]), (X[va], y[va]), (X[te], y[te]), source)


# ---------------------------------------------------------------------------- MNIST
def resolve_mnist_root(data_root) -> Path:
    """The folder holding the four MNIST idx files (see module docstring).

    Raises :class:`DataNotFoundError` (a ``FileNotFoundError`` and ``ValueError``)
    naming ``data_root`` and the missing files.
    """
    if data_root is None or (isinstance(data_root, str) and not data_root.strip()):
        raise DataNotFoundError("data_root must be a folder path, got an empty value")
    root = Path(os.fspath(data_root)).expanduser()
    if not root.exists():
        raise DataNotFoundError(f"data_root={str(root)!r} does not exist (expected torchvision's "
                                "MNIST layout ROOT/MNIST/raw/*-ubyte)")
    if not root.is_dir():
        raise DataNotFoundError(f"data_root={str(root)!r} is not a folder")
    candidates = [root / "MNIST" / "raw", root / "raw", root]
    for cand in candidates:
        if all(_idx_path(cand, f) is not None for f in _MNIST_FILES.values()):
            return cand
    missing = [f for f in _MNIST_FILES.values() if _idx_path(candidates[0], f) is None]
    raise DataNotFoundError(
        f"data_root={str(root)!r} does not hold the MNIST files in torchvision's layout: "
        f"looked in {', '.join(str(c) for c in candidates)}; missing e.g. {missing or list(_MNIST_FILES.values())} "
        "(each may also end in .gz)"
    )


def _idx_path(folder: Path, name: str) -> Path | None:
    for cand in (folder / name, folder / (name + ".gz")):
        if cand.is_file():
            return cand
    return None


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format; ``.gz`` allowed) as a NumPy array.

    Header: 2 zero bytes, a type code (0x08 = unsigned byte), the number of
    dimensions, then one big-endian uint32 per dimension.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise ValueError(f"{path}: only unsigned-byte IDX files are supported (type code {data[2]:#x})")
    nd = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd))
    offset = 4 + 4 * nd
    count = int(np.prod(shape)) if shape else 0
    if len(data) - offset != count:
        raise ValueError(f"{path}: header says shape {shape} ({count} bytes) but file has {len(data) - offset}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape).copy()


@functools.lru_cache(maxsize=2)
def _load_mnist16_cached(folder: str) -> Dataset:
    import torch  # optional dependency

    folder_p = Path(folder)
    arrays = {k: read_idx(_idx_path(folder_p, v)) for k, v in _MNIST_FILES.items()}
    for split in ("train", "test"):
        im, lab = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if im.ndim != 3 or lab.ndim != 1 or im.shape[0] != lab.shape[0]:
            raise ValueError(f"MNIST {split} files in {folder} have inconsistent shapes {im.shape} / {lab.shape}")
        if lab.size and lab.max() > 9:
            raise ValueError(f"MNIST {split} labels in {folder} exceed 9")
    Xtr_all = _resize(arrays["train_images"], 1.0 / 255.0, antialias=True)
    ytr_all = torch.as_tensor(arrays["train_labels"].astype(np.int64))
    X_test = _resize(arrays["test_images"], 1.0 / 255.0, antialias=True)
    y_test = torch.as_tensor(arrays["test_labels"].astype(np.int64))
    n = Xtr_all.shape[0]
    n_val = n // 6  # 60,000 -> 50,000 train + 10,000 validation
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    va, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    source = {
        "name": "mnist",
        "description": "MNIST (LeCun et al.) from local idx files, 28x28 downsampled to 16x16 "
                       "(antialiased bilinear), pixel values scaled to [0, 1]",
        "path": str(folder_p.resolve()),
        "original_size": [int(arrays["train_images"].shape[1]), int(arrays["train_images"].shape[2])],
        "image_size": [IMAGE_SIZE, IMAGE_SIZE],
        "resize": "bilinear (antialias)",
        "n_train": int(tr.size), "n_val": int(va.size), "n_test": int(X_test.shape[0]),
        "split": "training files split 5:1 into train/validation (fixed seed); test = t10k files",
    }
    logger.info("loaded MNIST from %s: %d train / %d val / %d test", folder, tr.size, va.size, X_test.shape[0])
    return _dataset((Xtr_all[tr], ytr_all[tr]), (Xtr_all[va], ytr_all[va]), (X_test, y_test), source)


def _dataset(train, val, test, source) -> Dataset:
    return Dataset({"train": TensorSplit(*train), "val": TensorSplit(*val), "test": TensorSplit(*test)},
                   NUM_CLASSES, source)


def load_mnist16(data_root) -> Dataset:
    """Real MNIST from ``data_root`` (torchvision layout), downsampled to 16×16."""
    return _load_mnist16_cached(str(resolve_mnist_root(data_root).resolve()))


def load(data_root=None) -> Dataset:
    """MNIST from ``data_root`` when given, else scikit-learn's digits (see module docstring)."""
    if data_root is None:
        return load_digits16()
    return load_mnist16(data_root)
