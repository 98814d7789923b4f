"""Which data each problem reads, and :func:`load` to get it as a :class:`~.base.Dataset`.

==============  =======  =====  =================================================  =========  =========
name            classes  side   real data under ``data_root``                      bundled    generated
==============  =======  =====  =================================================  =========  =========
``mnist16``     10       16     ``ROOT/MNIST/raw/*-ubyte`` (torchvision layout)    digits     no
``cifar10``     10       32     ``ROOT/cifar-10-batches-py``                        no         yes
``cifar100``    100      32     ``ROOT/cifar-100-python``                           no         yes
``imagenet``    1000     224    ``ROOT/{train,val}/<class>/*.JPEG``                 no         yes
==============  =======  =====  =================================================  =========  =========

*bundled*: what is read without a ``data_root`` (scikit-learn's digits,
:mod:`.mnist`); *generated*: whether a labelled synthetic stand-in
(:mod:`.generated`) exists for dry runs. A new problem's data is one more
:class:`Source` here (and a reader module when its layout is new).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import images, mnist
from .base import DataNotFoundError, Dataset
from .generated import generated

__all__ = ["Source", "SOURCES", "load"]


@dataclass(frozen=True)
class Source:
    """One data set: its class count, native image side, where real files live, what stands in."""

    name: str
    num_classes: int
    image_size: int
    layout: str                 # what ``data_root`` must hold (for help texts and errors)
    read: Callable              # read(data_root, augment) -> Dataset (real data)
    bundled: bool = False       # read(None, ...) works: data ships with the dependencies
    generated: bool = False     # a generated stand-in exists (``synthetic=True``)


SOURCES = {s.name: s for s in (
    Source("mnist16", 10, 16, "MNIST in torchvision's layout (ROOT/MNIST/raw/*-ubyte); default: scikit-learn's "
           "bundled digits upsampled to 16x16", lambda root, augment: mnist.load(root), bundled=True),
    Source("cifar10", 10, 32, "CIFAR-10 in torchvision's layout (ROOT/cifar-10-batches-py)",
           lambda root, augment: images.load_cifar(root, 10, augment=augment), generated=True),
    Source("cifar100", 100, 32, "CIFAR-100 in torchvision's layout (ROOT/cifar-100-python)",
           lambda root, augment: images.load_cifar(root, 100, augment=augment), generated=True),
    Source("imagenet", 1000, 224, "ImageNet as ROOT/{train,val}/<class>/*.JPEG (ImageFolder layout)",
           lambda root, augment: images.load_imagenet(root, augment=augment), generated=True),
)}


def load(name: str, data_root=None, *, synthetic: bool = False, augment: bool = False, seed: int = 0,
         image_size: int | None = None, n_train: int = 256, n_test: int = 128) -> Dataset:
    """The data set ``name`` (a key of :data:`SOURCES`): real files under ``data_root``, the bundled
    data, or (``synthetic=True``) generated images seeded by ``seed``.

    Without ``data_root``, for a source that bundles nothing and without
    ``synthetic=True``, this raises :class:`~.base.DataNotFoundError`:
    synthetic numbers must never be mistaken for the paper's.
    """
    try:
        src = SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(SOURCES)}") from None
    if synthetic:
        if not src.generated:
            raise ValueError(f"{name} has no generated stand-in (its real data is bundled)")
        return generated(src.num_classes, image_size=src.image_size if image_size is None else image_size,
                         n_train=n_train, n_test=n_test, seed=seed, augment=augment)
    if data_root is None and not src.bundled:
        raise DataNotFoundError(f"{name} needs --data-root pointing at local files ({src.layout}), "
                                "or --synthetic for a labelled synthetic dry run")
    return src.read(data_root, augment)
