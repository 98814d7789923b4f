"""The 16×16 MNIST network of paper §6.1 / Table 1: the tanh MLP of Martens & Grosse (2015).

Layer widths 256-20-20-20-20-20-10, i.e.

    256·20 + 20  +  4·(20·20 + 20)  +  20·10 + 10  =  5140 + 1680 + 210  =  7030

parameters D (asserted).
"""
from __future__ import annotations

import math

from .parameters import count_parameters

__all__ = ["MNIST_MLP_WIDTHS", "MNIST_MLP_PARAMETERS", "mnist_mlp"]

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
    from torch import nn  # torch: optional dependency (the experiments extra)

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
    import torch  # optional dependency
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
