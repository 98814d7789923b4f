"""The sketched analysis of one Hessian: SEIGH (paper Alg. 2) and the overlap of Eq. 3 for every k ≤ n_O.

:func:`analyse` runs :func:`sketchla.seigh` on the Hessian (n_I Hessian-vector
products single-pass, or ``(q + 1)·n_O`` with ``passes=q`` of block Krylov,
measured into a resumable Zarr store) and compares the top-k
magnitude mask of the checkpoint's parameters with the top-k |λ| sketched
eigenspace for every k = 1..n_O (:func:`overlap_experiments.overlap.overlap_curve`).
The D × n_O eigenvectors stay lazy (``Q·U`` streamed from the store; only the
n_O mask rows are gathered), unless ``keep`` leading ones are wanted in
memory for eigenspace comparisons (small D only): then all of them are
materialised once and the curve is taken from that array.

The record (a flat dict):

==================  ===========================================================
``eigenvalues``     (n_O,) float64, by descending |λ| (signs kept)
``overlap``         (n_O,) float64, overlap_k for k = 1..n_O
``basis``           (D, keep) leading eigenvectors (only when ``keep`` > 0)
``store``           path of the SEIGH run store
``n_samples``       N of the Hessian sample
``seconds``         SEIGH call (+ materialising the eigenvectors)
``seconds_overlap`` the overlap curve
``stages``          SEIGH's own timings per stage (``measure``, QR, …)
``per_hvp``         measurement seconds / HVPs (``None`` when not measured in this store's first run)
``hvps``            Hessian-vector products of the decomposition (its certificate's probes not counted)
``error_frobenius`` the certificate's estimate of ‖H − Ĥ‖_F (10 more HVPs, sketchla's default)
``approx_frobenius`` ‖Ĥ‖_F, its scale
``tail_dominated``  the estimate is comparable to ‖Ĥ‖_F (sketchla's ``TailDominatedWarning``)
==================  ===========================================================

A tail-dominated estimate is expected at the paper's single-pass sizes (n_O ≪ D
on a heavy-tailed Hessian spectrum): the warning is logged once per Hessian
with its numbers and kept in the record (and results.json), not raised again
as a Python warning for every analysis.
"""
from __future__ import annotations

import logging
import time
import warnings

import numpy as np

import sketchla as sk

from . import overlap as ov
from .progress import interactive, stage

logger = logging.getLogger(__name__)

__all__ = ["analyse"]


def analyse(op, order, *, n_outer: int, n_inner: int | None, seed: int, store, chunk: int, client=False,
            gpu: bool = False, keep: int = 0, n_samples: int | None = None, progress: bool = False,
            tag: str = "H", passes: int = 0, operator_id: str | None = None) -> dict:
    """Sketched record (module docstring) of the symmetric operator ``op`` (D × D) against the
    parameter order ``order``; SEIGH with ``n_outer``, ``n_inner`` (``None`` with ``passes``),
    ``passes``, ``seed`` into ``store`` (resumed if it holds the same run), ``chunk`` columns per
    measurement task, on ``client`` (a :func:`sketchla.get_client` client, or ``False`` for
    threads here); ``gpu``: QR and thin products on CuPy too. ``operator_id``: the Hessian's own
    name (checkpoint and sample digests), so that reopening the store re-applies no HVP to
    check it. ``progress``: Dask's bar on a terminal, else a heartbeat log line
    (:mod:`overlap_experiments.progress`)."""
    bars = progress and interactive()
    sizes = f"n_O = {n_outer}, n_I = {n_inner}" if not passes else \
        f"n_O = {n_outer}, passes = {passes}: {(passes + 1) * n_outer}"
    desc = f"{tag}: SEIGH, {sizes} Hessian-vector products, N = {n_samples}, D = {op.shape[0]}"
    with stage(desc, enabled=progress and not bars) as st:
        # the one SEIGH call of the experiments; its options are the run's sketch settings
        # (pipeline._analyse_hessians: `sketch`, which also names the store)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", sk.TailDominatedWarning)
            r = sk.seigh(op, n_outer, n_inner, seed=seed, store=str(store), client=client, dtype="float32",
                         chunk=chunk, progress=bars, gpu=gpu, passes=passes, operator_id=operator_id)
        for w in caught:  # the certificate's verdict: logged and recorded; anything else passed on
            if issubclass(w.category, sk.TailDominatedWarning):
                logger.info("%s: %s", tag, w.message)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        vectors = r.eigenvectors
        if keep:
            vectors = np.asarray(vectors.compute(scheduler="threads"))
    t_seigh = st["seconds"]
    t0 = time.perf_counter()
    curve = ov.overlap_curve(order, vectors, n_outer)
    t_overlap = time.perf_counter() - t0
    stages = r.timings
    meas = stages.get("measure")
    record = {
        "eigenvalues": np.asarray(r.eigenvalues, dtype=np.float64), "overlap": curve,
        "store": str(store), "n_samples": n_samples,
        "seconds": t_seigh, "seconds_overlap": t_overlap, "stages": stages,
        "per_hvp": (meas / r.applications) if meas else None, "hvps": int(r.applications),
    }
    if r.error is not None:
        record.update(error_frobenius=float(r.error.frobenius), approx_frobenius=float(r.error.approx_frobenius),
                      tail_dominated=bool(r.error.tail_dominated))
    if keep:
        record["basis"] = vectors[:, :min(keep, vectors.shape[1])]
    logger.info("%s: top |λ| %.3g, overlap k=%d %.4f (chance %.2e), %.1fs", tag, abs(record["eigenvalues"][0]),
                n_outer, curve[-1], n_outer / op.shape[0], t_seigh + t_overlap)
    return record
