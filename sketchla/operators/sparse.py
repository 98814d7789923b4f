"""Adapter for a ``scipy.sparse`` matrix or array."""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .base import SYMMETRY_CHECK_MAX, LinearOperator, float_dtype_of, to_module


class SparseOperator(LinearOperator):
    """A scipy.sparse matrix or array (CSR is used). Applied on the host; CuPy
    blocks are moved to the host and the result back to the GPU.

    Adjoint: ``A.T @ Y``. A ``symmetric=True`` declaration is verified for
    matrices of up to ``SYMMETRY_CHECK_MAX`` stored entries. Token: the CSR
    arrays (SciPy's pickles carry cached flags that differ between equal matrices).
    """

    rmatmat_implemented = True

    def __init__(self, A, *, dtype=None, symmetric=False):
        import scipy.sparse as sp

        dt = float_dtype_of(A.dtype, dtype)
        super().__init__(A.shape, dt, symmetric=symmetric)
        self.A = sp.csr_array(A, dtype=dt)
        if self.symmetric and self.A.nnz <= SYMMETRY_CHECK_MAX:
            diff = abs(self.A - self.A.T)
            scale = abs(self.A).max() if self.A.nnz else 1.0
            if diff.nnz and diff.max() > 100 * np.finfo(dt).eps * scale:
                raise ValueError("symmetric=True was declared but x is not symmetric")

    def _matmat(self, X):
        xp = get_array_module(X)
        return to_module(np.asarray(self.A @ to_module(X, np)), xp)

    def _rmatmat(self, Y):
        xp = get_array_module(Y)
        return to_module(np.asarray(self.A.T @ to_module(Y, np)), xp)

    def __dask_tokenize__(self):
        from dask.tokenize import normalize_token

        A = self.A
        return ("sketchla.SparseOperator", A.shape, self.symmetric,
                normalize_token((A.data, A.indices, A.indptr)))
