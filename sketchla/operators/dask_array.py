"""Adapter for a Dask array (e.g. one backed by Zarr)."""
from __future__ import annotations

from ..backend import get_array_module
from .base import LinearOperator, float_dtype_of, to_module


class DaskArrayOperator(LinearOperator):
    """A Dask array ``A`` (``D_L x D_R``). Each product is computed with the
    synchronous scheduler inside the calling task (no nested cluster work).

    Adjoint: ``A.T @ Y``. Token: the Dask array's name (its graph's identity).
    """

    rmatmat_implemented = True

    def __init__(self, A, *, dtype=None, symmetric=False):
        if A.ndim != 2:
            raise ValueError(f"x must be 2-D, got shape {A.shape}")
        super().__init__(A.shape, float_dtype_of(A.dtype, dtype), symmetric=symmetric)
        self.A = A

    def _apply(self, M, X):
        xp_x = get_array_module(X)
        xp_m = get_array_module(M)
        out = (M @ to_module(X, xp_m)).compute(scheduler="synchronous")
        return to_module(out, xp_x)

    def _matmat(self, X):
        return self._apply(self.A, X)

    def _rmatmat(self, Y):
        return self._apply(self.A.T, Y)

    def __dask_tokenize__(self):
        return ("sketchla.DaskArrayOperator", self.A.name, self.dtype.name, self.symmetric)
