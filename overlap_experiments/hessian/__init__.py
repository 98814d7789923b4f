"""Loss Hessians of checkpoints on fixed samples (paper §2.1, §6).

* :mod:`.operator` — :class:`HessianOperator`, H of a model on (X, y) as a
  matrix-free sketchla operator (curvlinops HVPs, CPU or CUDA).
* :mod:`.samples` — the fixed Hessian samples, stored once per run.
* :mod:`.recipe` — :func:`hessian_recipe`, the operator as a recipe each
  Dask worker builds once from a checkpoint and a stored sample.
* :mod:`.dense` — the dense H of a small network and its eigenpairs
  (the exact analysis of App. B.1).
"""
from ..devices import resolve_device
from .dense import exact_eigh, exact_hessian, lanczos_top, sort_by_magnitude, time_hvp, top_eigenpairs
from .operator import DEFAULT_BLOCK, HessianOperator
from .recipe import build_hessian_operator, hessian_recipe
from .samples import load_sample, store_sample

__all__ = [
    "HessianOperator", "DEFAULT_BLOCK", "resolve_device", "hessian_recipe", "build_hessian_operator",
    "store_sample", "load_sample", "exact_hessian", "exact_eigh", "lanczos_top", "top_eigenpairs",
    "sort_by_magnitude", "time_hvp",
]
