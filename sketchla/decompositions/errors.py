"""A-posteriori error estimates for sketched decompositions.

After a decomposition ``Â`` of an operator ``A`` is formed, a few *extra*
standard Gaussian probe vectors ``g_1..g_q`` (independent of every test matrix
used to build ``Â``) give cheap, rigorous statements about the error
``E = A − Â`` (Halko, Martinsson & Tropp 2011, §4.3; Tropp, Yurtsever, Udell &
Cevher 2019, §6):

* Frobenius norm: ``(1/q) Σ_i ||E g_i||²`` is an *unbiased* estimator of
  ``||E||_F²`` (since ``E[g gᵀ] = I``); it is a weighted sum of χ² variables
  with ``q`` degrees of freedom each, so its relative spread is at most that of
  ``χ²_q / q`` (worst case: ``E`` of rank one). ``frobenius_interval`` reports
  that worst-case two-sided interval.
* Spectral norm (Halko et al. 2011, Lemma 4.1 / Eq. 4.3):
  ``||E||_2 ≤ 10·sqrt(2/π)·max_i ||E g_i||`` with probability at least
  ``1 − 10^{−q}``.

The numerical rank captured is estimated as the number of computed
eigen/singular values whose magnitude exceeds the estimated Frobenius error:
pairs below that noise floor are not resolved by the sketch (cf. the scree
diagnostics of Tropp et al. 2019, §6.4).

An approximation whose estimated error is comparable to itself
(``||A − Â||_F ≥`` :data:`TAIL_DOMINATED` ``· ||Â||_F``) is *tail-dominated*:
most of ``A`` lies outside it. A single-pass sketch then mixes that tail into
its core, so even its largest values can be far off; a multi-pass result's
values are Rayleigh–Ritz values (never larger than the true ones), but its
smaller pairs may be unresolved. :meth:`ErrorEstimate.tail_dominated` says
so, and the decompositions warn (:class:`TailDominatedWarning`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: an estimated ``||A − Â||_F`` at least this fraction of ``||Â||_F`` is "tail-dominated"
TAIL_DOMINATED = 0.5


class TailDominatedWarning(UserWarning):
    """The a-posteriori error estimate says ``A − Â`` is comparable to ``Â`` (see :mod:`.errors`)."""


@dataclass(frozen=True)
class ErrorEstimate:
    """Result of :func:`error_from_probes`.

    Attributes
    ----------
    n_probes : number of Gaussian probes ``q``
    frobenius : estimate of ``||A − Â||_F`` (square root of the unbiased estimate of its square)
    spectral_bound : upper bound on ``||A − Â||_2`` holding with probability ≥ ``spectral_probability``
    spectral_probability : ``1 − 10^{−q}``
    approx_frobenius : ``||Â||_F`` (exact, from the computed spectrum)
    numerical_rank : number of computed values with magnitude above ``frobenius``
    probe_norms : ``||E g_i||`` for each probe
    """

    n_probes: int
    frobenius: float
    spectral_bound: float
    spectral_probability: float
    approx_frobenius: float
    numerical_rank: int
    probe_norms: np.ndarray = field(repr=False)

    @property
    def relative_frobenius(self) -> float:
        """``frobenius / ||Â||_F`` (``inf`` when ``Â = 0``)."""
        return self.frobenius / self.approx_frobenius if self.approx_frobenius > 0 else float("inf")

    @property
    def tail_dominated(self) -> bool:
        """``||A − Â||_F`` estimated at :data:`TAIL_DOMINATED` ``· ||Â||_F`` or more."""
        return self.relative_frobenius >= TAIL_DOMINATED

    def frobenius_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Worst-case (rank-one ``E``) two-sided interval for ``||A − Â||_F``.

        With ``est² = (1/q)Σ||E g_i||²`` and ``est²·q/||E||_F² ~ χ²_q`` in the
        worst case, ``||E||_F ∈ [est·sqrt(q/χ²_{q,1−α/2}), est·sqrt(q/χ²_{q,α/2})]``
        with probability ≥ ``confidence``.
        """
        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence={confidence!r} must lie strictly between 0 and 1")
        a = 1.0 - confidence
        q = self.n_probes
        import scipy.stats  # ~2 s to import: only when an interval is asked for

        hi_q = scipy.stats.chi2.ppf(1.0 - a / 2.0, q)
        lo_q = scipy.stats.chi2.ppf(a / 2.0, q)
        return (self.frobenius * np.sqrt(q / hi_q), self.frobenius * np.sqrt(q / lo_q))


def error_from_probes(residual_col_sq_norms, values) -> ErrorEstimate:
    """Build an :class:`ErrorEstimate` from ``||E g_i||²`` and the computed spectrum.

    Parameters
    ----------
    residual_col_sq_norms : (q,) array of ``||(A − Â) g_i||²`` for standard Gaussian probes
    values : (n,) computed eigenvalues or singular values of ``Â``
    """
    sq = np.asarray(residual_col_sq_norms, dtype=np.float64).ravel()
    if sq.size == 0:
        raise ValueError("residual_col_sq_norms is empty: at least one probe is needed")
    if not np.all(np.isfinite(sq)):
        raise ValueError("residual_col_sq_norms contains NaN/Inf: the operator produced non-finite values")
    values = np.asarray(values, dtype=np.float64)
    q = sq.size
    frob = float(np.sqrt(sq.mean()))
    norms = np.sqrt(sq)
    return ErrorEstimate(
        n_probes=q,
        frobenius=frob,
        spectral_bound=float(10.0 * np.sqrt(2.0 / np.pi) * norms.max()),
        spectral_probability=float(1.0 - 10.0 ** (-q)),
        approx_frobenius=float(np.linalg.norm(values)),
        numerical_rank=int(np.count_nonzero(np.abs(values) > frob)),
        probe_norms=norms,
    )
