"""Result objects of SEIGH / SSVD, backed by their run store.

Spectra and the small core factors live in memory; the D-sized factors are
lazy Dask products ``Q @ U`` over the orthonormal bases stored in Zarr, so
they are streamed block by block whenever they are used and never
materialised in RAM (docs/ARCHITECTURE.md, the memory rule). A result can be reopened from
its store with :func:`open_result`.

The arrays a result hands out (``Q``, ``P``, ``eigenvectors``, ``U``, ``Vh``,
``apply``'s) keep a temporary store (``store=None``) alive while they are
referenced, and their reads refuse a missing chunk instead of returning zeros
(:mod:`sketchla.store.lifetime`).
"""
from __future__ import annotations

import logging
import time
import warnings

import dask.array as da
import numpy as np

from ..blocking import BlockPlan
from ..linalg import inner, matmul
from ..operators import aslinearoperator
from ..store import RunStore, StoreCorruptError, keep_alive, lazy
from . import _certificates as cert
from ._checks import check_n_probes
from ._core import check_core_condition
from ._sizes import Sizes
from ._stages import load_small
from .errors import ErrorEstimate, TailDominatedWarning, error_from_probes

log = logging.getLogger(__name__)


class _StoredResult:
    """What SEIGH and SSVD results share: their store, parameters and error estimate.

    Subclasses set ``_spectrum`` (the values whose squares sum to ``||Â||²_F``),
    ``_range_basis`` (the stored orthonormal ``D_L × n_O`` factor spanning
    ``Â``'s range, with ``Â X = basis @ _small_map(Qᵀ X)``) and ``Q``.
    """

    store: RunStore
    error: ErrorEstimate | None
    Q: object  # zarr array (D_R × n_O)

    @property
    def params(self) -> dict:
        return dict(self.store.params)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.store.params["shape"])

    @property
    def timings(self) -> dict:
        """Seconds per stage of the run (``measure``, ``qr``, ``thin_products``,
        ``core_solve``) as recorded in its store; ``{}`` if none were recorded."""
        return {k: float(v) for k, v in dict(self.store.get_stage("timings") or {}).items()}

    @property
    def passes(self) -> int:
        """``q``: 0 for a single-pass sketch (paper Alg. 1/2), else the passes of a multi-pass run."""
        return int(self.store.params.get("passes", 0))

    @property
    def applications(self) -> int:
        """Operator applications the decomposition made (adjoint included; not the error probes or
        residuals): SEIGH ``n_I`` / ``(q+1)·n_O``, SSVD ``n_I + 2·n_O`` / ``(2q+1)·n_O``."""
        p = self.store.params
        sizes = Sizes(p["n_outer"], p["n_inner"], self.rank, self.passes, p.get("method", "krylov"))
        return sizes.applications(p["algorithm"])

    def estimate_error(self, op, n_probes: int = 10, seed=None, client=None, progress=True) -> ErrorEstimate:
        """A-posteriori error of ``Â`` against ``op`` from ``n_probes`` extra applications (see :mod:`.errors`).

        Runs on ``client`` if given, else on the default distributed Client if
        one exists, else on threads in this process: it never starts a cluster
        (:func:`sketchla.seigh` / :func:`sketchla.ssvd` compute it on their own
        schedulers). Stored with the run (for this ``rank``)."""
        op = self._check_op(op)
        n_probes = check_n_probes(n_probes, allow_zero=False)
        with cert.clients(client) as (c_measure, c_linalg):
            return self._certify(op, n_probes, seed, c_measure, c_linalg, progress)

    def compute_residuals(self, op, client=None, progress=True) -> np.ndarray:
        """``residual_norms`` (see :mod:`._certificates`), computed now on ``client`` (as
        :meth:`estimate_error`; never a new cluster) and stored with the run."""
        op = self._check_op(op)
        with cert.clients(client) as (c_measure, c_linalg):
            return self._residuals(op, c_measure, c_linalg, progress)

    def _check_op(self, op):
        op = aslinearoperator(op)
        if tuple(op.shape) != self.shape:
            raise ValueError(f"op has shape {op.shape}, but this result approximates a {self.shape} operator")
        return op

    def _certify(self, op, n_probes, seed, c_measure, c_linalg, progress, op_checked=False) -> ErrorEstimate:
        seed = self.store.params["seed"] if seed is None else seed
        t0 = time.perf_counter()
        sq = cert.probe_residual_sq(self, op, n_probes, seed, c_measure, c_linalg, progress, op_checked)
        self.error = error_from_probes(sq, self._spectrum)
        _save_error(self.store, sq, self.rank)
        _add_timing(self.store, "certificate", time.perf_counter() - t0)
        return self.error

    def _residuals(self, op, c_measure, c_linalg, progress, op_checked=False) -> np.ndarray:
        t0 = time.perf_counter()
        norms = self._residual_fn(self, op, c_measure, c_linalg, progress, op_checked)
        self.residual_norms = norms
        self.store.set_stage(f"residuals{len(self._spectrum)}", {"norms": [float(v) for v in norms]})
        _add_timing(self.store, "residuals", time.perf_counter() - t0)
        return norms

    def _needs(self, n_probes: int, residuals: bool) -> bool:
        """Whether returning this result with these certificates needs work (a scheduler)."""
        return bool((n_probes and (self.error is None or self.error.n_probes != n_probes))
                    or (residuals and self.residual_norms is None))

    def _warn(self, stacklevel: int = 3) -> None:
        """Warn about what the stored facts say makes this result unreliable: an ill-conditioned
        single-pass core (:class:`~._core.IllConditionedCoreWarning`) or a tail-dominated
        error estimate (:class:`~.errors.TailDominatedWarning`), each naming the remedy."""
        core = self.store.get_stage("core") or {}
        if core.get("core_condition"):
            p = self.store.params
            names = ("ΥᵀQ", "ΩᵀQ") if p["algorithm"] == "seigh" else ("Υ_IᵀP", "Ω_IᵀQ")
            check_core_condition(core["core_condition"], p["n_outer"], p["n_inner"], names, stacklevel + 1)
        if self.error is not None and self.error.tail_dominated:
            e = self.error
            if self.passes == 0:
                what = ("a single-pass sketch mixes the tail into its core, so even the largest values can be far "
                        "off; remedies: passes=1 or 2 (block Krylov, exact Rayleigh-Ritz), a larger sketch "
                        "(n_outer), or rank= to keep only the pairs the sketch resolves")
            else:
                what = ("the Ritz values are not inflated, but the smaller pairs may be unresolved; remedies: "
                        "more passes, a larger block (n_outer); residuals=True tells which pairs are accurate")
            warnings.warn(
                f"the a-posteriori estimate says A - Â is comparable to Â: ||A - Â||_F ≈ {e.frobenius:.3g} vs "
                f"||Â||_F = {e.approx_frobenius:.3g} ({e.n_probes} probes); {what}.",
                TailDominatedWarning, stacklevel=stacklevel)


class SEIGHResult(_StoredResult):
    """Output of :func:`sketchla.seigh`: ``A ≈ V Λ Vᵀ`` with ``V = Q U``.

    Attributes
    ----------
    eigenvalues : (n_O,) float64, sorted by descending ``|λ|``, signs kept
    core_U : (n_O, n_O) float64, eigenvectors of the core matrix ``C``
    Q : zarr array (D × n_O), orthonormal basis of the outer sketch (single pass), or the
        Ritz vectors themselves (multi-pass; ``core_U`` is then the identity)
    store : the :class:`~sketchla.store.RunStore` holding everything
    error : :class:`ErrorEstimate` (the default certificate) or ``None`` when turned off
    rank : ``r`` of a fixed-rank result (the ``r`` pairs of largest ``|λ|``), else ``None``
    residual_norms : ``||A v_i − λ_i v_i||`` per pair (``residuals=True``), else ``None``
    """

    _residual_fn = staticmethod(cert.seigh_residuals)

    def __init__(self, run: RunStore, eigenvalues, core_U, Q, error=None, rank=None, residual_norms=None):
        self.store = run
        self.eigenvalues = eigenvalues
        self.core_U = core_U
        self.Q = Q
        self.error: ErrorEstimate | None = error
        self.rank = rank
        self.residual_norms = residual_norms

    @property
    def _spectrum(self):
        return self.eigenvalues

    @property
    def _range_basis(self):
        return self.Q

    @classmethod
    def from_store(cls, run: RunStore, rank=None) -> "SEIGHResult":
        """The result stored in ``run``; ``rank=r``: its best rank-``r`` part (the ``r`` pairs of
        largest ``|λ|`` of the core, Tropp et al. 2017 §5: fixed-rank approximation)."""
        lam, U = load_small(run, ["eigenvalues", "core_U"])
        lam, U = lam[:rank], U[:, :rank]
        return cls(run, lam, U, keep_alive(run, run.group["Q"]), error=_load_error(run, rank, lam),
                   rank=rank, residual_norms=_load_residuals(run, lam.size))

    @property
    def eigenvectors(self) -> da.Array:
        """Lazy ``D × n_O`` Dask array ``Q @ U`` (orthonormal columns, same order as ``eigenvalues``)."""
        Q = lazy(self.Q)
        return Q @ self.core_U.astype(Q.dtype)

    def write_eigenvectors(self, name: str = "eigenvectors"):
        """Stream ``Q @ U`` into the run store as a Zarr array and return it."""
        D, n = self.Q.shape
        out = self.store.array(name, (D, n), chunks=(BlockPlan().thin_row_block(n, self.Q.dtype), n),
                               dtype=self.Q.dtype)
        return keep_alive(self.store, matmul(self.Q, self.core_U.astype(self.Q.dtype), out=out))

    def apply(self, X) -> da.Array:
        """Lazy ``Â X = Q U Λ Uᵀ Qᵀ X`` for a ``D × b`` array ``X`` (NumPy/Dask/Zarr)."""
        W = self._small_map(inner(self.Q, X))
        return lazy(self.Q).astype(np.float64) @ W

    def _small_map(self, QtX):
        U, lam = self.core_U, self.eigenvalues
        return U @ (lam[:, None] * (U.T @ np.asarray(QtX, dtype=np.float64)))

    def __repr__(self) -> str:
        return (f"SEIGHResult(shape={self.shape}, n_outer={len(self.eigenvalues)}, "
                f"top |λ|={np.abs(self.eigenvalues[:3]).round(6).tolist()}, store={self.store.path!r})")


class SSVDResult(_StoredResult):
    """Output of :func:`sketchla.ssvd`: ``A ≈ U diag(S) Vh`` with ``U = P U_c``, ``Vh = V_cᵀ Qᵀ``.

    Attributes
    ----------
    S : (n_O,) float64 singular values, descending
    core_U, core_Vh : (n_O, n_O) float64 factors of the core SVD
    P : zarr (D_L × n_O), Q : zarr (D_R × n_O), orthonormal bases of the outer sketches (single
        pass), or the singular vectors themselves (multi-pass; core factors the identity)
    error, rank : as for :class:`SEIGHResult`
    residual_norms : ``(||A v_i − σ_i u_i||² + ||A* u_i − σ_i v_i||²)^{1/2}`` (``residuals=True``)
    """

    _residual_fn = staticmethod(cert.ssvd_residuals)

    def __init__(self, run: RunStore, S, core_U, core_Vh, P, Q, error=None, rank=None, residual_norms=None):
        self.store = run
        self.S = S
        self.core_U = core_U
        self.core_Vh = core_Vh
        self.P = P
        self.Q = Q
        self.error: ErrorEstimate | None = error
        self.rank = rank
        self.residual_norms = residual_norms

    @property
    def _spectrum(self):
        return self.S

    @property
    def _range_basis(self):
        return self.P

    @classmethod
    def from_store(cls, run: RunStore, rank=None) -> "SSVDResult":
        """The result stored in ``run``; ``rank=r``: its best rank-``r`` part (the ``r`` largest
        singular triplets of the core, Tropp et al. 2017 §5)."""
        S, U, Vh = load_small(run, ["singular_values", "core_U", "core_Vh"])
        S, U, Vh = S[:rank], U[:, :rank], Vh[:rank]
        return cls(run, S, U, Vh, keep_alive(run, run.group["P"]), keep_alive(run, run.group["Q"]),
                   error=_load_error(run, rank, S), rank=rank, residual_norms=_load_residuals(run, S.size))

    @property
    def U(self) -> da.Array:
        """Lazy left singular vectors ``P U_c`` (D_L × n_O)."""
        P = lazy(self.P)
        return P @ self.core_U.astype(P.dtype)

    @property
    def Vh(self) -> da.Array:
        """Lazy right singular vectors ``V_cᵀ Qᵀ`` (n_O × D_R)."""
        Q = lazy(self.Q)
        return (Q @ self.core_Vh.T.astype(Q.dtype)).T

    def _small_map(self, QtX):
        return self.core_U @ (self.S[:, None] * (self.core_Vh @ np.asarray(QtX, dtype=np.float64)))

    def apply(self, X) -> da.Array:
        """Lazy ``Â X`` for a ``D_R × b`` array ``X``."""
        return lazy(self.P).astype(np.float64) @ self._small_map(inner(self.Q, X))

    def __repr__(self) -> str:
        return (f"SSVDResult(shape={self.shape}, n_outer={len(self.S)}, "
                f"top σ={self.S[:3].round(6).tolist()}, store={self.store.path!r})")


def _save_error(run: RunStore, sq, rank) -> None:
    run.set_stage("error", {"probe_sq_norms": [float(v) for v in sq], "rank": rank})


def _load_error(run: RunStore, rank, values):
    """The stored estimate if it was made for this ``rank`` (stores made before ranks: the full result)."""
    info = run.get_stage("error")
    if not info or info.get("rank") != rank:
        return None
    return error_from_probes(info["probe_sq_norms"], values)


def _load_residuals(run: RunStore, r: int):
    info = run.get_stage(f"residuals{r}")
    return None if not info else np.asarray(info["norms"], dtype=np.float64)


def _add_timing(run: RunStore, key: str, seconds: float) -> None:
    timings = dict(run.get_stage("timings") or {})
    timings[key] = seconds
    run.set_stage("timings", timings)


def open_result(path, mode: str = "r+", *, rank=None, storage_options=None):
    """Reopen the result of a finished ``seigh``/``ssvd`` run from its store path.

    ``mode="r+"`` (default) allows :meth:`estimate_error` and
    ``write_eigenvectors`` to add to the store; ``mode="r"`` opens read-only.
    ``path`` may be a URL, with ``storage_options`` for its filesystem.
    ``rank=r``: the best rank-``r`` part of the stored result.
    """
    if mode not in ("r", "r+"):
        raise ValueError(f"mode={mode!r} must be 'r' or 'r+'")
    run = RunStore.open(path, None, mode=mode, storage_options=storage_options)
    algorithm = run.params.get("algorithm")
    if algorithm not in ("seigh", "ssvd"):
        raise ValueError(f"store {path!r} does not hold a seigh/ssvd run (algorithm={algorithm!r})")
    recorded = "core" in run.stages()
    if run.get_stage("core") is None:  # a damaged result raises (mode 'r') or is dropped (logged)
        if recorded:
            raise StoreCorruptError(
                f"the {algorithm} run in {path!r} had finished, but files of its result are damaged (see the "
                f"log); call sketchla.{algorithm}(..., store={path!r}) with the same parameters to recompute them")
        raise ValueError(
            f"the {algorithm} run in {path!r} is not finished; call sketchla.{algorithm}(..., store={path!r}) "
            "with the same parameters to resume it")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, (int, np.integer))
                             or not 1 <= rank <= run.params["n_outer"]):
        raise ValueError(f"rank={rank!r} must be an integer in [1, n_outer={run.params['n_outer']}]")
    return (SEIGHResult if algorithm == "seigh" else SSVDResult).from_store(run, rank)
