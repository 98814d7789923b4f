"""A network's parameters as the Hessian sees them: their number D and the flat vector θ.

The order is ``model.parameters()`` order (trainable ones only): the order
of the Hessian's rows and columns and of the magnitude masks.
"""
from __future__ import annotations

import numpy as np

__all__ = ["count_parameters", "flat_parameters"]


def count_parameters(model) -> int:
    """Number of trainable scalar parameters D of ``model``."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def flat_parameters(model) -> np.ndarray:
    """All trainable parameters as one float64 NumPy vector θ (D,), in
    ``model.parameters()`` order — the order of the Hessian's rows/columns."""
    return np.concatenate([p.detach().cpu().double().reshape(-1).numpy()
                           for p in model.parameters() if p.requires_grad])
