"""The one dataset protocol of every problem: named splits of labelled samples.

A :class:`Dataset` holds named splits (``"train"``, ``"test"``, and
``"val"`` where the source has one), the number of classes and a ``source``
record (where the numbers came from; written to results.json). Every split
answers three questions, whatever is behind it:

* ``len(split)`` — N, its number of samples;
* ``split.labels()`` — the (N,) int64 labels, without decoding any image
  (balanced Hessian samples are drawn from them);
* ``split.batch(indices)`` — ``(X, y)``: a float32 torch tensor (b, …) of
  the samples ``indices`` and their (b,) int64 labels (SGD mini-batches, the
  stored Hessian samples).

Two kinds of split implement it: :class:`TensorSplit` (the whole split in
memory as two tensors: the 16×16 MNIST data) and :class:`ItemSplit` (a
``torch.utils.data.Dataset`` of ``(image, label)`` pairs decoded per sample,
possibly with random augmentation: CIFAR, ImageNet, generated images).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Dataset", "TensorSplit", "ItemSplit", "DataNotFoundError"]


class DataNotFoundError(FileNotFoundError, ValueError):
    """The data path given by the user does not hold the expected files."""


class TensorSplit:
    """A split held in memory: images ``X`` (N, …) float32 and labels ``y`` (N,) int64, torch tensors."""

    def __init__(self, X, y):
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}")
        self.X, self.y = X, y

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def labels(self) -> np.ndarray:
        return self.y.numpy().astype(np.int64, copy=False)

    def batch(self, indices):
        import torch  # torch: optional dependency (the experiments extra)

        t = torch.as_tensor(np.asarray(indices))
        return self.X[t], self.y[t]


class ItemSplit:
    """A split read one sample at a time from a torch-style dataset of ``(image, label)`` pairs."""

    def __init__(self, items):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def labels(self) -> np.ndarray:
        if hasattr(self.items, "targets"):  # CIFAR tensors, ImageFolder: labels without decoding
            return np.asarray(self.items.targets, dtype=np.int64)
        return np.asarray([int(self.items[i][1]) for i in range(len(self.items))], dtype=np.int64)

    def batch(self, indices):
        import torch  # optional dependency

        pairs = [self.items[int(i)] for i in np.asarray(indices)]
        return (torch.stack([torch.as_tensor(x) for x, _ in pairs]),
                torch.as_tensor([int(c) for _, c in pairs], dtype=torch.int64))


@dataclass
class Dataset:
    """Named splits, the class count and where the data came from.

    ``augment``: the ``"train"`` split applies random augmentation (drawn
    from torch's RNG, which training seeds per step).
    """

    splits: dict
    num_classes: int
    source: dict = field(default_factory=dict)
    augment: bool = False

    def split(self, name: str):
        """The split called ``name`` (a :class:`TensorSplit` or :class:`ItemSplit`)."""
        try:
            return self.splits[name]
        except KeyError:
            raise ValueError(f"split={name!r} must be one of {', '.join(map(repr, self.splits))}") from None
