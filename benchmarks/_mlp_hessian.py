"""A network Hessian as a benchmark operator: HVPs cost what HVPs cost.

``MLPHessian(widths, n_samples, seed)`` is the Hessian of the mean
cross-entropy of a tanh MLP (layer widths ``widths``, e.g. ``(256, 256, 256,
10)``) on ``n_samples`` fixed synthetic inputs with teacher labels, w.r.t. all
``D`` parameters. ``matmat(V)`` (``V``: D × b NumPy float32) computes the ``b``
Hessian-vector products by forward-over-reverse differentiation
(``torch.func.jvp`` of ``torch.func.grad``), vectorised over the columns with
``torch.func.vmap`` — the same arithmetic a curvlinops HVP performs on a real
network. Built once per process from its recipe (see
``sketchla.RecipeOperator``). torch.func transforms keep
process-global state ("forward AD levels"), so concurrent calls from two Dask
threads corrupt each other: ``matmat`` holds a lock and torch uses all cores.
"""
from __future__ import annotations

import numpy as np


class MLPHessian:
    def __init__(self, widths=(256, 256, 256, 10), n_samples=1000, seed=0, batch=8):
        import torch
        from torch import nn

        import os
        import threading

        torch.set_num_threads(os.cpu_count() or 1)
        self._lock = threading.Lock()
        g = torch.Generator().manual_seed(seed)
        layers = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) / np.sqrt(max(p.shape[-1], 1)))
        self.X = torch.randn(n_samples, widths[0], generator=g)
        with torch.no_grad():
            self.y = self.net(self.X).argmax(1)  # teacher labels: a trained-looking, indefinite Hessian
        self.names = [n for n, _ in self.net.named_parameters()]
        self.shapes = [p.shape for p in self.net.parameters()]
        self.sizes = [p.numel() for p in self.net.parameters()]
        self.theta = torch.cat([p.detach().reshape(-1) for p in self.net.parameters()])
        D = int(self.theta.numel())
        self.shape = (D, D)
        self.dtype = np.dtype("float32")
        self.batch = int(batch)

        def loss(theta):
            params = {n: t.reshape(s) for n, t, s in zip(self.names, torch.split(theta, self.sizes), self.shapes)}
            out = torch.func.functional_call(self.net, params, (self.X,))
            return nn.functional.cross_entropy(out, self.y)

        grad = torch.func.grad(loss)

        def hvp(v):
            return torch.func.jvp(grad, (self.theta,), (v,))[1]

        self._hvps = torch.func.vmap(hvp)

    def matmat(self, V):
        import torch

        V = np.asarray(V, dtype=np.float32)
        out = np.empty_like(V)
        with self._lock, torch.no_grad():
            for j0 in range(0, V.shape[1], self.batch):
                Vt = torch.from_numpy(np.ascontiguousarray(V[:, j0:j0 + self.batch].T))
                out[:, j0:j0 + self.batch] = self._hvps(Vt).numpy().T
        return out

    rmatmat = matmat
