"""The linear-operator protocol every sketchla routine applies, and its adjoint.

A :class:`LinearOperator` ``A`` of shape ``(D_L, D_R)`` is applied to blocks
of columns: ``A.matmat(X)`` maps a ``D_R x b`` block to ``D_L x b`` (the
measurements ``A Omega`` of paper Alg. 1 line 2 / Alg. 2 line 1) and, where
the operator has an adjoint, ``A.rmatmat(Y)`` maps ``D_L x b`` to ``D_R x b``
(``A^* Y``, so ``Upsilon^* A = (A^* Upsilon)^*``, Alg. 1 line 1). Blocks are
NumPy or CuPy arrays and results come back in the module of the input block.

The adjoint is an operator of its own, ``A.H`` (SciPy's convention), of shape
``(D_R, D_L)``: ``A.H.matmat(Y) == A.rmatmat(Y)`` and ``A.H.H is A``. Whoever
needs ``A^*`` (e.g. :func:`sketchla.measure` for Alg. 1 line 1) is handed
``A.H``; there is no ``adjoint=`` flag.

Whether an operator has an adjoint is *declared*, never guessed:

* ``symmetric=True`` declares ``A == A^*`` (never assumed);
* a class that implements :meth:`LinearOperator._rmatmat` says so with the
  class attribute ``rmatmat_implemented = True`` (an adapter whose instances
  differ sets it per instance, e.g. a callable given ``rmatmat=`` or not).

``has_adjoint`` is ``symmetric or rmatmat_implemented``; ``A.H`` of an
operator without one raises ``TypeError`` at once. A symmetric operator
without its own ``_rmatmat`` applies ``_matmat`` for ``A^*``.

Graph keys: ``tokenize(op)`` (``dask.base.tokenize``) names an operator by
its class and state, so identical operators give identical Dask keys
(:mod:`sketchla.graph_keys`); adapters with a cheaper or steadier identity
override ``__dask_tokenize__``.
"""
from __future__ import annotations

import threading

import numpy as np

from ..backend import check_float_dtype, is_cupy_array

__all__ = ["LinearOperator", "AdjointOperator"]

#: dense adapters verify a ``symmetric=True`` declaration up to this many stored entries
SYMMETRY_CHECK_MAX = 2**22


def check_shape(shape, argname="shape") -> tuple[int, int]:
    """``(D_L, D_R)`` as positive ints, or ``ValueError`` naming ``argname``."""
    try:
        DL, DR = (int(s) for s in shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argname}={shape!r} must be a pair of ints (D_L, D_R)") from exc
    if DL < 1 or DR < 1:
        raise ValueError(f"{argname}={shape!r} must be positive")
    return DL, DR


class LinearOperator:
    """Base class / protocol of a linear operator ``A`` of shape ``(D_L, D_R)``.

    Subclasses implement :meth:`_matmat` and, if they have an adjoint,
    :meth:`_rmatmat` together with ``rmatmat_implemented = True``. The public
    :meth:`matmat`/:meth:`rmatmat` validate block shapes, run :meth:`setup`
    once per process/instance on first use, and check the output: its shape
    (an error names expected vs got) and that it holds real numbers
    (``TypeError`` for complex or non-numeric output).

    Attributes: ``shape``, ``dtype`` (float32/float64), ``symmetric``
    (declared, never guessed), ``has_adjoint``, ``H`` (the adjoint operator),
    ``built_on_workers`` (``True`` for operators each worker process builds
    itself, e.g. :class:`~sketchla.operators.RecipeOperator`: the scheduler
    resolution then never treats the work as small, see :mod:`sketchla.executor`).
    """

    #: set ``True`` in a subclass that implements :meth:`_rmatmat` (``A^*``)
    rmatmat_implemented = False
    #: ``True`` for operators that each worker process builds on first use
    built_on_workers = False

    def __init__(self, shape, dtype="float32", *, symmetric=False):
        self.shape = check_shape(shape)
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

    def __dask_tokenize__(self):
        from dask.tokenize import normalize_token

        cls = type(self)
        return ("sketchla.LinearOperator", f"{cls.__module__}.{cls.__qualname__}",
                normalize_token(self.__getstate__()))

    # -- protocol -------------------------------------------------------
    @property
    def has_adjoint(self) -> bool:
        """Declared: ``symmetric`` or the class implements ``_rmatmat``."""
        return self.symmetric or bool(self.rmatmat_implemented)

    @property
    def H(self) -> "LinearOperator":
        """The adjoint ``A^*`` as an operator of shape ``(D_R, D_L)`` (``TypeError`` if there is none)."""
        if not self.has_adjoint:
            raise TypeError(f"{self!r} has no adjoint: pass rmatmat= to sketchla.aslinearoperator, "
                            "implement _rmatmat (with rmatmat_implemented = True), or declare symmetric=True")
        return AdjointOperator(self)

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
        X = self._rmatmat(Y) if self.rmatmat_implemented else self._matmat(Y)  # else symmetric: A^* = A
        _check_output(X, (self.shape[1], Y.shape[1]), "rmatmat")
        return X

    def __matmul__(self, X):
        return self.matmat(X)

    def __repr__(self):
        return (f"<{type(self).__name__} shape={self.shape} dtype={self.dtype.name} "
                f"symmetric={self.symmetric} has_adjoint={self.has_adjoint}>")


class AdjointOperator(LinearOperator):
    """``A^*`` of an operator ``A`` with an adjoint (what ``A.H`` returns).

    Shape ``(D_R, D_L)``; ``matmat`` is ``A.rmatmat``, ``rmatmat`` is
    ``A.matmat``, ``.H`` is ``A`` again. ``A`` sets itself up on first use.
    """

    rmatmat_implemented = True

    def __init__(self, op: LinearOperator):
        super().__init__((op.shape[1], op.shape[0]), op.dtype, symmetric=op.symmetric)
        self.op = op

    @property
    def H(self) -> LinearOperator:
        return self.op

    @property
    def built_on_workers(self) -> bool:
        return self.op.built_on_workers

    def _matmat(self, X):
        return self.op.rmatmat(X)

    def _rmatmat(self, Y):
        return self.op.matmat(Y)

    def __dask_tokenize__(self):
        from dask.tokenize import normalize_token

        return ("sketchla.AdjointOperator", normalize_token(self.op))

    def __repr__(self):
        return f"<AdjointOperator of {self.op!r}>"


def _check_block(X, rows: int, argname: str):
    if getattr(X, "ndim", None) == 1:
        X = X[:, None]
    if getattr(X, "ndim", None) != 2:
        raise ValueError(f"{argname} must be a 2-D block of shape ({rows}, b), got {getattr(X, 'shape', type(X))}")
    if X.shape[0] != rows:
        raise ValueError(f"{argname} has shape {tuple(X.shape)}; expected ({rows}, b)")
    return X


def _check_output(Y, expected, what):
    """The block an operator returned: an array of shape ``expected`` with real
    numbers (float or integer); complex, boolean, object or text output is
    refused (``TypeError``) instead of being cast with a NumPy warning."""
    got = tuple(getattr(Y, "shape", ()))
    if got != tuple(expected):
        raise ValueError(f"operator {what} returned shape {got}; expected {tuple(expected)}")
    problem = not_real(getattr(Y, "dtype", None))
    if problem:
        raise TypeError(f"operator {what} returned {problem}; expected real float or integer numbers "
                        "(complex operators are not supported)")


def not_real(dt) -> str | None:
    """``None`` if ``dt`` (a NumPy/CuPy dtype, or another library's) holds real
    float or integer numbers, else what it holds (``"complex values (dtype
    complex128)"``). A dtype NumPy does not know passes unless it says it is
    complex (e.g. ``torch.complex64``); it is checked again once on the host."""
    try:
        kind = np.dtype(dt).kind
    except TypeError:
        return f"complex values (dtype {dt})" if getattr(dt, "is_complex", False) else None
    if kind in ("f", "i", "u"):
        return None
    return f"{'complex' if kind == 'c' else 'non-numeric'} values (dtype {dt})"


def float_dtype_of(x_dtype, dtype) -> np.dtype:
    """The operator dtype for data of ``x_dtype``: ``dtype`` if given, integers -> float64."""
    if dtype is not None:
        return check_float_dtype(dtype, "dtype")
    dt = np.dtype(x_dtype)
    if dt.kind in "biu":
        return np.dtype("float64")
    return check_float_dtype(dt, "dtype")


def to_module(x, xp):
    """Move array ``x`` to array module ``xp`` (numpy or cupy)."""
    if xp is np:
        return x.get() if is_cupy_array(x) else np.asarray(x)
    return xp.asarray(x)
