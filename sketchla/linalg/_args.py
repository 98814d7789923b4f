"""Checks of the options every streamed routine takes, run before any block is read or any output made.

``client`` (a ``distributed.Client`` or ``None``: the streamed routines run
on the given Client or on the scheduler Dask would use anyway, see
:mod:`sketchla.executor`), ``check_finite`` and ``gpu`` (``True``/``False``;
``gpu=True`` needs CuPy and a CUDA device), and — where a routine has them —
``fanin`` (``None`` or an int ``>= 2``) and ``rcond`` (``None`` or a number ``>= 0``).
"""
from __future__ import annotations

import numbers

from ..backend import check_flag, check_gpu
from ..executor import is_client

__all__ = ["check_options"]


def check_options(*, client, check_finite, gpu, fanin=None, rcond=None) -> None:
    """Raise ``TypeError``/``ValueError`` naming the first bad option (see the module docstring)."""
    if client is not None and not is_client(client):
        raise TypeError(f"client must be a distributed.Client or None (the active Dask scheduler), got "
                        f"{client!r}; runs (measure, seigh, ssvd) also take 'threads', 'processes' or an address")
    check_flag(check_finite, "check_finite")
    check_gpu(gpu)
    if fanin is not None and (isinstance(fanin, bool) or not isinstance(fanin, numbers.Integral) or fanin < 2):
        raise ValueError(f"fanin must be an int >= 2, got {fanin!r}")
    if rcond is not None and (isinstance(rcond, bool) or not isinstance(rcond, numbers.Real) or not rcond >= 0):
        raise ValueError(f"rcond must be None or a number >= 0, got {rcond!r}")
