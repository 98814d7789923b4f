"""Adapter for a dense NumPy or CuPy matrix."""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .base import SYMMETRY_CHECK_MAX, LinearOperator, float_dtype_of, to_module


class ArrayOperator(LinearOperator):
    """A dense NumPy or CuPy matrix ``A`` (``D_L x D_R``). Blocks from the other
    module are moved to the matrix's device, multiplied there and moved back.

    Adjoint: ``A.T @ Y``. A ``symmetric=True`` declaration is verified for
    matrices of up to ``SYMMETRY_CHECK_MAX`` entries.
    """

    rmatmat_implemented = True

    def __init__(self, A, *, dtype=None, symmetric=False):
        if A.ndim != 2:
            raise ValueError(f"x must be 2-D, got shape {A.shape}")
        dt = float_dtype_of(A.dtype, dtype)
        super().__init__(A.shape, dt, symmetric=symmetric)
        self.A = A if A.dtype == dt else A.astype(dt)
        if self.symmetric and A.size <= SYMMETRY_CHECK_MAX:
            xp = get_array_module(self.A)
            tol = 100 * np.finfo(dt).eps * float(xp.abs(self.A).max() or 1.0)
            if not bool(xp.allclose(self.A, self.A.T, rtol=0, atol=tol)):
                raise ValueError("symmetric=True was declared but x is not symmetric")

    def _matmat(self, X):
        xp_a, xp_x = get_array_module(self.A), get_array_module(X)
        return to_module(self.A @ to_module(X, xp_a), xp_x)

    def _rmatmat(self, Y):
        xp_a, xp_y = get_array_module(self.A), get_array_module(Y)
        return to_module(self.A.T @ to_module(Y, xp_a), xp_y)
