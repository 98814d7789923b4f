"""``aslinearoperator``: pick the adapter for an input (one adapter per module)."""
from __future__ import annotations

import copy

import numpy as np

from ..backend import is_cupy_array
from .array import ArrayOperator
from .base import LinearOperator, check_shape, float_dtype_of
from .callable import CallableOperator, DuckOperator
from .dask_array import DaskArrayOperator
from .scipy_operator import ScipyOperator
from .sparse import SparseOperator

__all__ = ["aslinearoperator"]


def aslinearoperator(x, *, shape=None, dtype=None, rmatmat=None, symmetric=None,
                     has_adjoint=None) -> LinearOperator:
    """Adapt ``x`` to a sketchla :class:`~sketchla.operators.LinearOperator`.

    Accepted (adapter in brackets): a sketchla operator (returned as is, or a
    copy when ``symmetric`` is given and differs), NumPy/CuPy 2-D arrays
    (:class:`ArrayOperator`), Dask arrays (:class:`DaskArrayOperator`),
    scipy.sparse matrices/arrays (:class:`SparseOperator`),
    ``scipy.sparse.linalg.LinearOperator`` (:class:`ScipyOperator`), an object
    with ``shape`` and ``matmat`` (and optionally ``rmatmat``, ``setup``), or a
    callable mapping a ``D_R x b`` block to ``D_L x b`` (:class:`CallableOperator`;
    needs ``shape=``; ``rmatmat=`` adds its adjoint; ``dtype`` defaults to float32).

    ``symmetric``: declare ``A == A^*`` (never assumed; ``None`` means False).
    ``dtype`` overrides the operator's dtype (float32/float64).
    ``has_adjoint``: only for a SciPy ``LinearOperator``, whose adjoint is
    assumed to exist (SciPy's convention) unless ``has_adjoint=False``; every
    other adapter knows whether it has one.
    """
    try:
        import scipy.sparse as sp
        from scipy.sparse.linalg import LinearOperator as SLO
    except ImportError:  # pragma: no cover
        sp = SLO = None
    if has_adjoint is not None and not (SLO is not None and isinstance(x, SLO)):
        raise ValueError("has_adjoint= is only used for scipy LinearOperators; the adjoint of x is known "
                         "(a callable declares it with rmatmat=)")
    if isinstance(x, LinearOperator):
        if symmetric is not None and bool(symmetric) != x.symmetric:
            if symmetric and x.shape[0] != x.shape[1]:
                raise ValueError(f"symmetric=True but shape={x.shape} is not square")
            x = copy.copy(x)
            x.symmetric = bool(symmetric)
        if shape is not None and check_shape(shape) != x.shape:
            raise ValueError(f"shape={tuple(shape)} does not match the operator's shape {x.shape}")
        return x
    sym = bool(symmetric) if symmetric is not None else False
    if shape is not None and not callable(x):
        if check_shape(shape) != tuple(getattr(x, "shape", ())):
            raise ValueError(f"shape={tuple(shape)} does not match x.shape={getattr(x, 'shape', None)}")
    if rmatmat is not None and not callable(x):
        raise ValueError("rmatmat= is only used for callables; the adjoint of x is known")

    mod = type(x).__module__.split(".")[0]
    if isinstance(x, np.ndarray) or is_cupy_array(x):
        return ArrayOperator(x, dtype=dtype, symmetric=sym)
    if mod == "dask" and hasattr(x, "chunks"):
        return DaskArrayOperator(x, dtype=dtype, symmetric=sym)
    if sp is not None and sp.issparse(x):
        return SparseOperator(x, dtype=dtype, symmetric=sym)
    if SLO is not None and isinstance(x, SLO):
        return ScipyOperator(x, dtype=dtype, symmetric=sym, has_adjoint=True if has_adjoint is None else has_adjoint)
    if hasattr(x, "matmat") and hasattr(x, "shape"):  # duck-typed operator object
        dt = dtype if dtype is not None else getattr(x, "dtype", None) or "float32"
        return DuckOperator(x, x.shape, dtype=float_dtype_of(dt, None),
                            rmatmat=getattr(x, "rmatmat", None), symmetric=sym)
    if callable(x):
        if shape is None:
            raise ValueError("shape=(D_L, D_R) is required to wrap a callable")
        return CallableOperator(x, shape, dtype="float32" if dtype is None else dtype,
                                rmatmat=rmatmat, symmetric=sym)
    if hasattr(x, "__array__") and getattr(x, "ndim", None) == 2:
        return ArrayOperator(np.asarray(x), dtype=dtype, symmetric=sym)
    raise TypeError(
        f"cannot make a linear operator from {type(x).__name__}; pass an array, a scipy "
        "sparse matrix or LinearOperator, a dask array, or a callable with shape="
    )
