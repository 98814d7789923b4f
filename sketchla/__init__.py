"""sketchla: out-of-core, Dask-backed sketched linear algebra.

Public API (the layers and data flow are in ``docs/ARCHITECTURE.md``)::

    import sketchla as sk

    # operators and test matrices
    op = sk.aslinearoperator(x)                  # ndarray / cupy / dask / scipy.sparse / scipy LinearOperator / callable
    op.H                                         # its adjoint operator (SciPy's convention)
    sk.LinearOperator                            # the protocol, to subclass
    sk.RecipeOperator(factory, *args, shape=...) # built once per worker process; sk.clear_recipe_cache()
    sk.TestMatrix((D, n), seed=0, name="omega")  # seeded test matrix, blocks generated on demand

    # measurement, streamed linear algebra, decompositions
    Y = sk.measure(op, test, store, "Y")         # op @ test into store["Y"], resumable; op.H for the adjoint
    Q, R = sk.tsqr(A, out=None); X = sk.lstsq(A, B); G = sk.inner(A, B); V = sk.matmul(Q, U)
    M, UQ, OQ = sk.inner_products([ups, omg], [Y, Q], [(0, 0), (0, 1), (1, 1)])  # one pass, test matrices drawn
    res = sk.seigh(op, n_outer, n_inner=None, seed=0, store=None, client=None, dtype="float32", chunk=None,
                   rank=None, passes=0, method="krylov", n_probes=10, residuals=False)
    res = sk.ssvd(op, n_outer, n_inner, ...); res = sk.open_result(path, rank=None)
    sk.TailDominatedWarning, sk.IllConditionedCoreWarning  # what the certificates warn with
    lam, U = sk.seigh_core(M_I, ups_Q, omega_Q)  # the small core solve of paper Alg. 2 (lines 4-8)

    # how work is cut and scheduled
    sk.BlockPlan(chunk=None, row_block=None)     # block sizes of a run (columns per task, rows per block)
    with sk.client_context(client) as c: ...     # the scheduler a run would use (rules: sketchla.executor)
    c, close = sk.get_client(client)

    # helpers
    sk.get_array_module(x)                       # numpy or cupy, from the data
    json.dumps(obj, default=sk.json_default)     # NumPy scalars, arrays and dtypes as JSON
    from sketchla import grassmann as gm         # Grassmannian metrics and masks (paper §4)

Subpackages and modules are public too: :mod:`sketchla.operators`,
:mod:`sketchla.random`, :mod:`sketchla.measurement`, :mod:`sketchla.store`,
:mod:`sketchla.linalg`, :mod:`sketchla.decompositions`, :mod:`sketchla.grassmann`,
:mod:`sketchla.executor`, :mod:`sketchla.blocking`, :mod:`sketchla.backend`.

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
    "RecipeOperator": "sketchla.operators",
    "clear_recipe_cache": "sketchla.operators",
    "TestMatrix": "sketchla.random",
    "measure": "sketchla.measurement",
    "tsqr": "sketchla.linalg",
    "lstsq": "sketchla.linalg",
    "inner": "sketchla.linalg",
    "inner_products": "sketchla.linalg",
    "matmul": "sketchla.linalg",
    "seigh": "sketchla.decompositions",
    "ssvd": "sketchla.decompositions",
    "open_result": "sketchla.decompositions",
    "seigh_core": "sketchla.decompositions",
    "ssvd_core": "sketchla.decompositions",
    "TailDominatedWarning": "sketchla.decompositions",
    "IllConditionedCoreWarning": "sketchla.decompositions",
    "BlockPlan": "sketchla.blocking",
    "client_context": "sketchla.executor",
    "get_client": "sketchla.executor",
    "get_array_module": "sketchla.backend",
    "json_default": "sketchla.store",
}
_SUBMODULES = {
    "backend", "blocking", "decompositions", "executor", "grassmann", "linalg", "measurement",
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
