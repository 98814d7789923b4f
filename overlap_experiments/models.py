"""Network architectures of the paper's problems (paper Table 1).

The 16×16 MNIST model is built here: the tanh multilayer perceptron of
Martens & Grosse (2015), layer widths 256-20-20-20-20-20-10, i.e.

    256·20 + 20  +  4·(20·20 + 20)  +  20·10 + 10  =  5140 + 1680 + 210  =  7030

parameters (paper §6.1, Table 1). The three larger networks of §6.2 come from
:mod:`overlap_experiments.convnets` and are registered under the names
``cifar10_3c3d`` (895,210 parameters), ``cifar100_allcnnc`` (1,387,108) and
``imagenet_resnet18`` (11,689,512), each with the paper's class count and its
parameter count asserted. Architectures are looked up by name with
:func:`build` so that a Hessian *recipe* (see :mod:`overlap_experiments.hessian`)
only needs to carry a string, not a pickled module.
"""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

__all__ = [
    "MNIST_MLP_WIDTHS", "MNIST_MLP_PARAMETERS", "ARCHITECTURES",
    "mnist_mlp", "build", "count_parameters", "flat_parameters",
]

#: Layer widths of the Martens & Grosse (2015) tanh MLP (input 16×16 = 256 pixels, 10 classes).
MNIST_MLP_WIDTHS = (256, 20, 20, 20, 20, 20, 10)
#: Its number of parameters D (paper Table 1).
MNIST_MLP_PARAMETERS = 7030


def mnist_mlp(seed: int | None = None):
    """The tanh MLP 256-20-20-20-20-20-10 with exactly D = 7030 parameters.

    Layers are ``Flatten, Linear, Tanh, …, Linear`` (no activation after the
    last layer: it outputs the 10 logits for the cross-entropy loss). Weights
    use PyTorch's default ``Linear`` initialisation, drawn from a private
    ``torch.Generator`` seeded with ``seed`` (the global RNG is left alone);
    ``seed=None`` uses the global RNG.

    Returns
    -------
    torch.nn.Sequential mapping (N, 16, 16) or (N, 256) float32 inputs to (N, 10) logits.
    """
    import torch
    from torch import nn

    layers: list = [nn.Flatten()]
    widths = MNIST_MLP_WIDTHS
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
    model = nn.Sequential(*layers)
    if seed is not None:
        _seeded_reset(model, seed)
    D = count_parameters(model)
    assert D == MNIST_MLP_PARAMETERS, f"tanh MLP has {D} parameters, expected {MNIST_MLP_PARAMETERS}"
    return model


def _seeded_reset(model, seed: int) -> None:
    """Re-draw every Linear layer as PyTorch does by default (Kaiming-uniform
    weights with a=√5, uniform bias in ±1/√fan_in), from a generator seeded
    with ``seed``: deterministic and independent of the global RNG."""
    import math

    import torch
    from torch import nn

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                fan_in = m.weight.shape[1]
                bound = 1.0 / math.sqrt(fan_in)  # = gain·√(3/fan_in) for a=√5
                m.weight.uniform_(-bound, bound, generator=g)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound, generator=g)


def _convnet(name: str):
    def builder(seed: int | None = None):
        from . import convnets

        return getattr(convnets, name)(seed=seed)

    builder.__name__ = name
    builder.__doc__ = f"The paper-size ``convnets.{name}`` (Table 1 class count and parameter count)."
    return builder


#: name -> builder(seed) for the architectures this module can build.
ARCHITECTURES = {"mnist_mlp": mnist_mlp, **{n: _convnet(n) for n in
                                            ("cifar10_3c3d", "cifar100_allcnnc", "imagenet_resnet18")}}


def build(arch: str, seed: int | None = None):
    """Build architecture ``arch`` (a key of :data:`ARCHITECTURES`)."""
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"arch={arch!r} is not a known architecture; choose one of {sorted(ARCHITECTURES)}") from None
    return builder(seed)


def count_parameters(model) -> int:
    """Number of trainable scalar parameters D of ``model``."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def flat_parameters(model):
    """All trainable parameters as one float64 NumPy vector θ of length D, in
    ``model.parameters()`` order — the order of the Hessian's rows/columns."""
    import numpy as np

    return np.concatenate([p.detach().cpu().double().reshape(-1).numpy()
                           for p in model.parameters() if p.requires_grad])
