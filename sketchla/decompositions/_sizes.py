"""Sketch sizes of SEIGH / SSVD: the rules used when only a target rank is given, and their checks.

A call gives ``n_outer`` (and, single-pass, ``n_inner``), or only the target
rank ``r`` (and the number of passes ``q``); the sizes then follow the
literature's rules:

* ``q = 0`` (single pass, paper Alg. 1/2): ``n_O = 4r + 1`` and
  ``n_I = 2·n_O + 1`` — the choice of Tropp, Yurtsever, Udell & Cevher (2019,
  "Streaming low-rank matrix approximation…", §5.4) for a target rank ``r``
  when nothing else is known about the spectrum: a range sketch about four
  times the rank, and the core sketch about twice the range sketch (their
  2017 paper, §4.5, shows ``s ≈ 2k`` balances the two error terms). Where only
  ``n_O`` is given, ``n_I = 2·n_O + 1``.
* ``q ≥ 1`` (block Krylov or subspace iteration with a Rayleigh–Ritz
  projection): block ``n_O = r + max(r, 10)`` — oversampling ``p = max(r, 10)``
  (Halko, Martinsson & Tropp 2011, §4.2: ``p = 5–10`` where the spectrum
  decays fast; with only a few passes the error falls like
  ``(|λ_{n_O+1}| / |λ_r|)^{2q}``, so the block is doubled). There is no inner
  sketch: ``n_inner`` is refused.

Everything is checked before any work or any file is created.
"""
from __future__ import annotations

import dataclasses
import numbers

from ._checks import check_sizes

#: how a multi-pass run builds its basis: "krylov" (block Krylov, default) or "subspace"
METHODS = ("krylov", "subspace")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The checked sizes of one run.

    ``n_outer``: rank of the stored decomposition (single pass) or block size
    of every pass; ``n_inner``: inner sketch (single pass only, else ``None``);
    ``rank``: pairs returned (``None``: all ``n_outer``); ``passes``: ``q``;
    ``method``: basis of a multi-pass run.
    """

    n_outer: int
    n_inner: int | None
    rank: int | None
    passes: int
    method: str

    def params(self) -> dict:
        """The store parameters these sizes add: none for a single-pass run (so stores made
        before passes existed reopen unchanged), ``passes`` and ``method`` otherwise."""
        return {} if self.passes == 0 else {"passes": self.passes, "method": self.method}

    def applications(self, algorithm: str) -> int:
        """Operator applications of the decomposition (without error probes or residuals):
        SEIGH ``n_I`` / ``(q+1)·n_O``; SSVD ``n_I + 2·n_O`` / ``(2q+1)·n_O`` (adjoint included)."""
        if self.passes == 0:
            return self.n_inner + (2 * self.n_outer if algorithm == "ssvd" else 0)
        per_pass = 2 if algorithm == "ssvd" else 1
        return self.n_outer * (1 + per_pass * self.passes)


def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}={value} must be at least {minimum}")
    return int(value)


def outer_for_rank(rank: int, passes: int) -> int:
    """``n_outer`` for a target rank ``r`` (module docstring): ``4r + 1`` single-pass, ``r + max(r, 10)`` else."""
    return 4 * rank + 1 if passes == 0 else rank + max(rank, 10)


def resolve_sizes(n_outer, n_inner, rank, passes, method, n_max: int) -> Sizes:
    """Check the size arguments of SEIGH / SSVD and fill the omitted ones by the rules above.

    ``n_max``: the operator's smaller dimension. Rules-derived sizes are capped
    to fit it (single pass: ``n_O ≤ max(r, (n_max − 1) / 2)``, so that
    ``n_I = 2·n_O + 1`` fits where it can); given ones are checked (``ValueError``/``TypeError`` naming
    the argument): ``passes ≥ 0``, ``1 ≤ rank ≤ n_outer``,
    ``n_outer ≤ n_inner ≤ n_max`` single-pass, no ``n_inner`` with passes, and
    for block Krylov a Krylov space of ``passes·n_outer ≤ n_max`` dimensions.
    """
    passes = _count(passes, "passes", 0)
    if method not in METHODS:
        raise ValueError(f"method={method!r} must be one of {METHODS}")
    if rank is not None:
        rank = _count(rank, "rank", 1)
    if n_outer is None:
        if rank is None:
            raise TypeError("give n_outer (the sketch size) or rank (the target rank; sizes then follow "
                            "the rules of sketchla.decompositions._sizes)")
        n_outer = outer_for_rank(rank, passes)
        if passes == 0:  # keep room for n_I = 2 n_O + 1 where the operator is small
            n_outer = min(n_outer, max(rank, (n_max - 1) // 2))
        n_outer = min(n_outer, n_max)
    if passes == 0:
        if n_inner is None and isinstance(n_outer, numbers.Integral) and not isinstance(n_outer, bool):
            n_inner = min(2 * int(n_outer) + 1, n_max)
        n_outer, n_inner = check_sizes(n_outer, n_inner, n_max)
    else:
        if n_inner is not None:
            raise ValueError(
                f"n_inner={n_inner!r} is the inner sketch of the single-pass algorithm (passes=0); with "
                f"passes={passes} the core is an exact Rayleigh–Ritz projection and has none: give only "
                f"n_outer (the block of each pass; (passes+1)·n_outer applications for seigh) or rank")
        n_outer, _ = check_sizes(n_outer, n_outer, n_max)
        if method == "krylov" and passes * n_outer > n_max:
            raise ValueError(
                f"passes={passes} blocks of n_outer={n_outer} span a Krylov space of {passes * n_outer} "
                f"dimensions, more than the operator's {n_max}; use fewer passes or a smaller n_outer")
    if rank is not None and rank > n_outer:
        raise ValueError(f"rank={rank} must not exceed n_outer={n_outer} (the pairs the sketch holds)")
    return Sizes(n_outer, n_inner, rank, passes, method)
