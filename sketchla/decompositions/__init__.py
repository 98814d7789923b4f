"""Sketched decompositions: SEIGH (paper Alg. 2) and SSVD (paper Alg. 1).

Public: :func:`seigh`, :func:`ssvd`, :func:`open_result`, the result classes
:class:`SEIGHResult` / :class:`SSVDResult`, :class:`ErrorEstimate`, the
warnings :class:`TailDominatedWarning` (the default certificate says ``A − Â``
is comparable to ``Â``) and :class:`IllConditionedCoreWarning` (a single-pass
``n_inner`` too close to ``n_outer``), and the
small in-memory core solves :func:`seigh_core` (Alg. 2 lines 4–8) and
:func:`ssvd_core` (Alg. 1 lines 6–8) for callers that form the thin products
themselves (e.g. the GPU benchmark).

A new decomposition is a module beside :mod:`.seigh` that validates and opens
its run with :func:`._stages.start_run`, fixes a :class:`~sketchla.blocking.BlockPlan`
per sketch, measures with :func:`sketchla.measure`, orthonormalises with
:func:`._stages.orthonormalize`, solves its core in :mod:`._core` and returns
a result class of :mod:`.results`.
"""
from ._core import IllConditionedCoreWarning, seigh_core, ssvd_core
from .errors import ErrorEstimate, TailDominatedWarning
from .results import SEIGHResult, SSVDResult, open_result
from .seigh import seigh
from .ssvd import ssvd

__all__ = ["seigh", "ssvd", "open_result", "SEIGHResult", "SSVDResult", "ErrorEstimate", "seigh_core",
           "ssvd_core", "TailDominatedWarning", "IllConditionedCoreWarning"]
