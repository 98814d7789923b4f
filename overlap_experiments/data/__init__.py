"""Data of every problem behind one protocol (:mod:`.base`), and class-balanced Hessian samples.

* :mod:`.base` — :class:`Dataset` (named splits, class count, source record)
  and its two kinds of split; :class:`DataNotFoundError`.
* :mod:`.sources` — which data each problem reads; :func:`load`.
* :mod:`.mnist` (16×16 MNIST or scikit-learn's digits), :mod:`.images`
  (CIFAR-10/100, ImageNet), :mod:`.generated` (synthetic stand-ins) — the readers.
* :mod:`.sampling` — :func:`balanced_sample`, the Hessian samples of Table 1.
"""
from .base import DataNotFoundError, Dataset, ItemSplit, TensorSplit
from .sampling import balanced_sample
from .sources import SOURCES, Source, load

__all__ = ["Dataset", "TensorSplit", "ItemSplit", "DataNotFoundError", "balanced_sample", "SOURCES", "Source",
           "load"]
