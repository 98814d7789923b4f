"""sketchla: out-of-core, Dask-backed sketched linear algebra.

Public API (see DESIGN.md)::

    import sketchla as sk
    op = sk.aslinearoperator(x)
    Q, R = sk.tsqr(A, out=None)
    X = sk.lstsq(A, B)
    res = sk.seigh(op, n_outer, n_inner, seed=0, store=None, client=None, dtype="float32", chunk=None)
    res = sk.ssvd(op, n_outer, n_inner, ...)
    from sketchla import grassmann as gm

Names are resolved lazily so that ``import sketchla`` (e.g. for the in-memory
Grassmannian metrics) does not pay for importing Dask and Zarr.
"""
from __future__ import annotations

import importlib

from ._version import __version__

# public name -> module that defines it
_LAZY = {
    "aslinearoperator": "sketchla.operators",
    "LinearOperator": "sketchla.operators",
    "tsqr": "sketchla.linalg",
    "lstsq": "sketchla.linalg",
    "seigh": "sketchla.decompositions",
    "ssvd": "sketchla.decompositions",
    "open_result": "sketchla.decompositions",
    "measure": "sketchla.measure",
    "RecipeOperator": "sketchla.operators",
    "clear_recipe_cache": "sketchla.operators",
    "client_context": "sketchla.cluster",
    "get_client": "sketchla.cluster",
    "json_default": "sketchla.store",
    "get_array_module": "sketchla.backend",
    "TestMatrix": "sketchla.random",
}
_SUBMODULES = {
    "backend", "cluster", "decompositions", "grassmann", "linalg", "measure",
    "operators", "random", "store",
}

__all__ = ["__version__", *sorted(_LAZY), *sorted(_SUBMODULES)]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"sketchla.{name}")
    else:
        raise AttributeError(f"module 'sketchla' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
