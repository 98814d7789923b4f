"""The loss Hessian of a network on a fixed sample, as a sketchla operator (paper §2.1, §6).

The Hessian of paper §2.1 / §6.1 is that of the mean cross-entropy over a
fixed set of N samples (e.g. 500 train or 500 test images, 50 per class),

    H = (1/N) Σ_n ∇²_θ ℓ(f_θ(x_n), y_n)      (D × D, rows/columns in ``model.parameters()`` order),

applied matrix-free with curvlinops' ``HessianLinearOperator`` (forward-over-
reverse Hessian-vector products, vmapped over the columns of a block).
"""
from __future__ import annotations

import copy
import threading

import numpy as np

import sketchla as sk

from ..devices import resolve_device

__all__ = ["HessianOperator", "DEFAULT_BLOCK"]

#: columns per vmapped Hessian-vector-product batch (memory ~ block · N · width)
DEFAULT_BLOCK = 256


class HessianOperator(sk.LinearOperator):
    """The loss Hessian of ``model`` on ``(X, y)`` as a symmetric D × D operator.

    Parameters
    ----------
    model : torch.nn.Module (its parameters, in ``parameters()`` order, are θ);
        a private copy is kept (cast to ``dtype``).
    X, y : inputs (N, …) and integer labels (N,) of the fixed sample.
    dtype : "float32" (default, as the paper) or "float64"; the model and data
        are cast to it for the products.
    block : columns per vmapped product (bounds memory; the result does not depend on it).
    batch_size : samples per curvlinops mini-batch (default: all N at once).
    device : torch device of the products: ``"cpu"`` (default), ``"cuda"``,
        ``"cuda:1"``, … or ``"auto"`` (CUDA when available, else CPU). The
        model and the sample are moved there once; under ``dask-cuda`` every
        worker sees its own GPU as ``"cuda"``, so a recipe built with
        ``device="auto"`` lands on the worker's GPU.
    vectorize : ``True`` (default): each product of up to ``block`` columns is
        one vmapped pass (forward once, tangents batched); ``False``: one
        Hessian-vector product per column (``benchmarks/hvp_batching.py``
        compares the two).

    The model is put in ``eval()`` mode: dropout is off and BatchNorm uses its
    running statistics, so H is a fixed symmetric matrix.

    ``matmat(V)`` takes a NumPy or CuPy ``D × b`` block and returns ``H V``
    in the same module and dtype (CuPy blocks go to and from a CUDA device
    through DLPack, without a host copy). Products are serialised by a lock: the
    functional calls inside curvlinops temporarily swap the module's
    parameters and must not interleave between threads (each product uses
    every core through PyTorch's intra-op parallelism anyway).
    """

    def __init__(self, model, X, y, *, dtype="float32", block: int = DEFAULT_BLOCK, batch_size=None,
                 device="cpu", vectorize: bool = True):
        import torch  # torch: optional dependency (the experiments extra)

        params = [p for p in model.parameters() if p.requires_grad]
        D = int(sum(p.numel() for p in params))
        super().__init__((D, D), dtype, symmetric=True)
        if not isinstance(block, int) or isinstance(block, bool) or block < 1:
            raise ValueError(f"block={block!r} must be a positive int")
        if not isinstance(vectorize, bool):
            raise TypeError(f"vectorize={vectorize!r} must be a bool")
        X = torch.as_tensor(X)
        y = torch.as_tensor(y)
        if X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise ValueError(f"X and y must have the same non-zero number of samples, got {tuple(X.shape)} / {tuple(y.shape)}")
        tdt = torch.float64 if self.dtype == np.float64 else torch.float32
        dev = resolve_device(device)
        self.device = str(dev)
        # never change the caller's model
        self.model = copy.deepcopy(model).to(device=dev, dtype=tdt).eval()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.X = X.to(device=dev, dtype=tdt)
        self.y = y.to(device=dev, dtype=torch.int64)
        self.block = block
        self.vectorize = vectorize
        self.n_samples = int(X.shape[0])
        bs = self.n_samples if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size={batch_size!r} must be positive")
        self._data = [(self.X[i:i + bs], self.y[i:i + bs]) for i in range(0, self.n_samples, bs)]
        self._op = None
        self._lock = threading.Lock()
        self.n_products = 0  # columns multiplied so far (HVP count)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_lock", None)
        state["_op"] = None
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._lock = threading.Lock()

    def setup(self) -> None:
        from curvlinops import HessianLinearOperator  # optional dependencies
        from torch.nn import CrossEntropyLoss

        self._op = HessianLinearOperator(
            self.model, CrossEntropyLoss(reduction="mean"), self.params, self._data,
            progressbar=False, check_deterministic=False, num_data=self.n_samples,
        )

    def _matmat(self, V):
        import torch  # optional dependency

        xp = sk.get_array_module(V)
        tdt = self.X.dtype
        dev = torch.device(self.device)
        if xp is not np and dev.type == "cuda":
            Vt_all = torch.from_dlpack(V)  # CuPy block, no host round trip
        else:
            host = V.get() if xp is not np else np.asarray(V)
            Vt_all = torch.from_numpy(np.ascontiguousarray(host))
        b = int(Vt_all.shape[1])
        step = self.block if self.vectorize else 1
        out = torch.empty((self.shape[0], b), dtype=tdt, device=dev)
        with self._lock, torch.no_grad():
            for j0 in range(0, b, step):
                j1 = min(j0 + step, b)
                Vt = Vt_all[:, j0:j1].to(device=dev, dtype=tdt)
                out[:, j0:j1] = self._op @ Vt
            self.n_products += b
            if not bool(torch.isfinite(out).all()):
                raise FloatingPointError("Hessian-vector product returned NaN/Inf (diverged model?)")
        if xp is not np:
            return xp.from_dlpack(out) if dev.type == "cuda" else xp.asarray(out.numpy())
        return out.cpu().numpy()
