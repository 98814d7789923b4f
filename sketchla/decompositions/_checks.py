"""Argument checks shared by SEIGH and SSVD (paper Alg. 1/2 inputs), run before any store is made."""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend


def check_sizes(n_outer, n_inner, D: int) -> tuple[int, int]:
    """Validate ``1 ≤ n_outer ≤ n_inner ≤ D`` (paper Alg. 1/2 inputs)."""
    for name, v in (("n_outer", n_outer), ("n_inner", n_inner)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {v!r}")
        if v <= 0:
            raise ValueError(f"{name}={v} must be positive")
    if n_outer > n_inner:
        raise ValueError(f"n_outer={n_outer} must not exceed n_inner={n_inner} (paper Alg. 1/2: n_O ≤ n_I)")
    if n_inner > D:
        raise ValueError(f"n_inner={n_inner} must not exceed the operator dimension {D}")
    return int(n_outer), int(n_inner)


def check_seed(seed) -> int:
    """A non-negative integer seed."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    return int(seed)


def check_gpu(gpu) -> bool:
    """Validate a ``gpu=`` argument: a bool, and ``True`` only where CuPy sees a CUDA device."""
    if not isinstance(gpu, (bool, np.bool_)):
        raise TypeError(f"gpu must be True or False, got {gpu!r}")
    if gpu and not backend.cupy_available():  # looked up at call time (tests patch it)
        raise ValueError("gpu=True needs CuPy and a CUDA device (pip install '.[gpu]'); "
                         "none is available in this process")
    return bool(gpu)
