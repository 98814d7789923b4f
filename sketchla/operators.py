"""Matrix-free linear operators: a small protocol and adapters.

A :class:`LinearOperator` ``A`` of shape ``(D_L, D_R)`` is applied to blocks
of columns: ``A.matmat(X)`` maps a ``D_R x b`` block to ``D_L x b`` (the
measurements ``A Omega`` of paper Alg. 1 line 2 / Alg. 2 line 1) and, where
``A.has_adjoint``, ``A.rmatmat(Y)`` maps ``D_L x b`` to ``D_R x b`` (``A^* Y``,
so ``Upsilon^* A = (A^* Upsilon)^*``, Alg. 1 line 1). Blocks are NumPy or CuPy
arrays and results come back in the module of the input block.

:func:`aslinearoperator` adapts NumPy/CuPy arrays, Dask arrays, scipy.sparse
matrices and arrays, ``scipy.sparse.linalg.LinearOperator`` and plain
callables. :class:`RecipeOperator` describes an operator that is expensive to
build (a network plus a data set, e.g. a curvlinops Hessian) by a factory and
its arguments: only this cheap recipe is pickled and shipped; each worker
process builds the operator once (module-level cache keyed by the recipe's
token) on first use.

Symmetry is never assumed: ``symmetric=True`` must be declared (for small
in-memory arrays the declaration is checked). A symmetric operator is its own
adjoint, so ``rmatmat`` falls back to ``matmat``.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import threading

import numpy as np

from .backend import check_float_dtype, get_array_module, is_cupy_array

__all__ = [
    "LinearOperator", "aslinearoperator", "ArrayOperator", "DaskArrayOperator",
    "SparseOperator", "ScipyOperator", "CallableOperator", "RecipeOperator",
]

logger = logging.getLogger(__name__)

# Dense arrays up to this many entries get their symmetric=True declaration verified.
_SYMMETRY_CHECK_MAX = 2**22


def _check_shape(shape, argname="shape"):
    try:
        DL, DR = (int(s) for s in shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argname}={shape!r} must be a pair of ints (D_L, D_R)") from exc
    if DL < 1 or DR < 1:
        raise ValueError(f"{argname}={shape!r} must be positive")
    return DL, DR


def _to_module(x, xp):
    """Move array ``x`` to array module ``xp`` (numpy or cupy)."""
    if xp is np:
        return x.get() if is_cupy_array(x) else np.asarray(x)
    return xp.asarray(x)


class LinearOperator:
    """Base class / protocol of a linear operator ``A`` of shape ``(D_L, D_R)``.

    Subclasses implement :meth:`_matmat` (and :meth:`_rmatmat` if they have an
    adjoint). The public :meth:`matmat`/:meth:`rmatmat` validate block shapes,
    run :meth:`setup` once per process/instance on first use, and check the
    output shape (an error names expected vs got).

    Attributes: ``shape``, ``dtype`` (float32/float64), ``symmetric`` (declared,
    never guessed), ``has_adjoint``.
    """

    def __init__(self, shape, dtype="float32", *, symmetric=False):
        self.shape = _check_shape(shape)
        self.dtype = check_float_dtype(dtype, "dtype")
        self.symmetric = bool(symmetric)
        if self.symmetric and self.shape[0] != self.shape[1]:
            raise ValueError(f"symmetric=True but shape={self.shape} is not square")
        self._setup_done = False
        self._setup_lock = threading.Lock()

    # -- pickling: locks do not pickle; setup state is per process ------
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_setup_lock", None)
        state["_setup_done"] = False
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._setup_lock = threading.Lock()

    def __copy__(self):
        new = type(self).__new__(type(self))
        new.__setstate__(self.__getstate__())
        return new

    # -- protocol -------------------------------------------------------
    @property
    def has_adjoint(self) -> bool:
        cls = type(self)
        return (self.symmetric or cls._rmatmat is not LinearOperator._rmatmat
                or cls.rmatmat is not LinearOperator.rmatmat)

    def setup(self) -> None:
        """Build expensive state; called once per worker process before first use."""

    def _ensure_setup(self) -> None:
        if self._setup_done:
            return
        with self._setup_lock:
            if not self._setup_done:
                self.setup()
                self._setup_done = True

    def _matmat(self, X):
        raise NotImplementedError

    def _rmatmat(self, Y):
        raise NotImplementedError

    def matmat(self, X):
        """``A @ X`` for a ``D_R x b`` block ``X`` -> ``D_L x b`` (same array module)."""
        self._ensure_setup()
        X = _check_block(X, self.shape[1], "X")
        Y = self._matmat(X)
        _check_output(Y, (self.shape[0], X.shape[1]), "matmat")
        return Y

    def rmatmat(self, Y):
        """``A^* @ Y`` for a ``D_L x b`` block ``Y`` -> ``D_R x b`` (same array module)."""
        if not self.has_adjoint:
            raise TypeError(
                f"{type(self).__name__} has no adjoint: pass rmatmat= to aslinearoperator "
                "or declare symmetric=True"
            )
        self._ensure_setup()
        Y = _check_block(Y, self.shape[0], "Y")
        if type(self)._rmatmat is LinearOperator._rmatmat:  # symmetric fallback
            X = self._matmat(Y)
        else:
            X = self._rmatmat(Y)
        _check_output(X, (self.shape[1], Y.shape[1]), "rmatmat")
        return X

    def __matmul__(self, X):
        return self.matmat(X)

    def __repr__(self):
        return (f"<{type(self).__name__} shape={self.shape} dtype={self.dtype.name} "
                f"symmetric={self.symmetric} has_adjoint={self.has_adjoint}>")


def _check_block(X, rows: int, argname: str):
    if getattr(X, "ndim", None) == 1:
        X = X[:, None]
    if getattr(X, "ndim", None) != 2:
        raise ValueError(f"{argname} must be a 2-D block of shape ({rows}, b), got {getattr(X, 'shape', type(X))}")
    if X.shape[0] != rows:
        raise ValueError(f"{argname} has shape {tuple(X.shape)}; expected ({rows}, b)")
    return X


def _check_output(Y, expected, what):
    got = tuple(getattr(Y, "shape", ()))
    if got != tuple(expected):
        raise ValueError(f"operator {what} returned shape {got}; expected {tuple(expected)}")


# ---------------------------------------------------------------------------
# adapters
# ---------------------------------------------------------------------------
def _float_dtype_of(x_dtype, dtype):
    if dtype is not None:
        return check_float_dtype(dtype, "dtype")
    dt = np.dtype(x_dtype)
    if dt.kind in "biu":
        return np.dtype("float64")
    return check_float_dtype(dt, "dtype")


class ArrayOperator(LinearOperator):
    """A dense NumPy or CuPy matrix. Blocks from the other module are moved to
    the matrix's device, multiplied there and moved back."""

    def __init__(self, A, *, dtype=None, symmetric=False):
        if A.ndim != 2:
            raise ValueError(f"x must be 2-D, got shape {A.shape}")
        dt = _float_dtype_of(A.dtype, dtype)
        super().__init__(A.shape, dt, symmetric=symmetric)
        self.A = A if A.dtype == dt else A.astype(dt)
        if self.symmetric and A.size <= _SYMMETRY_CHECK_MAX:
            xp = get_array_module(self.A)
            tol = 100 * np.finfo(dt).eps * float(xp.abs(self.A).max() or 1.0)
            if not bool(xp.allclose(self.A, self.A.T, rtol=0, atol=tol)):
                raise ValueError("symmetric=True was declared but x is not symmetric")

    def _matmat(self, X):
        xp_a, xp_x = get_array_module(self.A), get_array_module(X)
        return _to_module(self.A @ _to_module(X, xp_a), xp_x)

    def _rmatmat(self, Y):
        xp_a, xp_y = get_array_module(self.A), get_array_module(Y)
        return _to_module(self.A.T @ _to_module(Y, xp_a), xp_y)


class DaskArrayOperator(LinearOperator):
    """A Dask array (e.g. backed by Zarr). Each product is computed with the
    synchronous scheduler inside the calling task (no nested cluster work)."""

    def __init__(self, A, *, dtype=None, symmetric=False):
        if A.ndim != 2:
            raise ValueError(f"x must be 2-D, got shape {A.shape}")
        super().__init__(A.shape, _float_dtype_of(A.dtype, dtype), symmetric=symmetric)
        self.A = A

    def _apply(self, M, X):
        xp_x = get_array_module(X)
        xp_m = get_array_module(M)
        out = (M @ _to_module(X, xp_m)).compute(scheduler="synchronous")
        return _to_module(out, xp_x)

    def _matmat(self, X):
        return self._apply(self.A, X)

    def _rmatmat(self, Y):
        return self._apply(self.A.T, Y)


class SparseOperator(LinearOperator):
    """A scipy.sparse matrix or array (CSR is used). Applied on the host; CuPy
    blocks are moved to the host and the result back to the GPU."""

    def __init__(self, A, *, dtype=None, symmetric=False):
        import scipy.sparse as sp

        dt = _float_dtype_of(A.dtype, dtype)
        super().__init__(A.shape, dt, symmetric=symmetric)
        self.A = sp.csr_array(A, dtype=dt)
        if self.symmetric and self.A.nnz <= _SYMMETRY_CHECK_MAX:
            diff = abs(self.A - self.A.T)
            scale = abs(self.A).max() if self.A.nnz else 1.0
            if diff.nnz and diff.max() > 100 * np.finfo(dt).eps * scale:
                raise ValueError("symmetric=True was declared but x is not symmetric")

    def _matmat(self, X):
        xp = get_array_module(X)
        return _to_module(np.asarray(self.A @ _to_module(X, np)), xp)

    def _rmatmat(self, Y):
        xp = get_array_module(Y)
        return _to_module(np.asarray(self.A.T @ _to_module(Y, np)), xp)


class ScipyOperator(LinearOperator):
    """A ``scipy.sparse.linalg.LinearOperator`` (applied to host blocks)."""

    def __init__(self, A, *, dtype=None, symmetric=False):
        dt = _float_dtype_of(A.dtype if A.dtype is not None else np.float64, dtype)
        super().__init__(A.shape, dt, symmetric=symmetric)
        self.A = A
        self._adjoint = self.symmetric or _scipy_has_adjoint(A)

    @property
    def has_adjoint(self) -> bool:
        return self._adjoint

    def _matmat(self, X):
        xp = get_array_module(X)
        return _to_module(np.asarray(self.A.matmat(_to_module(X, np))), xp)

    def _rmatmat(self, Y):
        if not _scipy_has_adjoint(self.A):  # symmetric declared, no rmatvec given
            return self._matmat(Y)
        xp = get_array_module(Y)
        return _to_module(np.asarray(self.A.rmatmat(_to_module(Y, np))), xp)


def _scipy_has_adjoint(A) -> bool:
    from scipy.sparse.linalg import LinearOperator as SLO

    if type(A).__name__ == "_CustomLinearOperator":
        return (getattr(A, "_CustomLinearOperator__rmatvec_impl", None) is not None
                or getattr(A, "_CustomLinearOperator__rmatmat_impl", None) is not None)
    cls = type(A)
    return any(getattr(cls, m) is not getattr(SLO, m) for m in ("_rmatvec", "_rmatmat", "_adjoint"))


class CallableOperator(LinearOperator):
    """A plain function ``f(X) -> A @ X`` mapping ``D_R x b`` to ``D_L x b``,
    optionally with ``rmatmat(Y) -> A^* @ Y``. The output shape is checked."""

    def __init__(self, fn, shape, *, dtype="float32", rmatmat=None, symmetric=False):
        if not callable(fn):
            raise TypeError(f"x must be callable, got {type(fn).__name__}")
        if rmatmat is not None and not callable(rmatmat):
            raise TypeError(f"rmatmat must be callable, got {type(rmatmat).__name__}")
        super().__init__(shape, dtype, symmetric=symmetric)
        self.fn = fn
        self.rfn = rmatmat

    @property
    def has_adjoint(self) -> bool:
        return self.symmetric or self.rfn is not None

    def _matmat(self, X):
        return self.fn(X)

    def _rmatmat(self, Y):
        return self.rfn(Y) if self.rfn is not None else self.fn(Y)


class _DuckOperator(CallableOperator):
    """An object with ``shape`` and ``matmat`` (optionally ``rmatmat``, ``setup``)."""

    def __init__(self, obj, shape, *, dtype, rmatmat=None, symmetric=False):
        super().__init__(obj.matmat, shape, dtype=dtype, rmatmat=rmatmat, symmetric=symmetric)
        self.obj = obj

    def setup(self) -> None:
        if callable(getattr(self.obj, "setup", None)):
            self.obj.setup()


# ---------------------------------------------------------------------------
# recipes: built once per worker process
# ---------------------------------------------------------------------------
_RECIPE_CACHE: dict[str, LinearOperator] = {}
_RECIPE_LOCK = threading.Lock()
_APPLY_LOCKS: dict = {}  # token -> Lock, for recipes with thread_safe=False


class RecipeOperator(LinearOperator):
    """An operator built by ``factory(*args, **kwargs)`` once per process.

    ``factory`` returns anything :func:`aslinearoperator` accepts (a callable is
    wrapped with this recipe's ``shape``/``dtype``), or a sketchla
    :class:`LinearOperator`. Pickling ships only ``(factory, args, kwargs)``
    and a token; the built operator lives in a module-level cache keyed by the
    token, so every task on a worker reuses it. ``factory`` must be importable
    on the workers (a module-level function or class).

    ``has_adjoint``: declare it (``True`` for an operator with ``rmatmat``);
    when ``None`` it is true for ``symmetric=True``, otherwise the operator is
    built locally once to find out.

    ``thread_safe=False`` serialises the applications of the built operator
    within a process (one lock per recipe). Needed for operators that are not
    reentrant across threads — e.g. ``torch.func`` transforms (curvlinops'
    HVPs use ``jvp``/``vmap``), whose process-global "AD levels" get
    corrupted when two Dask threads apply them at once. The operator can then
    use all cores itself (torch intra-op threads), while other Dask threads
    keep generating test blocks and writing results.
    """

    def __init__(self, factory, *args, shape, dtype="float32", symmetric=False,
                 has_adjoint=None, token=None, thread_safe=True, **kwargs):
        if not callable(factory):
            raise TypeError(f"factory must be callable, got {type(factory).__name__}")
        super().__init__(shape, dtype, symmetric=symmetric)
        self.factory, self.args, self.kwargs = factory, args, kwargs
        self._has_adjoint = has_adjoint
        if token is None:
            from dask.base import tokenize

            token = tokenize(factory, args, kwargs, self.shape, self.dtype.name, self.symmetric)
        self.token = str(token)
        self.thread_safe = bool(thread_safe)

    def build(self) -> LinearOperator:
        """The built operator of this process (built on first call, then cached)."""
        op = _RECIPE_CACHE.get(self.token)
        if op is not None:
            return op
        with _RECIPE_LOCK:
            op = _RECIPE_CACHE.get(self.token)
            if op is None:
                logger.info("building operator from recipe %s (token %s)",
                            getattr(self.factory, "__name__", self.factory), self.token[:12])
                obj = self.factory(*self.args, **self.kwargs)
                op = aslinearoperator(obj, shape=self.shape, dtype=self.dtype,
                                      symmetric=self.symmetric or None)
                if op.shape != self.shape:
                    raise ValueError(f"factory built an operator of shape {op.shape}; recipe declares shape={self.shape}")
                op._ensure_setup()
                _RECIPE_CACHE[self.token] = op
        return op

    def setup(self) -> None:
        self.build()

    @property
    def has_adjoint(self) -> bool:
        if self._has_adjoint is None:
            self._has_adjoint = bool(self.symmetric or self.build().has_adjoint)
        return bool(self._has_adjoint)

    def _apply_lock(self):
        if self.thread_safe:
            return contextlib.nullcontext()
        with _RECIPE_LOCK:
            return _APPLY_LOCKS.setdefault(self.token, threading.Lock())

    def _matmat(self, X):
        op = self.build()
        with self._apply_lock():
            return op.matmat(X)

    def _rmatmat(self, Y):
        op = self.build()
        with self._apply_lock():
            return op.rmatmat(Y)

    def __dask_tokenize__(self):
        return ("sketchla.RecipeOperator", self.token)


def clear_recipe_cache() -> None:
    """Drop every built recipe operator of this process (frees their memory)."""
    with _RECIPE_LOCK:
        _RECIPE_CACHE.clear()


# ---------------------------------------------------------------------------
def aslinearoperator(x, *, shape=None, dtype=None, rmatmat=None, symmetric=None) -> LinearOperator:
    """Adapt ``x`` to a sketchla :class:`LinearOperator`.

    Accepted: a sketchla operator (returned as is, or a copy when
    ``symmetric`` is given and differs), NumPy/CuPy 2-D arrays, Dask arrays,
    scipy.sparse matrices/arrays, ``scipy.sparse.linalg.LinearOperator``, or a
    callable mapping a ``D_R x b`` block to ``D_L x b`` (needs ``shape=``;
    ``rmatmat=`` adds its adjoint; ``dtype`` defaults to float32).

    ``symmetric``: declare ``A == A^*`` (never assumed; ``None`` means False).
    ``dtype`` overrides the operator's dtype (float32/float64).
    """
    if isinstance(x, LinearOperator):
        if symmetric is not None and bool(symmetric) != x.symmetric:
            if symmetric and x.shape[0] != x.shape[1]:
                raise ValueError(f"symmetric=True but shape={x.shape} is not square")
            x = copy.copy(x)
            x.symmetric = bool(symmetric)
        if shape is not None and _check_shape(shape) != x.shape:
            raise ValueError(f"shape={tuple(shape)} does not match the operator's shape {x.shape}")
        return x
    sym = bool(symmetric) if symmetric is not None else False
    if shape is not None and not callable(x):
        if _check_shape(shape) != tuple(getattr(x, "shape", ())):
            raise ValueError(f"shape={tuple(shape)} does not match x.shape={getattr(x, 'shape', None)}")
    if rmatmat is not None and not callable(x):
        raise ValueError("rmatmat= is only used for callables; the adjoint of x is known")

    mod = type(x).__module__.split(".")[0]
    if isinstance(x, np.ndarray) or is_cupy_array(x):
        return ArrayOperator(x, dtype=dtype, symmetric=sym)
    if mod == "dask" and hasattr(x, "chunks"):
        return DaskArrayOperator(x, dtype=dtype, symmetric=sym)
    try:
        import scipy.sparse as sp
        from scipy.sparse.linalg import LinearOperator as SLO
    except ImportError:  # pragma: no cover
        sp = SLO = None
    if sp is not None and sp.issparse(x):
        return SparseOperator(x, dtype=dtype, symmetric=sym)
    if SLO is not None and isinstance(x, SLO):
        return ScipyOperator(x, dtype=dtype, symmetric=sym)
    if hasattr(x, "matmat") and hasattr(x, "shape"):  # duck-typed operator object
        dt = dtype if dtype is not None else getattr(x, "dtype", None) or "float32"
        return _DuckOperator(x, x.shape, dtype=_float_dtype_of(dt, None),
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
