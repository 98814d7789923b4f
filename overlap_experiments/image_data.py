"""Image data of the larger problems (paper §6.2): CIFAR-10, CIFAR-100, ImageNet — or synthetic.

Real data is read from the local layouts users already have; nothing is downloaded:

* CIFAR-10: ``ROOT/cifar-10-batches-py/{data_batch_1..5, test_batch}`` (the
  layout ``torchvision.datasets.CIFAR10(ROOT, download=True)`` leaves).
* CIFAR-100: ``ROOT/cifar-100-python/{train, test}`` (torchvision's CIFAR100 layout).
* ImageNet: ``ROOT/train/<wnid>/*.JPEG`` and ``ROOT/val/<wnid>/*.JPEG``
  (``torchvision.datasets.ImageFolder`` layout, 1000 class folders).

The CIFAR "python" batches are pickles by format. They are read with a
restricted unpickler that only rebuilds dicts, lists, strings, bytes and NumPy
arrays (:func:`_safe_load_batch`), so a crafted file cannot run code.

:func:`synthetic` gives a data set of the right shapes and class count
(Gaussian class-mean images plus noise, seeded) for tests and dry runs; its
``source["kind"]`` is ``"synthetic"`` and every output that uses it says so.

All loaders return an :class:`ImageData`: ``train`` and ``test`` are
``torch.utils.data.Dataset`` objects of ``(image (3, H, W) float32, label)``
pairs, normalised per channel; ``source`` describes where the numbers came from.
"""
from __future__ import annotations

import io
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["ImageData", "DataNotFoundError", "load_cifar", "load_imagenet", "synthetic", "load"]

#: Per-channel mean/std used to normalise inputs (the usual published values).
_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class DataNotFoundError(FileNotFoundError, ValueError):
    """The data path given by the user does not hold the expected files."""


@dataclass
class ImageData:
    """``train``/``test`` datasets of ``(float32 (3, H, W), int)`` pairs, ``num_classes`` and ``source``."""

    train: object
    test: object
    num_classes: int
    source: dict = field(default_factory=dict)

    def labels(self, split: str) -> np.ndarray:
        """All labels of ``split`` (for balanced Hessian samples) without decoding images."""
        ds = {"train": self.train, "test": self.test}.get(split)
        if ds is None:
            raise ValueError(f"split={split!r} must be 'train' or 'test'")
        if hasattr(ds, "targets"):
            return np.asarray(ds.targets, dtype=np.int64)
        return np.asarray([int(ds[i][1]) for i in range(len(ds))], dtype=np.int64)


# ----------------------------------------------------------------------------- CIFAR
class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR batches: only NumPy array reconstruction is allowed."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # protocol-2 spelling of a bytes literal (a pure data transform)
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from a CIFAR batch file: it is not a plain data batch")


def _safe_load_batch(path: Path) -> dict:
    """Read one CIFAR python batch (a pickled dict) without executing code."""
    with open(path, "rb") as f:
        data = _ArrayOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a CIFAR batch (a dict), got {type(data).__name__}")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in data.items()}


class _TensorImages:
    """Dataset over uint8 (N, 3, H, W) images with per-channel normalisation and optional augmentation.

    ``augment=True`` applies a random 4-pixel-padded 32×32 crop and a random
    horizontal flip per sample (the geometric part of DeepOBS's CIFAR
    augmentation), drawn from ``torch``'s RNG in the data-loading process.
    """

    def __init__(self, images_u8: np.ndarray, labels: np.ndarray, mean, std, augment: bool = False):
        import torch

        self.images = torch.from_numpy(np.ascontiguousarray(images_u8))
        self.targets = [int(v) for v in labels]
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.augment = bool(augment)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        import torch

        x = self.images[i].to(torch.float32) / 255.0
        if self.augment:
            H, W = x.shape[-2:]
            x = torch.nn.functional.pad(x, (4, 4, 4, 4))
            top, left = (int(v) for v in torch.randint(0, 9, (2,)))
            x = x[:, top:top + H, left:left + W]
            if bool(torch.rand(()) < 0.5):
                x = x.flip(-1)
        return (x - self.mean) / self.std, self.targets[i]


def load_cifar(root, num_classes: int = 10, *, augment: bool = False) -> ImageData:
    """CIFAR-10 (``num_classes=10``) or CIFAR-100 (``100``) from torchvision's folder layout under ``root``."""
    if num_classes not in (10, 100):
        raise ValueError(f"num_classes={num_classes!r} must be 10 (CIFAR-10) or 100 (CIFAR-100)")
    root = Path(root).expanduser()
    folder = root / ("cifar-10-batches-py" if num_classes == 10 else "cifar-100-python")
    if not folder.is_dir() and (root.name in ("cifar-10-batches-py", "cifar-100-python")):
        folder = root
    names = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]) if num_classes == 10 else (["train"], ["test"])
    missing = [str(folder / n) for n in names[0] + names[1] if not (folder / n).is_file()]
    if missing:
        raise DataNotFoundError(
            f"CIFAR-{num_classes} not found: expected torchvision's layout {folder}/ with "
            f"{', '.join(names[0] + names[1])}; missing {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    key = "labels" if num_classes == 10 else "fine_labels"

    def read(files):
        xs, ys = [], []
        for n in files:
            b = _safe_load_batch(folder / n)
            xs.append(np.asarray(b["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(b[key], dtype=np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    (Xtr, ytr), (Xte, yte) = read(names[0]), read(names[1])
    mean, std = _STATS[f"cifar{num_classes}"]
    source = {"kind": "real", "name": f"CIFAR-{num_classes}", "path": str(folder),
              "n_train": int(len(ytr)), "n_test": int(len(yte)), "augment": bool(augment)}
    return ImageData(_TensorImages(Xtr, ytr, mean, std, augment), _TensorImages(Xte, yte, mean, std),
                     num_classes, source)


# ----------------------------------------------------------------------------- ImageNet
def load_imagenet(root, *, augment: bool = True, image_size: int = 224) -> ImageData:
    """ImageNet from ``root/train`` and ``root/val`` in ImageFolder layout (decoded lazily, per sample).

    Train: random-resized crop to ``image_size`` and horizontal flip when
    ``augment`` (else resize to 256 + center crop); test: resize 256 + center crop.
    """
    from torchvision import datasets, transforms

    root = Path(root).expanduser()
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DataNotFoundError(
                f"ImageNet not found: expected {root / split}/<class folder>/*.JPEG (torchvision ImageFolder layout)")
    mean, std = _STATS["imagenet"]
    norm = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    plain = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(image_size), *norm])
    train_tf = (transforms.Compose([transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip(),
                                    *norm]) if augment else plain)
    train = datasets.ImageFolder(str(root / "train"), transform=train_tf)
    test = datasets.ImageFolder(str(root / "val"), transform=plain)
    if train.classes != test.classes:
        raise ValueError(f"ImageNet train and val class folders differ under {root}")
    source = {"kind": "real", "name": "ImageNet", "path": str(root), "n_train": len(train), "n_test": len(test),
              "num_classes": len(train.classes), "augment": bool(augment), "image_size": image_size}
    return ImageData(train, test, len(train.classes), source)


# ----------------------------------------------------------------------------- synthetic
def synthetic(num_classes: int, *, image_size: int = 32, n_train: int = 256, n_test: int = 128,
              seed: int = 0) -> ImageData:
    """Seeded synthetic images of the right shape: class-mean patterns plus Gaussian noise.

    Learnable (the classes are separable), so short training runs move the
    loss; clearly labelled ``source["kind"] = "synthetic"``.
    """
    for name, v in (("num_classes", num_classes), ("image_size", image_size), ("n_train", n_train),
                    ("n_test", n_test)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r} must be a positive int")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes} must be ≥ 2")
    rng = np.random.default_rng([seed, 0x1A6E])
    means = rng.uniform(0, 255, size=(num_classes, 3, 4, 4))
    reps = -(-image_size // 4)

    def make(n):
        y = np.arange(n) % num_classes
        rng.shuffle(y)
        base = np.kron(means[y], np.ones((1, 1, reps, reps)))[:, :, :image_size, :image_size]
        X = np.clip(base + rng.normal(0, 40, size=base.shape), 0, 255).astype(np.uint8)
        return X, y.astype(np.int64)

    (Xtr, ytr), (Xte, yte) = make(n_train), make(n_test)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    source = {"kind": "synthetic", "name": f"synthetic {num_classes}-class {image_size}×{image_size}",
              "seed": int(seed), "n_train": n_train, "n_test": n_test,
              "note": "SYNTHETIC data (no real images): for tests and dry runs only"}
    return ImageData(_TensorImages(Xtr, ytr, mean, std), _TensorImages(Xte, yte, mean, std), num_classes, source)


def load(dataset: str, data_root=None, *, synthetic_data: bool = False, seed: int = 0, **kwargs) -> ImageData:
    """Data of ``dataset`` in {"cifar10", "cifar100", "imagenet"}: real from ``data_root`` or synthetic.

    Without ``data_root`` and without ``synthetic_data=True`` this raises: the
    large problems have no bundled real data, and synthetic numbers must never
    be mistaken for the paper's.
    """
    specs = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet": (1000, 224)}
    if dataset not in specs:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(specs)}")
    classes, size = specs[dataset]
    if synthetic_data:
        return synthetic(kwargs.pop("num_classes", classes), image_size=kwargs.pop("image_size", size),
                         seed=seed, **kwargs)
    if data_root is None:
        raise DataNotFoundError(
            f"{dataset} needs --data-root pointing at local files (see overlap_experiments.image_data), "
            "or --synthetic for a labelled synthetic dry run")
    if dataset == "imagenet":
        return load_imagenet(data_root, **kwargs)
    return load_cifar(data_root, classes, **kwargs)
