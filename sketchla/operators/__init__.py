"""Matrix-free linear operators: one protocol (:mod:`.base`) and one adapter per module.

* :class:`LinearOperator` — the protocol (``matmat``, ``rmatmat``, ``H``, ``setup``);
  :class:`AdjointOperator` — what ``op.H`` returns (:mod:`.base`);
* :func:`aslinearoperator` — picks the adapter for an input (:mod:`.dispatch`);
* adapters — :class:`ArrayOperator` (NumPy/CuPy, :mod:`.array`),
  :class:`SparseOperator` (scipy.sparse, :mod:`.sparse`), :class:`ScipyOperator`
  (``scipy.sparse.linalg.LinearOperator``, :mod:`.scipy_operator`),
  :class:`DaskArrayOperator` (:mod:`.dask_array`), :class:`CallableOperator`
  (functions and duck-typed objects, :mod:`.callable`);
* :class:`RecipeOperator`, :func:`clear_recipe_cache` — operators each worker
  process builds once from a picklable recipe (:mod:`.recipe`).

A new kind of input gets its own module here with a :class:`LinearOperator`
subclass, and one branch in :func:`aslinearoperator`.

Symmetry is never assumed: ``symmetric=True`` must be declared (for small
in-memory arrays the declaration is checked). How an adjoint is known is
declared too (see :mod:`.base`).
"""
from .array import ArrayOperator
from .base import AdjointOperator, LinearOperator
from .callable import CallableOperator
from .dask_array import DaskArrayOperator
from .dispatch import aslinearoperator
from .recipe import RecipeOperator, clear_recipe_cache
from .scipy_operator import ScipyOperator
from .sparse import SparseOperator

__all__ = [
    "LinearOperator", "AdjointOperator", "aslinearoperator", "ArrayOperator", "DaskArrayOperator",
    "SparseOperator", "ScipyOperator", "CallableOperator", "RecipeOperator", "clear_recipe_cache",
]
