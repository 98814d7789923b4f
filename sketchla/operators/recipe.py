"""Operators built once per worker process from a picklable recipe.

:class:`RecipeOperator` describes an operator that is expensive to build (a
network plus a data set, e.g. a curvlinops Hessian) by a factory and its
arguments: only this cheap recipe is pickled and shipped; each worker process
builds the operator once (module-level cache keyed by the recipe's token) on
first use. :func:`clear_recipe_cache` frees what this process built.
"""
from __future__ import annotations

import contextlib
import logging
import threading

from .base import LinearOperator
from .dispatch import aslinearoperator

__all__ = ["RecipeOperator", "clear_recipe_cache"]

logger = logging.getLogger(__name__)

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
    on the workers (a module-level function or class). The token (given, or
    ``tokenize`` of the recipe) is also the operator's Dask token.

    ``has_adjoint``: declare it (``True`` for an operator with ``rmatmat``);
    when ``None`` it is true for ``symmetric=True``, otherwise the operator is
    built locally once to find out. ``A^*`` is the built operator's adjoint.

    ``thread_safe=False`` serialises the applications of the built operator
    within a process (one lock per recipe). Needed for operators that are not
    reentrant across threads — e.g. ``torch.func`` transforms (curvlinops'
    HVPs use ``jvp``/``vmap``), whose process-global "AD levels" get
    corrupted when two Dask threads apply them at once. The operator can then
    use all cores itself (torch intra-op threads), while other Dask threads
    keep generating test blocks and writing results.
    """

    rmatmat_implemented = True  # forwarded to the built operator, which knows its adjoint
    built_on_workers = True

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
