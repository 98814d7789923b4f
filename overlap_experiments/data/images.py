"""Image data of the larger problems (paper §6.2): CIFAR-10, CIFAR-100, ImageNet.

Real data is read from the local layouts users already have; nothing is downloaded:

* CIFAR-10: ``ROOT/cifar-10-batches-py/{data_batch_1..5, test_batch}`` (the
  layout ``torchvision.datasets.CIFAR10(ROOT, download=True)`` leaves).
* CIFAR-100: ``ROOT/cifar-100-python/{train, test}`` (torchvision's CIFAR100 layout).
* ImageNet: ``ROOT/train/<wnid>/*.JPEG`` and ``ROOT/val/<wnid>/*.JPEG``
  (``torchvision.datasets.ImageFolder`` layout, 1000 class folders).

The CIFAR "python" batches are pickles by format. They are read with a
restricted unpickler that only rebuilds dicts, lists, strings, bytes and NumPy
arrays (:func:`_safe_load_batch`), so a crafted file cannot run code.

Both loaders return a :class:`~overlap_experiments.data.base.Dataset` with
``"train"`` and ``"test"`` :class:`~.base.ItemSplit` s of ``(image (3, H, W)
float32, label)`` pairs, normalised per channel; ``source`` describes where
the numbers came from. (Generated stand-ins of the same shapes are in
:mod:`.generated`.)
"""
from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path

import numpy as np

from .base import DataNotFoundError, Dataset, ItemSplit

logger = logging.getLogger(__name__)

__all__ = ["load_cifar", "load_imagenet", "TensorImages", "STATS"]

#: Per-channel mean/std used to normalise inputs (the usual published values).
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


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


class TensorImages:
    """Dataset over uint8 (N, 3, H, W) images with per-channel normalisation and optional augmentation.

    ``augment=True`` applies a random 4-pixel-padded 32×32 crop and a random
    horizontal flip per sample (the geometric part of DeepOBS's CIFAR
    augmentation), drawn from ``torch``'s RNG in the data-loading process.
    """

    def __init__(self, images_u8: np.ndarray, labels: np.ndarray, mean, std, augment: bool = False):
        import torch  # torch: optional dependency (the experiments extra)

        self.images = torch.from_numpy(np.ascontiguousarray(images_u8))
        self.targets = [int(v) for v in labels]
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.augment = bool(augment)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        import torch  # optional dependency

        x = self.images[i].to(torch.float32) / 255.0
        if self.augment:
            H, W = x.shape[-2:]
            x = torch.nn.functional.pad(x, (4, 4, 4, 4))
            top, left = (int(v) for v in torch.randint(0, 9, (2,)))
            x = x[:, top:top + H, left:left + W]
            if bool(torch.rand(()) < 0.5):
                x = x.flip(-1)
        return (x - self.mean) / self.std, self.targets[i]


def load_cifar(root, num_classes: int = 10, *, augment: bool = False) -> Dataset:
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
    mean, std = STATS[f"cifar{num_classes}"]
    source = {"kind": "real", "name": f"CIFAR-{num_classes}", "path": str(folder),
              "n_train": int(len(ytr)), "n_test": int(len(yte)), "augment": bool(augment)}
    return Dataset({"train": ItemSplit(TensorImages(Xtr, ytr, mean, std, augment)),
                    "test": ItemSplit(TensorImages(Xte, yte, mean, std))}, num_classes, source, bool(augment))


# ----------------------------------------------------------------------------- ImageNet
def load_imagenet(root, *, augment: bool = True, image_size: int = 224) -> Dataset:
    """ImageNet from ``root/train`` and ``root/val`` in ImageFolder layout (decoded lazily, per sample).

    Train: random-resized crop to ``image_size`` and horizontal flip when
    ``augment`` (else resize to 256 + center crop); test: resize 256 + center crop.
    """
    from torchvision import datasets, transforms  # torchvision: optional dependency

    root = Path(root).expanduser()
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DataNotFoundError(
                f"ImageNet not found: expected {root / split}/<class folder>/*.JPEG (torchvision ImageFolder layout)")
    mean, std = STATS["imagenet"]
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
    return Dataset({"train": ItemSplit(train), "test": ItemSplit(test)}, len(train.classes), source, bool(augment))
