"""Synthetic study of Grassmannian metrics (paper Alg. 3, Appendix A.4, Table 2).

For every cell of the grid — a dimension ``d``, a ratio ``ρ`` (so
``k = max(1, round(ρ·d))``, Alg. 3 line 3) and a *modality* —

* ``"O-O"``: two independent Haar-uniform points of O^{d×k},
* ``"O-M"``: a Haar point of O^{d×k} and a uniform k-sparse mask (M^{d×k}),
* ``"M-M"``: two independent uniform masks,

``T`` random pairs are drawn and every metric of :data:`sketchla.grassmann.METRICS`
is evaluated, normalised to a similarity in [0, 1] (1 = identical spans) by
:func:`sketchla.grassmann.normalized` (``1 − dist / max_dist``, see that
function; ``overlap`` is already a similarity).

Reproducibility
---------------
Sample ``t`` of cell ``(d, k, modality)`` is a pure function of
``(seed, d, k, modality, t)``: its generator is
``numpy.random.SeedSequence(seed, spawn_key=(d, k, modality_index, t))``, so the
numbers do not depend on how the samples are batched into Dask tasks, on the
scheduler or on the number of workers. (``k`` is a function of ``(d, ρ)``; two
ratios rounding to the same ``k`` share their samples.) Alg. 3 draws a fresh
pair per metric; here all metrics of one pair come from one SVD — every
metric's marginal distribution is the same, and the metrics of a sample are
consistent with each other.

Normalisation and agreement with the paper's Table 2
----------------------------------------------------
With ``1 − dist/max_dist`` (max of each distance on G_{k,D} from paper §4.1)
the O–O means at D = 2048 reproduce the paper's Table 2 to within sampling
noise for every non-collapsing metric (geodesic, chordal_f, projection_f,
overlap: all within ~1% relative for ρ >= 0.05 and ~2% below), and the
collapsing metrics agree in being ≈ 0 (projection_2 ≈ 1e-5 → 0, Fubini–Study
exactly 0). The one visible difference is ``chordal_2`` at small ρ (ours
≈ 0.0014 vs the paper's 0.0020 at ρ = 0.005): it is determined by the single
largest principal angle, ``1 − √2·sin(σ_max/2)`` ≈ (π/2 − σ_max)/2, i.e.
by the smallest cosine of a k×k random Gram, whose distribution is very
heavy-tailed towards 0 — a 50-sample mean of it fluctuates by tens of percent
between seeds (both values are ≈ 0, "collapsed", which is the point the
paper makes). ``projection_f`` follows the closed form ``||sin σ||_2 / √k``
(so ``overlap = 1 − (1 − projection_f)²`` exactly), which is what the paper's
numbers imply (e.g. ρ = 0.4: 1 − √0.6 = 0.2254 vs the paper's 0.22527).

Note O–O and O–M have the *same* distribution (the Haar measure is invariant,
so the principal angles of a Haar span against any fixed span, a mask's
included, are distributed alike); the paper's Figs 8 and 12 agree with this.

Parallelism
-----------
Samples are batched into Dask tasks of roughly :data:`TASK_FLOPS` floating
point operations (a cost model of QR + cross-Gram + SVD), run on the threaded
scheduler by default or on a given ``distributed.Client`` / scheduler address.
BLAS is limited to one thread per task for the local schedulers (threadpoolctl);
``distributed`` workers already default to one BLAS thread.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import dask
import numpy as np

from sketchla import grassmann as gm

from ..overlap import k_for
from ..paper_values import TABLE2_RHOS
from ..progress import dask_bar, track

__all__ = [
    "MODALITIES", "METRICS", "TASK_FLOPS", "Grid", "PAPER_GRID", "QUICK_GRID", "SyntheticResult", "k_for",
    "sample_pair", "sample_block", "run_study",
]

logger = logging.getLogger(__name__)

#: Modalities of Alg. 3: (first, second) manifold, O = Stiefel matrix, M = mask.
MODALITIES = ("O-O", "O-M", "M-M")
#: Metrics in the paper's Table 2 order (normalised to [0, 1]).
METRICS = tuple(gm.METRICS)
#: Target work per Dask task (floating point operations of the cost model).
TASK_FLOPS = 2e9

_MOD_INDEX = {m: i for i, m in enumerate(MODALITIES)}


@dataclass(frozen=True)
class Grid:
    """The (d, ρ) cells of the study (Appendix A.4).

    ``dims_vs_d × rhos_vs_d``: Figs 8/10/12 (metric against D, one line per ρ);
    ``dims_vs_rho × rhos_vs_rho``: Figs 9/11/13 (metric against ρ, one line per D);
    ``table_d × table_rhos``: Table 2.
    """

    dims_vs_d: tuple = (16, 32, 64, 128, 256, 512, 1024, 2048)
    rhos_vs_d: tuple = (0.4, 0.2, 0.05, 0.01)
    dims_vs_rho: tuple = (128, 256, 512, 1024)
    rhos_vs_rho: tuple = (0.005, 0.01, 0.05, 0.1, 0.33, 0.66, 0.9, 0.95, 0.99, 1.0)
    table_d: int = 2048
    table_rhos: tuple = TABLE2_RHOS

    def __post_init__(self):
        for name in ("dims_vs_d", "dims_vs_rho"):
            v = tuple(getattr(self, name))
            if not v or any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1 for x in v):
                raise ValueError(f"{name}={v!r} must be a non-empty tuple of positive ints")
            object.__setattr__(self, name, tuple(int(x) for x in v))
        for name in ("rhos_vs_d", "rhos_vs_rho", "table_rhos"):
            v = tuple(getattr(self, name))
            if not v or any(not (0.0 < float(x) <= 1.0) for x in v):
                raise ValueError(f"{name}={v!r} must be a non-empty tuple of ratios in (0, 1]")
            object.__setattr__(self, name, tuple(float(x) for x in v))
        td = self.table_d
        if isinstance(td, bool) or not isinstance(td, (int, np.integer)) or td < 1:
            raise ValueError(f"table_d={td!r} must be a positive int")
        object.__setattr__(self, "table_d", int(td))

    def cells(self) -> list[tuple[int, float]]:
        """All (d, ρ) pairs needed, sorted and without duplicates."""
        s = {(d, r) for d in self.dims_vs_d for r in self.rhos_vs_d}
        s |= {(d, r) for d in self.dims_vs_rho for r in self.rhos_vs_rho}
        s |= {(self.table_d, r) for r in self.table_rhos}
        return sorted(s)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


#: The paper's grid (Appendix A.4 and Table 2).
PAPER_GRID = Grid()
#: Reduced grid for CI (``--quick``): d <= 256, Table 2 columns at D = 256.
QUICK_GRID = Grid(
    dims_vs_d=(16, 32, 64, 128, 256),
    rhos_vs_d=(0.4, 0.2, 0.05, 0.01),
    dims_vs_rho=(64, 128, 256),
    rhos_vs_rho=(0.01, 0.05, 0.1, 0.33, 0.66, 0.9, 1.0),
    table_d=256,
    table_rhos=TABLE2_RHOS,
)


# --------------------------------------------------------------------------- sampling


def _check_modality(modality) -> str:
    if modality not in _MOD_INDEX:
        raise ValueError(f"modality={modality!r} must be one of {MODALITIES}")
    return modality


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    return int(seed)


def _rng(seed: int, d: int, k: int, modality: str, t: int) -> np.random.Generator:
    ss = np.random.SeedSequence(seed, spawn_key=(int(d), int(k), _MOD_INDEX[modality], int(t)))
    return np.random.default_rng(ss)


def sample_pair(seed: int, d: int, k: int, modality: str, t: int):
    """The t-th random pair of cell (d, k, modality): ``(Q1, Q2)``.

    A Stiefel point is a (d, k) float64 array (:func:`gm.random_stiefel`), a
    mask a sorted (k,) index array (:func:`gm.random_mask`). Pure function of
    its arguments.
    """
    modality = _check_modality(modality)
    rng = _rng(_check_seed(seed), d, k, modality, t)
    kinds = modality.split("-")
    out = []
    for kind in kinds:
        if kind == "O":
            out.append(gm.random_stiefel(d, k, rng))
        else:
            out.append(gm.random_mask(d, k, rng))
    return tuple(out)


def sample_block(seed: int, d: int, k: int, modality: str, t0: int, t1: int) -> np.ndarray:
    """Normalised metrics of samples ``t0 .. t1-1`` of one cell.

    Returns
    -------
    (t1 - t0, len(METRICS)) float64 array, columns in :data:`METRICS` order.
    """
    out = np.empty((t1 - t0, len(METRICS)))
    for i, t in enumerate(range(t0, t1)):
        Q1, Q2 = sample_pair(seed, d, k, modality, t)
        vals = gm.all_metrics(Q1, Q2, normalize=True, check=False)
        out[i] = [vals[m] for m in METRICS]
    return out


def _cost(d: int, k: int, modality: str) -> float:
    """Flops of one sample: Householder QR + forming Q (≈4dk²) per Stiefel draw,
    cross-Gram (2dk², or k² for a mask) and a k×k SVD (≈10k³)."""
    if modality == "M-M":
        return 50.0 * d
    n_o = modality.count("O")
    gram = 2.0 * d * k * k if n_o == 2 else float(k * k)
    return n_o * 4.0 * d * k * k + gram + 10.0 * k**3


def _batches(T: int, d: int, k: int, modality: str, samples_per_task: int | None):
    if samples_per_task is None:
        n = int(max(1, min(T, TASK_FLOPS // max(_cost(d, k, modality), 1.0))))
    else:
        n = samples_per_task
    return [(t0, min(T, t0 + n)) for t0 in range(0, T, n)]


# --------------------------------------------------------------------------- result


@dataclass
class SyntheticResult:
    """Samples of the study: ``values[(modality, d, k)]`` is (T, len(METRICS))."""

    seed: int
    samples: int
    grid: Grid
    modalities: tuple
    values: dict = field(repr=False)
    elapsed_s: float = 0.0

    def cell(self, modality: str, d: int, rho: float) -> np.ndarray:
        """(T, len(METRICS)) samples of cell (modality, d, ρ)."""
        return self.values[(modality, int(d), k_for(d, rho))]

    def metric(self, modality: str, d: int, rho: float, metric: str) -> np.ndarray:
        """(T,) samples of one metric."""
        if metric not in METRICS:
            raise ValueError(f"metric={metric!r} must be one of {METRICS}")
        return self.cell(modality, d, rho)[:, METRICS.index(metric)]

    def summary(self, modality: str, d: int, rho: float, metric: str) -> dict:
        """mean, std, median, 5/95 percentiles, min, max, n of one metric's samples."""
        x = self.metric(modality, d, rho, metric)
        p5, p50, p95 = np.percentile(x, [5, 50, 95])
        return {
            "mean": float(np.mean(x)),
            "std": float(np.std(x, ddof=1)) if x.size > 1 else 0.0,
            "median": float(p50),
            "p5": float(p5),
            "p95": float(p95),
            "min": float(np.min(x)),
            "max": float(np.max(x)),
            "n": int(x.size),
        }

    def summaries(self) -> list[dict]:
        """One record per (modality, d, ρ, metric) of the grid."""
        rows = []
        for mod in self.modalities:
            for d, rho in self.grid.cells():
                for m in METRICS:
                    rec = {"modality": mod, "d": d, "rho": rho, "k": k_for(d, rho), "metric": m}
                    rec.update(self.summary(mod, d, rho, m))
                    rows.append(rec)
        return rows


def run_study(
    seed: int = 0,
    samples: int = 50,
    grid: Grid = PAPER_GRID,
    modalities=MODALITIES,
    *,
    client=None,
    scheduler: str | None = None,
    samples_per_task: int | None = None,
    progress: bool = False,
) -> SyntheticResult:
    """Run paper Alg. 3 on a Dask scheduler.

    Parameters
    ----------
    seed : non-negative int; every sample is a function of (seed, d, k, modality, t)
    samples : T, number of random pairs per cell (paper: 50)
    grid : the (d, ρ) cells (:data:`PAPER_GRID`, :data:`QUICK_GRID` or your own)
    modalities : subset of :data:`MODALITIES`
    client : a ``distributed.Client`` to run on (takes precedence)
    scheduler : address of a distributed scheduler (``tcp://...``) or a local
        Dask scheduler name (``"threads"`` default, ``"sync"``, ``"processes"``)
    samples_per_task : samples per Dask task (None: by cost, ≈ TASK_FLOPS per task);
        does not change the numbers
    progress : show progress (:func:`overlap_experiments.progress.dask_bar`: Dask's bar on a
        terminal, log lines elsewhere)
    """
    seed = _check_seed(seed)
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples={samples!r} must be a positive int")
    samples = int(samples)
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a Grid, got {type(grid).__name__}")
    modalities = tuple(modalities)
    if not modalities:
        raise ValueError("modalities must not be empty")
    for m in modalities:
        _check_modality(m)
    if samples_per_task is not None and (
        isinstance(samples_per_task, bool) or not isinstance(samples_per_task, (int, np.integer)) or samples_per_task < 1
    ):
        raise ValueError(f"samples_per_task={samples_per_task!r} must be a positive int or None")

    keys = sorted({(mod, d, k_for(d, r)) for mod in modalities for d, r in grid.cells()},
                  key=lambda x: (_MOD_INDEX[x[0]], x[1], x[2]))
    tasks, owners = [], []
    block = dask.delayed(sample_block, pure=True)
    for mod, d, k in keys:
        for t0, t1 in _batches(samples, d, k, mod, samples_per_task):
            tasks.append(block(seed, d, k, mod, t0, t1))
            owners.append((mod, d, k))
    logger.info("synthetic study: %d cells, %d Dask tasks, T=%d", len(keys), len(tasks), samples)

    start = time.perf_counter()
    blocks = _compute(tasks, client=client, scheduler=scheduler, progress=progress)
    elapsed = time.perf_counter() - start

    parts: dict = {}
    for key, b in zip(owners, blocks):
        parts.setdefault(key, []).append(b)
    values = {key: np.concatenate(parts[key], axis=0) for key in keys}
    return SyntheticResult(seed, samples, grid, modalities, values, elapsed)


def _compute(tasks, *, client, scheduler, progress):
    if client is None and scheduler is not None and "://" in str(scheduler):
        from distributed import Client  # distributed: heavy to import, only for a scheduler address

        with Client(scheduler) as c:
            return _compute(tasks, client=c, scheduler=None, progress=progress)
    if client is not None:
        futures = client.compute(tasks)
        if progress:
            from distributed import as_completed  # distributed: heavy to import, only with a client

            for _ in track(as_completed(futures), desc="synthetic study", total=len(futures), unit="tasks"):
                pass
        return client.gather(futures)
    from threadpoolctl import threadpool_limits  # optional (the experiments extra); local schedulers only

    sched = scheduler or "threads"
    if sched not in ("threads", "sync", "synchronous", "processes", "single-threaded"):
        raise ValueError(
            f"scheduler={scheduler!r} must be a distributed address (tcp://...) or one of "
            "'threads', 'sync', 'processes'"
        )
    with threadpool_limits(limits=1, user_api="blas"), dask_bar("synthetic study", enabled=progress):
        return dask.compute(*tasks, scheduler=sched)
