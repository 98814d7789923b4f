"""Networks of the paper's problems (paper Table 1), looked up by architecture name.

=====================  =======================================  ===========  ========================
name                   network                                  D            module
=====================  =======================================  ===========  ========================
``mnist_mlp``          tanh MLP 256-20-20-20-20-20-10            7,030       :mod:`.mlp`
``cifar10_3c3d``       3c3d (DeepOBS), 10 classes                 895,210    :mod:`.convnets`
``cifar100_allcnnc``   All-CNN-C, 100 classes                   1,387,108    :mod:`.convnets`
``imagenet_resnet18``  ResNet-18 (torchvision), 1000 classes   11,689,512    :mod:`.convnets`
=====================  =======================================  ===========  ========================

:func:`build` takes a name, so a Hessian *recipe* (:mod:`overlap_experiments.hessian`)
ships a string to Dask workers, not a pickled module. Every builder takes a
``seed`` that draws the initial weights from a private generator.
"""
from __future__ import annotations

from .convnets import cifar10_3c3d, cifar100_allcnnc, imagenet_resnet18
from .mlp import MNIST_MLP_PARAMETERS, MNIST_MLP_WIDTHS, mnist_mlp
from .parameters import count_parameters, flat_parameters

__all__ = [
    "ARCHITECTURES", "build", "count_parameters", "flat_parameters",
    "MNIST_MLP_WIDTHS", "MNIST_MLP_PARAMETERS", "mnist_mlp",
]

#: name -> builder(seed=...) of every architecture of paper Table 1.
ARCHITECTURES = {
    "mnist_mlp": mnist_mlp,
    "cifar10_3c3d": cifar10_3c3d,
    "cifar100_allcnnc": cifar100_allcnnc,
    "imagenet_resnet18": imagenet_resnet18,
}


def build(arch: str, seed: int | None = None):
    """Build architecture ``arch`` (a key of :data:`ARCHITECTURES`) with its paper class count."""
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"arch={arch!r} is not a known architecture; choose one of {sorted(ARCHITECTURES)}") from None
    return builder(seed=seed)
