"""A-posteriori certificates of a SEIGH / SSVD result: the probe error estimate and per-pair residuals.

* :func:`probe_residual_sq` — ``||(A − Â) g_i||²`` for ``n_probes`` seeded
  Gaussian probes ``g_i`` (independent of every test matrix of the run): the
  input of :func:`.errors.error_from_probes`. Costs ``n_probes`` operator
  applications (measured into the run store, resumable) and two streamed
  passes over the stored basis.
* :func:`residual_norms` — ``||A v_i − λ_i v_i||`` per returned eigenpair
  (SEIGH) or ``(||A v_i − σ_i u_i||² + ||A* u_i − σ_i v_i||²)^{1/2}`` per
  singular triplet (SSVD). A multi-pass SEIGH has ``A V`` already (the
  Rayleigh–Ritz step's measurements), so its residuals cost no operator
  application; otherwise ``r`` applications (SEIGH) or ``r`` plus ``r``
  adjoint ones (SSVD) on the stored vectors. For a symmetric ``A`` an
  eigenvalue lies within the residual norm of each ``λ_i`` (Weyl).

Both run on the schedulers they are given — the decomposition's own inside
:func:`sketchla.seigh` / :func:`sketchla.ssvd`; :func:`clients` resolves a
later call's ``client=`` without ever starting a cluster.
"""
from __future__ import annotations

import contextlib

import dask.array as da
import numpy as np

from ..blocking import BlockPlan
from ..executor import PROCESSES, client_context, compute
from ..linalg import inner
from ..measurement import measure
from ..random import TILE_ROWS, TestMatrix
from ..store import lazy
from ._stages import load_small, sketch_rows, store_product


@contextlib.contextmanager
def clients(client):
    """``(for_measure, for_linalg)`` for a certificate computed after its run: ``client`` as given
    (:mod:`sketchla.executor`; ``None``: the default distributed Client if one exists, else
    threads), except that ``"processes"`` runs in this process — a certificate never starts a
    cluster nor pickles the operator to new processes."""
    from distributed import Client

    with client_context("threads" if client == PROCESSES else client) as c:
        yield c, (c if isinstance(c, Client) else None)


def column_sq_norms(AX: da.Array, X: da.Array, W: np.ndarray, client) -> np.ndarray:
    """``||AX[:, j] − (X W)[:, j]||²`` for every column ``j``, streamed over row blocks in float64."""
    E = AX.astype(np.float64) - X.astype(np.float64) @ np.asarray(W, dtype=np.float64)
    (sq,) = compute((E * E).sum(axis=0), client=client)
    return np.asarray(sq, dtype=np.float64)


def _rows(arr, cols=None) -> da.Array:
    return sketch_rows(arr, arr.chunks[0], cols)


def probe_residual_sq(result, op, n_probes: int, seed, c_measure, c_linalg, progress, op_checked=False) -> np.ndarray:
    """Measure ``A G`` for ``n_probes`` Gaussian probes and return ``||A g_i − Â g_i||²``
    (``Â G = basis @ small_map(Qᵀ G)``, the result's range basis and small factors).
    ``op_checked``: the caller has checked ``op`` against the store (a resumed probe
    measurement then needs no operator check of its own)."""
    run, basis = result.store, result._range_basis
    D_R = op.shape[1]
    probe = TestMatrix((D_R, n_probes), seed=seed, name="probe", dtype=basis.dtype)
    AG = measure(op, probe, run, f"probe{n_probes}_s{seed}", client=c_measure, progress=progress,
                 check_operator=not op_checked)
    G = probe.to_dask(row_block=BlockPlan.generator_rows(D_R, None, TILE_ROWS))
    W = result._small_map(inner(result.Q, G, client=c_linalg))
    return column_sq_norms(lazy(AG), lazy(basis), W, c_linalg)


def _vectors(run, name: str, arrays, coeffs: np.ndarray, client):
    """Stage ``name``: ``[arrays…] @ coeffs`` in column chunks of a measurement (see ``store_product``)."""
    rb, D = arrays[0].chunks[0], int(arrays[0].shape[0])
    plan = BlockPlan(row_block=rb)
    plan = BlockPlan(row_block=rb, chunk=plan.measure_chunk(D, D, int(coeffs.shape[1])))
    return store_product(run, name, arrays, coeffs, plan, client=client)


def _measured(op, vectors, run, name, c_measure, progress, op_checked):
    plan = BlockPlan(chunk=vectors.chunks[1], row_block=vectors.chunks[0])
    return measure(op, vectors, run, name, plan=plan, client=c_measure, progress=progress,
                   check_operator=not op_checked)


def seigh_residuals(result, op, c_measure, c_linalg, progress, op_checked=False) -> np.ndarray:
    """``||A v_i − λ_i v_i||`` for the ``r`` returned eigenpairs (module docstring)."""
    run, lam = result.store, result.eigenvalues
    r = lam.size
    core = run.get_stage("core") or {}
    if core.get("images"):  # multi-pass: A [V…] = [Y…] is stored, A (V U) = [Y…] U
        (ritz_U,) = load_small(run, ["ritz_U"])
        images = [run.group[n] for n in core["images"]]
        V = _rows(result.Q, slice(0, r))
        AV = _vectors(run, f"A_ritz{r}", images, ritz_U[:, :r], c_linalg)
    else:
        Vz = _vectors(run, f"ritz{r}", [result.Q], result.core_U, c_linalg)
        V = _rows(Vz)
        AV = _measured(op, Vz, run, f"A_ritz{r}", c_measure, progress, op_checked)
    return np.sqrt(column_sq_norms(_rows(AV), V, np.diag(lam), c_linalg))


def ssvd_residuals(result, op, c_measure, c_linalg, progress, op_checked=False) -> np.ndarray:
    """``(||A v_i − σ_i u_i||² + ||A* u_i − σ_i v_i||²)^{1/2}`` for the ``r`` returned triplets."""
    run, S = result.store, result.S
    r = S.size
    U = _vectors(run, f"left{r}", [result.P], result.core_U, c_linalg)
    V = _vectors(run, f"right{r}", [result.Q], np.ascontiguousarray(result.core_Vh.T), c_linalg)
    AV = _measured(op, V, run, f"A_right{r}", c_measure, progress, op_checked)
    AhU = _measured(op.H, U, run, f"AH_left{r}", c_measure, progress, op_checked)
    sq = column_sq_norms(_rows(AV), _rows(U), np.diag(S), c_linalg)
    sq += column_sq_norms(_rows(AhU), _rows(V), np.diag(S), c_linalg)
    return np.sqrt(sq)
