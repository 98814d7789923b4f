"""Argument checks shared by SEIGH and SSVD (paper Alg. 1/2 inputs), run before any store is made."""
from __future__ import annotations

import numbers


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


def check_n_probes(n_probes, allow_zero: bool = True) -> int:
    """The number of a-posteriori error probes: an int ``>= 0`` (``>= 1`` unless ``allow_zero``)."""
    low = 0 if allow_zero else 1
    if isinstance(n_probes, bool) or not isinstance(n_probes, numbers.Integral) or n_probes < low:
        raise ValueError(f"n_probes={n_probes!r} must be an integer >= {low}")
    return int(n_probes)


def check_operator_id(operator_id):
    """``None`` or a non-empty string naming the operator (see ``_stages.check_identity``)."""
    if operator_id is not None and (not isinstance(operator_id, str) or not operator_id):
        raise TypeError(f"operator_id must be a non-empty string or None, got {operator_id!r}")
    return operator_id
