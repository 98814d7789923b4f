"""Adapters for a plain function and for a duck-typed operator object."""
from __future__ import annotations

from .base import LinearOperator


class CallableOperator(LinearOperator):
    """A plain function ``f(X) -> A @ X`` mapping ``D_R x b`` to ``D_L x b``,
    optionally with ``rmatmat(Y) -> A^* @ Y`` (which declares the adjoint).
    The output shape is checked."""

    def __init__(self, fn, shape, *, dtype="float32", rmatmat=None, symmetric=False):
        if not callable(fn):
            raise TypeError(f"x must be callable, got {type(fn).__name__}")
        if rmatmat is not None and not callable(rmatmat):
            raise TypeError(f"rmatmat must be callable, got {type(rmatmat).__name__}")
        super().__init__(shape, dtype, symmetric=symmetric)
        self.fn = fn
        self.rfn = rmatmat
        self.rmatmat_implemented = rmatmat is not None

    def _matmat(self, X):
        return self.fn(X)

    def _rmatmat(self, Y):
        return self.rfn(Y)


class DuckOperator(CallableOperator):
    """An object with ``shape`` and ``matmat`` (optionally ``rmatmat``, ``setup``)."""

    def __init__(self, obj, shape, *, dtype, rmatmat=None, symmetric=False):
        super().__init__(obj.matmat, shape, dtype=dtype, rmatmat=rmatmat, symmetric=symmetric)
        self.obj = obj

    def setup(self) -> None:
        if callable(getattr(self.obj, "setup", None)):
            self.obj.setup()
