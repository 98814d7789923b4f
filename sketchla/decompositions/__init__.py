"""Sketched decompositions: SEIGH (paper Alg. 2) and SSVD (paper Alg. 1).

Public: :func:`seigh`, :func:`ssvd`, :func:`open_result`, the result classes
:class:`SEIGHResult` / :class:`SSVDResult`, and :class:`ErrorEstimate`.
"""
from .errors import ErrorEstimate
from .results import SEIGHResult, SSVDResult, open_result
from .seigh import seigh
from .ssvd import ssvd

__all__ = ["seigh", "ssvd", "open_result", "SEIGHResult", "SSVDResult", "ErrorEstimate"]
