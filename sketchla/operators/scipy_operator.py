"""Adapter for a ``scipy.sparse.linalg.LinearOperator``.

Has it an adjoint? SciPy's convention is that every ``LinearOperator`` has
one (``A.H``, ``A.rmatvec``); one built from a ``matvec`` alone fails only
when its adjoint is first applied (``rmatvec`` raises ``NotImplementedError``).
This adapter follows that convention and never inspects SciPy's private
attributes:

* ``has_adjoint`` is what the caller declares (``aslinearoperator(x,
  has_adjoint=False)``), ``True`` by default;
* when the adjoint is first used and SciPy has none, a ``TypeError`` says so
  and how to declare it — except for an operator declared ``symmetric=True``,
  whose adjoint is the operator itself.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .base import LinearOperator, float_dtype_of, to_module


class ScipyOperator(LinearOperator):
    """A ``scipy.sparse.linalg.LinearOperator`` (applied to host blocks)."""

    def __init__(self, A, *, dtype=None, symmetric=False, has_adjoint=True):
        dt = float_dtype_of(A.dtype if A.dtype is not None else np.float64, dtype)
        super().__init__(A.shape, dt, symmetric=symmetric)
        self.A = A
        self.rmatmat_implemented = bool(has_adjoint)

    def _matmat(self, X):
        xp = get_array_module(X)
        return to_module(np.asarray(self.A.matmat(to_module(X, np))), xp)

    def _rmatmat(self, Y):
        xp = get_array_module(Y)
        host = to_module(Y, np)
        try:
            out = self.A.rmatmat(host)
        except Exception as exc:
            if not _lacks_rmatvec(self.A, host):
                raise
            if not self.symmetric:
                raise TypeError(
                    f"the scipy LinearOperator {self.A!r} has no adjoint (it was made without rmatvec/"
                    "rmatmat): give it one, declare symmetric=True, or pass has_adjoint=False to "
                    "sketchla.aslinearoperator so that routines needing A^* refuse it up front") from exc
            out = self.A.matmat(host)  # declared symmetric: A^* = A
        return to_module(np.asarray(out), xp)


def _lacks_rmatvec(A, Y) -> bool:
    """SciPy's public answer after a failed ``rmatmat``: ``rmatvec`` raises
    ``NotImplementedError`` for an operator made without an adjoint (its
    ``rmatmat`` may fail otherwise, e.g. with a ``TypeError``)."""
    try:
        A.rmatvec(Y[:, 0])
    except NotImplementedError:
        return True
    except Exception:
        return False
    return False
