"""Generated ("synthetic") images of the right shapes and class count, for tests and dry runs.

Class-mean patterns (a seeded 4×4 colour pattern per class, scaled up to the
image size) plus Gaussian noise: learnable (the classes are separable), so
short training runs move the loss. Its ``source["kind"]`` is ``"synthetic"``
and every output that uses it says so: these numbers must never be mistaken
for the paper's.
"""
from __future__ import annotations

import numpy as np

from .base import Dataset, ItemSplit
from .images import TensorImages

__all__ = ["generated"]


def generated(num_classes: int, *, image_size: int = 32, n_train: int = 256, n_test: int = 128,
              seed: int = 0, augment: bool = False) -> Dataset:
    """Seeded synthetic images (3, ``image_size``, ``image_size``) in ``"train"`` (``n_train``) and
    ``"test"`` (``n_test``) splits; ``augment`` switches on the CIFAR-style random crop + flip of
    the training split, so dry runs exercise that code path."""
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
              "note": "SYNTHETIC data (no real images): for tests and dry runs only", "augment": bool(augment)}
    return Dataset({"train": ItemSplit(TensorImages(Xtr, ytr, mean, std, augment)),
                    "test": ItemSplit(TensorImages(Xte, yte, mean, std))}, num_classes, source, bool(augment))
