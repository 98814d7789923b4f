"""Cheaper proxies of overlap (paper appendix A.2, Eqs. 7–8, Figs 6–7).

For a network with parameters θ (D of them, flattened in ``model.parameters()``
order), a loss L on a fixed sample (X, y) and the parameter-magnitude order
``i_1, …, i_D`` (descending |θ_i|):

* **Gauss–Newton subtraces** (Eq. 7): ``ξ_k = Σ_{j≤k} G_{i_j i_j} / Tr(G)``
  with G the generalised Gauss–Newton matrix (curvlinops
  ``GGNLinearOperator``); its diagonal is read off GGN–vector products with
  unit vectors, ``G_ii = e_iᵀ G e_i``.
* **H² subtraces**: ``Σ_{j≤k} (H²)_{i_j i_j} / Tr(H²)`` with
  ``(H²)_{ii} = ||H e_i||²`` (curvlinops ``HessianLinearOperator``).
* **SAM perturbation measure** (Eq. 8): with ``ε* = g/||g||₂`` (g = ∇L(θ)),
  ``Δ_{λ,i} = |L(θ) − L(θ + λ ε*_i e_i)|`` and
  ``ζ_{λ,k} = Σ_{j≤k} Δ_{λ,i_j} / Σ_i Δ_{λ,i}``.

All three are compared against the uniform baseline ``k/D`` (the analogue of
the chance overlap). Every curve is returned for every ``k = 1..D`` (a
cumulative sum in magnitude order), so the normalising sums use all D
entries: D unit-vector products (in blocks) for ξ and H², D + 1 forward
passes (vectorised with ``torch.func.vmap``) for ζ. That is cheap for the
7030-parameter MNIST network these figures are drawn for.
"""
from __future__ import annotations

import logging

import numpy as np

from .. import overlap as ov
from ..models import flat_parameters
from ..progress import track

logger = logging.getLogger(__name__)

__all__ = [
    "magnitude_order", "ggn_diagonal", "h2_diagonal", "sam_deltas", "normalized_subtrace",
    "proxy_curves",
]


def _params(model):
    return [p for p in model.parameters() if p.requires_grad]


def _flat(model):
    import torch  # torch: optional dependency (the experiments extra)

    return torch.cat([p.detach().reshape(-1) for p in _params(model)])


def magnitude_order(model) -> np.ndarray:
    """Indices of the flattened parameters by descending |θ_i| (ties by index, stable):
    :func:`overlap_experiments.overlap.magnitude_order` of the model's parameters."""
    return ov.magnitude_order(flat_parameters(model))


def _check_data(X, y):
    import torch  # optional dependency

    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("X and y must be torch tensors")
    if X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]} (need the same, > 0)")


def _unit_diagonal(op, D: int, block: int, progress: bool, what: str, square: bool) -> np.ndarray:
    """``diag(op)`` (``square=False``) or the squared column norms ``||op e_i||²`` (``square=True``), by blocks of unit vectors."""
    import torch  # optional dependency

    out = np.empty(D, dtype=np.float64)
    for s in track(range(0, D, block), desc=what, unit="blocks", enabled=progress):
        e = min(s + block, D)
        E = torch.zeros(D, e - s, dtype=op.dtype)
        E[torch.arange(s, e), torch.arange(e - s)] = 1.0
        cols = (op @ E).double()
        if square:
            out[s:e] = (cols * cols).sum(0).numpy()
        else:
            out[s:e] = cols[torch.arange(s, e), torch.arange(e - s)].numpy()
    return out


def _loss_fn(loss_func):
    from torch import nn  # optional dependency

    return nn.CrossEntropyLoss() if loss_func is None else loss_func


def ggn_diagonal(model, X, y, loss_func=None, *, block: int = 256, progress: bool = False) -> np.ndarray:
    """Diagonal ``G_ii`` (D,) of the GGN of ``loss_func`` (default mean cross-entropy) at the model's θ on (X, y)."""
    from curvlinops import GGNLinearOperator  # curvlinops: optional dependency

    _check_data(X, y)
    params = _params(model)
    G = GGNLinearOperator(model, _loss_fn(loss_func), params, [(X, y)], check_deterministic=False)
    return _unit_diagonal(G, G.shape[0], block, progress, "GGN diagonal", square=False)


def h2_diagonal(model, X, y, loss_func=None, *, block: int = 256, progress: bool = False) -> np.ndarray:
    """``(H²)_ii = ||H e_i||²`` (D,) for the loss Hessian H at the model's θ on (X, y)."""
    from curvlinops import HessianLinearOperator  # curvlinops: optional dependency

    _check_data(X, y)
    params = _params(model)
    H = HessianLinearOperator(model, _loss_fn(loss_func), params, [(X, y)], check_deterministic=False)
    return _unit_diagonal(H, H.shape[0], block, progress, "H² diagonal", square=True)


def sam_deltas(model, X, y, lam: float, loss_func=None, *, block: int = 512, progress: bool = False) -> np.ndarray:
    """``Δ_{λ,i} = |L(θ) − L(θ + λ ε*_i e_i)|`` (D,) with ``ε* = ∇L/||∇L||₂`` (paper Eq. 8).

    One forward/backward pass for ``L(θ)`` and ``ε*``, then D single-coordinate
    perturbations evaluated ``block`` at a time with ``torch.func.vmap``
    (in float64, so that tiny deltas are not rounding noise).
    """
    import torch  # optional dependency

    if not (isinstance(lam, (int, float)) and np.isfinite(lam) and lam > 0):
        raise ValueError(f"lam={lam!r} must be a positive finite number (the SAM radius λ)")
    _check_data(X, y)
    loss_func = _loss_fn(loss_func)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    shapes = [p.shape for p in _params(model)]
    sizes = [p.numel() for p in _params(model)]
    X64 = X.double()

    def loss(t):
        params = {n: v.reshape(s) for n, v, s in zip(names, torch.split(t, sizes), shapes)}
        return loss_func(torch.func.functional_call(model, params, (X64,)), y)

    was_training, orig_dtype = model.training, next(model.parameters()).dtype
    model.eval().double()  # float64 throughout (buffers too); restored below
    try:
        theta = _flat(model)
        t = theta.clone().requires_grad_(True)
        L0 = loss(t)
        (g,) = torch.autograd.grad(L0, t)
        gnorm = torch.linalg.vector_norm(g)
        if not torch.isfinite(gnorm) or gnorm == 0:
            raise ValueError("the gradient is zero or not finite: ε* = g/||g|| is undefined")
        step = lam * g / gnorm  # λ ε*, applied one coordinate at a time
        D = theta.numel()
        out = np.empty(D, dtype=np.float64)
        batched = torch.func.vmap(loss)
        with torch.no_grad():
            L0 = L0.detach()
            for s in track(range(0, D, block), desc=f"SAM deltas λ={lam:g}", unit="blocks", enabled=progress):
                e = min(s + block, D)
                T = theta.repeat(e - s, 1)
                T[torch.arange(e - s), torch.arange(s, e)] += step[s:e]
                out[s:e] = (L0 - batched(T)).abs().numpy()
    finally:
        model.to(orig_dtype)
        model.train(was_training)
    return out


def normalized_subtrace(values, order) -> np.ndarray:
    """``Σ_{j≤k} v_{i_j} / Σ_i v_i`` for every k = 1..D (Eqs. 7–8 normalisation), ``order`` = i_1..i_D."""
    v = np.asarray(values, dtype=np.float64)
    order = np.asarray(order)
    if v.ndim != 1 or order.shape != v.shape:
        raise ValueError(f"values {v.shape} and order {order.shape} must be 1-D of the same length")
    if np.any(np.sort(order) != np.arange(v.size)):
        raise ValueError("order must be a permutation of 0..D-1")
    if np.any(v < 0):
        raise ValueError("values must be non-negative (diagonals of PSD matrices, or absolute deltas)")
    total = v.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("the values sum to zero or a non-finite number; the normalised subtrace is undefined")
    return np.cumsum(v[order]) / total


def proxy_curves(model, X, y, lams=(1e-3, 1e-2, 1e-1), loss_func=None, *, progress: bool = False) -> dict:
    """All proxies of appendix A.2 as curves over k = 1..D, in the parameter-magnitude order.

    Returns a dict with ``"order"``, ``"ggn"`` (ξ_k), ``"h2"``, ``"sam"``
    (``{λ: ζ_{λ,k}}``) and ``"chance"`` (k/D), each a (D,) float64 array.
    """
    order = magnitude_order(model)
    D = order.size
    out = {
        "order": order,
        "ggn": normalized_subtrace(ggn_diagonal(model, X, y, loss_func, progress=progress), order),
        "h2": normalized_subtrace(h2_diagonal(model, X, y, loss_func, progress=progress), order),
        "sam": {float(lam): normalized_subtrace(sam_deltas(model, X, y, lam, loss_func, progress=progress), order)
                for lam in lams},
        "chance": np.arange(1, D + 1) / D,
    }
    return out
