"""The sketched analysis of one Hessian: SEIGH (paper Alg. 2) and the overlap of Eq. 3 for every k ≤ n_O.

:func:`analyse` runs :func:`sketchla.seigh` on the Hessian (n_I Hessian-vector
products, measured into a resumable Zarr store) and compares the top-k
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
``per_hvp``         measurement seconds / n_I (``None`` when not measured in this store's first run)
==================  ===========================================================
"""
from __future__ import annotations

import logging
import time

import numpy as np

import sketchla as sk

from . import overlap as ov
from .progress import interactive, stage

logger = logging.getLogger(__name__)

__all__ = ["analyse"]


def analyse(op, order, *, n_outer: int, n_inner: int, seed: int, store, chunk: int, client=False,
            gpu: bool = False, keep: int = 0, n_samples: int | None = None, progress: bool = False,
            tag: str = "H") -> dict:
    """Sketched record (module docstring) of the symmetric operator ``op`` (D × D) against the
    parameter order ``order``; SEIGH with ``n_outer``, ``n_inner``, ``seed`` into ``store``
    (resumed if it holds the same run), ``chunk`` columns per measurement task, on ``client``
    (a :func:`sketchla.get_client` client, or ``False`` for threads here); ``gpu``: QR and thin
    products on CuPy too. ``progress``: Dask's bar on a terminal, else a heartbeat log line
    (:mod:`overlap_experiments.progress`)."""
    bars = progress and interactive()
    desc = f"{tag}: SEIGH, n_O = {n_outer}, n_I = {n_inner} Hessian-vector products, N = {n_samples}, D = {op.shape[0]}"
    with stage(desc, enabled=progress and not bars) as st:
        # the one SEIGH call of the experiments; its options are the run's sketch settings
        # (pipeline._analyse_hessians: `sketch`, which also names the store)
        r = sk.seigh(op, n_outer, n_inner, seed=seed, store=str(store), client=client, dtype="float32",
                     chunk=chunk, progress=bars, gpu=gpu)
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
        "per_hvp": (meas / n_inner) if meas else None,
    }
    if keep:
        record["basis"] = vectors[:, :min(keep, vectors.shape[1])]
    logger.info("%s: top |λ| %.3g, overlap k=%d %.4f (chance %.2e), %.1fs", tag, abs(record["eigenvalues"][0]),
                n_outer, curve[-1], n_outer / op.shape[0], t_seigh + t_overlap)
    return record
