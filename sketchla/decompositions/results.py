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

import dask.array as da
import numpy as np

from ..blocking import BlockPlan
from ..linalg import inner, matmul
from ..measurement import measure
from ..operators import aslinearoperator
from ..random import TILE_ROWS, TestMatrix
from ..store import RunStore, StoreCorruptError, keep_alive, lazy
from ._checks import check_n_probes
from ._stages import load_small
from .errors import ErrorEstimate, error_from_probes

log = logging.getLogger(__name__)


def _probe_residual_sq(run: RunStore, op, basis, W_fn, n_probes: int, seed, client, progress):
    """Measure ``A G`` for ``q`` Gaussian probes and return ``||A g_i − Â g_i||²``.

    ``basis`` is the stored orthonormal factor whose span holds ``Â``'s range
    and ``W_fn(G_dask)`` returns the small ``n × q`` matrix with ``Â G = basis @ W``.
    """
    n_probes = check_n_probes(n_probes, allow_zero=False)
    D_L, D_R = op.shape
    seed = run.params["seed"] if seed is None else seed
    probe = TestMatrix((D_R, int(n_probes)), seed=seed, name="probe", dtype=basis.dtype)
    AG = measure(op, probe, run, f"probe{n_probes}_s{seed}", client=client, progress=progress)
    W = W_fn(probe.to_dask(row_block=BlockPlan.generator_rows(D_R, None, TILE_ROWS)))
    E = da.from_zarr(AG).astype(np.float64) - da.from_zarr(basis).astype(np.float64) @ W
    return np.asarray((E * E).sum(axis=0).compute())


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

    def estimate_error(self, op, n_probes: int = 10, seed=None, client=None, progress=True) -> ErrorEstimate:
        """A-posteriori error of ``Â`` against ``op`` from ``n_probes`` extra applications (see :mod:`.errors`)."""
        op = aslinearoperator(op)
        if tuple(op.shape) != self.shape:
            raise ValueError(f"op has shape {op.shape}, but this result approximates a {self.shape} operator")
        sq = _probe_residual_sq(self.store, op, self._range_basis,
                                lambda G: self._small_map(inner(self.Q, G)), n_probes, seed, client, progress)
        self.error = error_from_probes(sq, self._spectrum)
        _save_error(self.store, sq)
        return self.error


class SEIGHResult(_StoredResult):
    """Output of :func:`sketchla.seigh`: ``A ≈ V Λ Vᵀ`` with ``V = Q U``.

    Attributes
    ----------
    eigenvalues : (n_O,) float64, sorted by descending ``|λ|``, signs kept
    core_U : (n_O, n_O) float64, eigenvectors of the core matrix ``C``
    Q : zarr array (D × n_O), orthonormal basis of the outer sketch
    store : the :class:`~sketchla.store.RunStore` holding everything
    error : :class:`ErrorEstimate` or ``None`` until :meth:`estimate_error`
    """

    def __init__(self, run: RunStore, eigenvalues, core_U, Q, error=None):
        self.store = run
        self.eigenvalues = eigenvalues
        self.core_U = core_U
        self.Q = Q
        self.error: ErrorEstimate | None = error

    @property
    def _spectrum(self):
        return self.eigenvalues

    @property
    def _range_basis(self):
        return self.Q

    @classmethod
    def from_store(cls, run: RunStore) -> "SEIGHResult":
        lam, U = load_small(run, ["eigenvalues", "core_U"])
        return cls(run, lam, U, keep_alive(run, run.group["Q"]), error=_load_error(run))

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
    P : zarr (D_L × n_O), Q : zarr (D_R × n_O), orthonormal bases of the outer sketches
    """

    def __init__(self, run: RunStore, S, core_U, core_Vh, P, Q, error=None):
        self.store = run
        self.S = S
        self.core_U = core_U
        self.core_Vh = core_Vh
        self.P = P
        self.Q = Q
        self.error: ErrorEstimate | None = error

    @property
    def _spectrum(self):
        return self.S

    @property
    def _range_basis(self):
        return self.P

    @classmethod
    def from_store(cls, run: RunStore) -> "SSVDResult":
        S, U, Vh = load_small(run, ["singular_values", "core_U", "core_Vh"])
        return cls(run, S, U, Vh, keep_alive(run, run.group["P"]), keep_alive(run, run.group["Q"]),
                   error=_load_error(run))

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


def _save_error(run: RunStore, sq) -> None:
    run.set_stage("error", {"probe_sq_norms": [float(v) for v in sq]})


def _load_error(run: RunStore):
    info = run.get_stage("error")
    if not info:
        return None
    values_name = "eigenvalues" if run.params["algorithm"] == "seigh" else "singular_values"
    (values,) = load_small(run, [values_name])
    return error_from_probes(info["probe_sq_norms"], values)


def open_result(path, mode: str = "r+", *, storage_options=None):
    """Reopen the result of a finished ``seigh``/``ssvd`` run from its store path.

    ``mode="r+"`` (default) allows :meth:`estimate_error` and
    ``write_eigenvectors`` to add to the store; ``mode="r"`` opens read-only.
    ``path`` may be a URL, with ``storage_options`` for its filesystem.
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
    return (SEIGHResult if algorithm == "seigh" else SSVDResult).from_store(run)
