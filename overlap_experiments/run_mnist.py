"""``overlap-experiments run mnist16``: paper §6.1 / Appendix B.1 end to end.

Pipeline (every stage resumable inside ``--out``):

1. data (:mod:`.data`; source recorded), model (7030 parameters, asserted);
2. SGD training (η = 0.3, B = 500) with checkpoints (:mod:`.train`);
3. at every checkpoint: train/validation/test accuracy and loss, κ of the
   parameters (Fig. 15), magnitude order of θ;
4. for each Hessian split (500 train / 500 test samples, 50 per class) at
   the *exact steps*: the dense Hessian from 7030 streamed HVPs and its
   eigendecomposition, exact overlap curves for every k, 10 random masks,
   the best-possible k-mask bound (Fig. 14), κ of the spectrum (Fig. 15) and
   the Grassmannian metrics between masks and eigenspaces (Fig. 17);
5. at the *sketch steps*: SEIGH (paper Alg. 2) with n_O = 355 and
   n_I = 2·n_O + 1 = 711 HVPs through a curvlinops recipe operator, and the
   sketched overlap curve (Fig. 1 left; eigenspace stability, Fig. 16);
6. ``results.json`` and the PNG figures (:mod:`.plots`).

The default schedule — exact H_train at steps {0, 100, 1000} (the steps of
paper Fig. 14) and SEIGH for H_train and H_test at 7 steps from 0 to 1000 —
keeps the run to roughly 10 minutes on a busy 2-core CPU. Almost all of that
is the exact part: per exact Hessian 7030 HVPs (~20 s) and a dense
D = 7030 eigendecomposition (40–120 s, depending on the machine's load),
against ~5 s for a SEIGH run (711 HVPs). ``--exact-splits train test``
adds the exact H_test (the bottom row of Fig. 14; +3 eigendecompositions);
``--paper`` analyses every checkpoint (every 5th step to 250 and
log-spaced to 1000) exactly and sketched on both splits, as the paper's
figures do (hours on a 2-core machine). ``--quick`` is a half-minute
smoke version (100 steps, 50 Hessian samples, n_O = 20, n_I = 41, exact
H_train only at the last step, its top-40 eigenpairs by Lanczos) used by
the tests.

Timings are recorded in ``results.json["timings"]`` (per stage, and the
median seconds per HVP when forming exact Hessians and inside SEIGH).
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import data as data_mod
from . import overlap as ov
from . import problems
from .hessian import exact_eigh, exact_hessian, hessian_recipe, sort_by_magnitude
from .models import flat_parameters
from .train import checkpoint_path, default_checkpoint_steps, evaluate, load_model, train
from .jsonio import json_default, write_results

logger = logging.getLogger(__name__)

__all__ = ["RunConfig", "make_config", "run_problem", "KAPPA_RHOS", "METRIC_RHOS", "SUMMARY_KS"]

#: ρ levels of κ (Fig. 15) and of the mask IoU matrices (Fig. 16)
KAPPA_RHOS = (0.2, 0.05, 0.01, 0.005)
#: ρ levels of the mask-vs-eigenspace metrics (Fig. 17)
METRIC_RHOS = (0.005, 0.01, 0.05, 0.2)
#: k values summarised in results.json / the console table
SUMMARY_KS = (10, 50, 100, 350)
#: k of Fig. 1 (left)
FIG1_K = 350
#: subspace sizes of the eigenspace-stability matrices (Fig. 16)
FIG16_KS = (10, 35, 70, 175)

DEFAULT_EXACT_STEPS = (0, 100, 1000)
DEFAULT_SKETCH_STEPS = (0, 10, 50, 100, 250, 500, 1000)


@dataclass
class RunConfig:
    """Everything that determines a run (written to results.json)."""

    problem: str = "mnist16"
    seed: int = 0
    steps: int = 1000
    n_outer: int = 355
    n_inner: int = 711
    hessian_per_class: int = 50
    splits: tuple = ("train", "test")
    exact_splits: tuple = ("train",)
    checkpoint_steps: list = field(default_factory=list)
    exact_steps: list = field(default_factory=list)
    sketch_steps: list = field(default_factory=list)
    k_max_exact: int = 1406
    exact_method: str = "lapack"  # or "lanczos" (top k_max only; quick mode)
    exact_dtype: str = "float32"
    n_random_masks: int = 10
    data_root: str | None = None
    quick: bool = False
    scheduler: str | None = None
    workers: int | None = None
    chunk: int = 256
    blas_threads: int | None = 1
    dense_fig16_until: int = 250


def _steps_arg(values, steps, name):
    out = sorted({int(v) for v in values})
    bad = [v for v in out if v < 0 or v > steps]
    if bad:
        raise ValueError(f"{name} must lie in [0, steps={steps}], got {bad}")
    return out


def make_config(problem: str = "mnist16", *, seed: int = 0, steps: int | None = None,
                n_outer: int | None = None, n_inner: int | None = None, data_root=None,
                quick: bool = False, paper: bool = False, scheduler: str | None = None,
                workers: int | None = None, exact_steps=None, sketch_steps=None,
                splits=("train", "test"), exact_splits=None, hessian_per_class: int | None = None,
                exact_dtype: str = "float32") -> RunConfig:
    """Resolve defaults (problem hyperparameters, quick / paper presets) and validate."""
    prob = problems.get(problem)
    if not prob.buildable:
        raise NotImplementedError(
            f"problem {problem!r} is registered (paper Table 1: D={prob.n_params:,}, η={prob.lr}, "
            f"B={prob.batch_size}, n_O={prob.n_outer}) but its model and data are not implemented yet; "
            f"runnable: {', '.join(n for n in problems.names() if problems.get(n).buildable)}"
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    if quick and paper:
        raise ValueError("quick and paper presets are mutually exclusive")
    if quick:
        steps = 100 if steps is None else steps
        n_outer = 20 if n_outer is None else n_outer
        hessian_per_class = 5 if hessian_per_class is None else hessian_per_class
    steps = prob.total_steps if steps is None else steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps={steps!r} must be a non-negative int")
    n_outer = prob.n_outer if n_outer is None else n_outer
    if not isinstance(n_outer, int) or n_outer < 1 or n_outer > prob.n_params:
        raise ValueError(f"n_outer={n_outer!r} must be an int in [1, D={prob.n_params}]")
    n_inner = problems.tropp_n_inner(n_outer) if n_inner is None else n_inner
    if not isinstance(n_inner, int) or not n_outer <= n_inner <= prob.n_params:
        raise ValueError(f"n_inner={n_inner!r} must be an int with n_outer={n_outer} <= n_inner <= D={prob.n_params}")
    hpc = (prob.n_hessian_train // prob.num_classes) if hessian_per_class is None else hessian_per_class
    if not isinstance(hpc, int) or hpc < 1:
        raise ValueError(f"hessian_per_class={hpc!r} must be a positive int")
    splits = tuple(dict.fromkeys(splits))
    if not splits or any(s not in ("train", "test") for s in splits):
        raise ValueError(f"splits={splits!r} must be a non-empty subset of ('train', 'test')")
    exact_splits_arg = exact_splits
    if exact_splits is None:
        exact_splits = splits[:1]
    exact_splits = tuple(dict.fromkeys(exact_splits))
    if any(s not in splits for s in exact_splits):
        raise ValueError(f"exact_splits={exact_splits!r} must be a subset of splits={splits!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers={workers!r} must be a positive int")
    if scheduler is not None and workers is not None:
        raise ValueError("give either scheduler (an existing cluster) or workers (a local cluster), not both")

    if quick:
        ck = sorted({*range(0, steps + 1, 5), steps})
        ex = [steps] if exact_steps is None else exact_steps
        sk = sorted({0, steps}) if sketch_steps is None else sketch_steps
        k_max, method = min(2 * n_outer, prob.n_params), "lanczos"
    else:
        ck = default_checkpoint_steps(max(steps, 1)) if steps else [0]
        if paper:
            exact_splits = splits if exact_splits_arg is None else exact_splits
            ex = ck if exact_steps is None else exact_steps
            sk = ck if sketch_steps is None else sketch_steps
        else:
            scale = steps / prob.total_steps if prob.total_steps else 1.0
            ex = (sorted({int(round(s * scale)) for s in DEFAULT_EXACT_STEPS})
                  if exact_steps is None else exact_steps)
            sk = (sorted({int(round(s * scale)) for s in DEFAULT_SKETCH_STEPS})
                  if sketch_steps is None else sketch_steps)
        k_max = min(max(ov.k_for(prob.n_params, max(METRIC_RHOS)), n_outer), prob.n_params)
        method = "lapack"
    ex = _steps_arg(ex, steps, "exact_steps")
    sk = _steps_arg(sk, steps, "sketch_steps")
    ck = sorted(set(ck) | set(ex) | set(sk))
    chunk = 256 if workers is None else max(16, math.ceil(n_inner / (2 * workers)))
    return RunConfig(
        problem=problem, seed=seed, steps=steps, n_outer=n_outer, n_inner=n_inner,
        hessian_per_class=hpc, splits=splits, exact_splits=exact_splits, checkpoint_steps=ck,
        exact_steps=ex, sketch_steps=sk,
        k_max_exact=k_max, exact_method=method, exact_dtype=exact_dtype,
        data_root=None if data_root is None else str(data_root), quick=quick,
        scheduler=scheduler, workers=workers, chunk=chunk,
    )


# --------------------------------------------------------------------------- helpers


#: bump when the cached exact-analysis quantities change meaning
_CACHE_VERSION = 2


def _cache_key(cfg: RunConfig, split: str, step: int, kind: str) -> dict:
    return {"version": _CACHE_VERSION, "kind": kind, "split": split, "step": step, "seed": cfg.seed, "per_class": cfg.hessian_per_class,
            "k_max": cfg.k_max_exact, "method": cfg.exact_method, "dtype": cfg.exact_dtype,
            "n_random": cfg.n_random_masks, "data_root": cfg.data_root, "steps": cfg.steps}


def _lanczos_top(H: np.ndarray, k: int, seed: int):
    """Top-k eigenpairs of the dense symmetric H by |λ| (ARPACK Lanczos,
    ``which="LM"``), for --quick, where a D = 7030 dense eigendecomposition
    would dominate the run. Products use a float32 copy of H (the precision
    the Hessian-vector products had), so the tolerance is 1e-6 relative."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    H32 = np.asarray(H, dtype=np.float32)
    D = H32.shape[0]
    op = LinearOperator((D, D), matvec=lambda x: (H32 @ np.asarray(x, np.float32).ravel()).astype(np.float64),
                        dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(D)
    w, V = eigsh(op, k=k, which="LM", v0=v0, tol=1e-6)
    order = sort_by_magnitude(w)
    return w[order], np.ascontiguousarray(V[:, order], dtype=np.float32)


def _exact_analysis(cfg, H, order, D, tag):
    """Exact eigenpairs and all exact-overlap quantities of one Hessian."""
    t0 = time.perf_counter()
    fro2 = float(np.sum(H * H))
    if cfg.exact_method == "lapack":
        vals, Q = exact_eigh(H, cfg.k_max_exact, dtype=cfg.exact_dtype, overwrite=True)
        all_vals = True
    else:
        vals, Q = _lanczos_top(H, cfg.k_max_exact, cfg.seed)
        all_vals = False
    t_eigh = time.perf_counter() - t0
    K = cfg.k_max_exact
    t0 = time.perf_counter()
    curve = ov.overlap_curve(order, Q, K)
    rnd = ov.random_mask_curves(Q, K, cfg.n_random_masks, seed=cfg.seed)
    best = ov.best_mask_curve(Q, K)
    # κ of the spectrum: ||Λ_top||² / ||Λ||²; ||Λ||² from all eigenvalues when
    # we have them, else ||Λ||² = ||H||_F² (Lanczos: top eigenvalues only)
    e2 = np.cumsum(np.square(vals))
    total = float(e2[-1]) if all_vals else fro2
    kap = {}
    for r in KAPPA_RHOS:
        k = ov.k_for(D, r)
        kap[r] = float(min(e2[k - 1] / total, 1.0)) if k <= len(vals) and total > 0 else None
    metrics = {r: ov.mask_metrics(order, Q, ov.k_for(D, r)) for r in METRIC_RHOS if ov.k_for(D, r) <= K}
    t_curves = time.perf_counter() - t0
    logger.info("%s: eigh %.1fs, curves/metrics %.1fs", tag, t_eigh, t_curves)
    keep = min(max(FIG16_KS + (FIG1_K,)), Q.shape[1])
    return {
        "eigenvalues": vals if all_vals else vals[:K], "all_eigenvalues": all_vals,
        "frobenius2": fro2, "overlap": curve, "random_mean": rnd.mean(0), "random_std": rnd.std(0),
        "best": best, "kappa_spectrum": kap, "metrics": metrics,
        "seconds_eigh": t_eigh, "seconds_curves": t_curves,
    }, Q[:, :keep].astype(np.float32)


def _save_npz(path: Path, key: dict, res: dict, Qkeep) -> None:
    arrays = {k: np.asarray(v) for k, v in res.items() if isinstance(v, np.ndarray)}
    meta = {k: v for k, v in res.items() if not isinstance(v, np.ndarray)}
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, Q=Qkeep, meta=json.dumps({"key": key, "meta": meta}, default=json_default), **arrays)
    os.replace(tmp, path)


def _load_npz(path: Path, key: dict):
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta["key"] != json.loads(json.dumps(key, default=json_default)):
                return None
            res = dict(meta["meta"])
            for k in z.files:
                if k not in ("Q", "meta"):
                    res[k] = z[k]
            res["metrics"] = {float(r): v for r, v in res.get("metrics", {}).items()}
            res["kappa_spectrum"] = {float(r): v for r, v in res.get("kappa_spectrum", {}).items()}
            return res, z["Q"]
    except Exception as exc:  # damaged cache: recompute
        logger.warning("ignoring damaged cache %s (%s)", path, exc)
        return None


def _client(cfg: RunConfig):
    """(client for seigh, close callback): connected once for all the run's SEIGHs."""
    from sketchla.cluster import get_client

    if cfg.scheduler is not None:
        return get_client(address=cfg.scheduler)
    if cfg.workers is not None:
        return get_client(n_workers=cfg.workers, threads_per_worker=1)
    return False, None


# --------------------------------------------------------------------------- main entry
def run_problem(out, cfg: RunConfig | None = None, *, progress: bool = True, figures: bool = True) -> dict:
    """Run the whole experiment into folder ``out``; returns the results dict
    (also written to ``out/results.json``)."""
    cfg = make_config() if cfg is None else cfg
    with _blas_threads(cfg.blas_threads):
        return _run_problem(out, cfg, progress=progress, figures=figures)


@contextlib.contextmanager
def _blas_threads(n):
    """Limit the BLAS/LAPACK threads of NumPy/SciPy (OpenBLAS) to ``n`` for the run.

    The BLAS work here is small (TSQR of 7030 × 355, 711 × 711 core solves,
    k × k SVDs) and OpenBLAS thread teams spin while waiting: on a shared
    2-core machine two threads made the SEIGH core solve 10x slower than one
    (0.8 s vs 8–12 s measured). ``None`` leaves the library default.
    """
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    # threadpoolctl only limits libraries already loaded: SciPy brings its own
    # OpenBLAS (separate from NumPy's), loaded by its first linalg import
    import scipy.linalg  # noqa: F401
    import scipy.sparse.linalg  # noqa: F401

    with threadpool_limits(limits=int(n), user_api="blas"):
        yield


def _run_problem(out, cfg: RunConfig, *, progress: bool, figures: bool) -> dict:
    import torch  # noqa: F401  (fail early if the experiments extra is missing)

    import sketchla as sk

    t_start = time.perf_counter()
    prob = problems.get(cfg.problem)
    timings: dict = {}

    # 1. data (first, so a bad data path fails before anything is written)
    t0 = time.perf_counter()
    ds = data_mod.load(cfg.data_root)
    timings["data"] = time.perf_counter() - t0
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    D = prob.n_params  # checked against the model by build_model when train() builds it
    logger.info("%s: D=%d parameters, data %s", prob.name, D, ds.source["name"])

    # 2. training
    ckdir = out / "checkpoints"
    t0 = time.perf_counter()
    tr = train(prob, ds, ckdir, steps=cfg.steps, seed=cfg.seed, checkpoint_steps=cfg.checkpoint_steps,
               progress=progress)
    timings["train"] = time.perf_counter() - t0

    # 3. per-checkpoint quantities
    t0 = time.perf_counter()
    ck_info, orders = {}, {}
    for s in cfg.checkpoint_steps:
        m = load_model(prob, checkpoint_path(ckdir, s))
        theta = flat_parameters(m)
        orders[s] = ov.magnitude_order(theta)
        row = {"kappa_params": ov.kappa(theta, KAPPA_RHOS)}
        for split in ("train", "val", "test"):
            X, y = ds.split(split)
            loss, acc = evaluate(m, X, y)
            row[f"{split}_loss"], row[f"{split}_acc"] = loss, acc
        ck_info[s] = row
    timings["evaluate"] = time.perf_counter() - t0

    # Hessian samples: 50 per class (paper §6.1), fixed for the whole run
    hidx = {split: data_mod.balanced_indices(ds.split(split)[1].numpy(), cfg.hessian_per_class, cfg.seed,
                                             num_classes=prob.num_classes)
            for split in cfg.splits}

    # 4./5. Hessian analysis
    analysis = {split: {} for split in cfg.splits}
    bases = {"exact": {sp: {} for sp in cfg.splits}, "sketched": {sp: {} for sp in cfg.splits}}
    hvp_times = {"exact": [], "sketched": []}
    timings.update(exact_hessian=0.0, exact_eigh=0.0, seigh=0.0)
    steps_all = sorted(set(cfg.exact_steps) | set(cfg.sketch_steps))
    client, close = _client(cfg)
    cache_dir = out / "analysis"
    cache_dir.mkdir(exist_ok=True)
    from tqdm.auto import tqdm

    jobs = [(s, sp) for s in steps_all for sp in cfg.splits]
    try:
        for s, split in tqdm(jobs, desc="Hessian analysis", disable=not progress, unit="Hessian"):
            entry = analysis[split].setdefault(s, {})
            op = hessian_recipe(prob, checkpoint_path(ckdir, s), cfg.data_root, split, hidx[split])
            order = orders[s]
            if s in cfg.exact_steps and split in cfg.exact_splits:
                key = _cache_key(cfg, split, s, "exact")
                path = cache_dir / f"exact_{split}_step{s:06d}.npz"
                cached = _load_npz(path, key)
                if cached is None:
                    t0 = time.perf_counter()
                    H = exact_hessian(op, progress=progress, desc=f"H_{split} step {s} (exact)")
                    th = time.perf_counter() - t0
                    res, Qkeep = _exact_analysis(cfg, H, order, D, f"H_{split} step {s}")
                    del H
                    res["seconds_hessian"] = th
                    res["seconds_per_hvp"] = th / D
                    _save_npz(path, key, res, Qkeep)
                else:
                    res, Qkeep = cached
                    logger.info("H_%s step %d: exact analysis loaded from %s", split, s, path)
                timings["exact_hessian"] += float(res["seconds_hessian"])
                timings["exact_eigh"] += float(res["seconds_eigh"])
                hvp_times["exact"].append(float(res["seconds_per_hvp"]))
                entry["exact"] = res
                bases["exact"][split][s] = Qkeep
            if s in cfg.sketch_steps:
                store = out / "seigh" / f"{split}_step{s:06d}.zarr"
                store.parent.mkdir(exist_ok=True)
                t0 = time.perf_counter()
                r = sk.seigh(op, cfg.n_outer, cfg.n_inner, seed=cfg.seed, store=str(store), client=client,
                             dtype="float32", chunk=cfg.chunk, progress=False)
                Qs = np.asarray(r.eigenvectors.compute(scheduler="threads"))
                tsk = time.perf_counter() - t0
                st = r.timings
                meas = st.get("measure")
                curve = ov.overlap_curve(order, Qs, cfg.n_outer)
                entry["sketched"] = {
                    "overlap": curve, "eigenvalues": np.asarray(r.eigenvalues, dtype=np.float64),
                    "seconds": tsk, "seconds_stages": st,
                    "seconds_per_hvp": (meas / cfg.n_inner) if meas else None,
                }
                if meas:
                    hvp_times["sketched"].append(meas / cfg.n_inner)
                timings["seigh"] += tsk
                keep = min(max(FIG16_KS + (FIG1_K,)), Qs.shape[1])
                bases["sketched"][split][s] = Qs[:, :keep]
            from sketchla.operators import clear_recipe_cache

            clear_recipe_cache()
    finally:
        if close is not None:
            close()

    # 6. assemble results
    results = _assemble(cfg, prob, ds, tr, ck_info, orders, analysis, bases, hidx)
    timings["hvp_seconds_exact"] = float(np.median(hvp_times["exact"])) if hvp_times["exact"] else None
    timings["hvp_seconds_sketched"] = float(np.median(hvp_times["sketched"])) if hvp_times["sketched"] else None
    path = write_results(out, results, timings, t_start, _figures if figures else None)
    logger.info("wrote %s (%.1fs)", path, timings["total"])
    return results


def _figures(results, out):
    from . import plots  # matplotlib only when figures are drawn

    return plots.make_mnist_figures(results, out)


def _curve_list(x):
    return None if x is None else [float(v) for v in np.asarray(x)]


def _assemble(cfg, prob, ds, tr, ck_info, orders, analysis, bases, hidx) -> dict:
    D = prob.n_params
    res: dict = {
        "problem": prob.as_dict(),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "n_params": int(D),
        "data_source": ds.source,
        "hessian_samples": {sp: {"n": int(len(ix)), "per_class": cfg.hessian_per_class,
                                 "indices": [int(i) for i in ix]} for sp, ix in hidx.items()},
        "training": {"losses": [float(v) for v in tr["losses"]], "resumed_from": tr["resumed_from"],
                     "trained_steps": tr["trained_steps"], "seconds": tr["seconds"]},
        "checkpoints": {str(s): {k: ({str(r): x for r, x in v.items()} if isinstance(v, dict) else v)
                                 for k, v in row.items()} for s, row in ck_info.items()},
    }
    per_step: dict = {}
    summary: dict = {}
    for split, by_step in analysis.items():
        per_step[split], summary[split] = {}, {}
        for s, e in sorted(by_step.items()):
            ex, skd = e.get("exact"), e.get("sketched")
            K = max(len(ex["overlap"]) if ex else 0, len(skd["overlap"]) if skd else 0)
            ks = np.arange(1, K + 1)
            chance = ov.chance_curve(K, D)
            item = {"k": ks.tolist(), "chance": _curve_list(chance),
                    "test_acc": ck_info[s]["test_acc"], "train_acc": ck_info[s]["train_acc"]}
            if ex:
                n = len(ex["overlap"])
                item["exact"] = _curve_list(ex["overlap"])
                item["ratio_exact"] = _curve_list(np.asarray(ex["overlap"]) / chance[:n])
                item["random_mask_mean"] = _curve_list(ex["random_mean"])
                item["random_mask_std"] = _curve_list(ex["random_std"])
                item["best_mask"] = _curve_list(ex["best"])
                item["kappa_spectrum"] = {str(r): v for r, v in ex["kappa_spectrum"].items()}
                item["metrics"] = {str(r): v for r, v in ex["metrics"].items()}
                ev = np.asarray(ex["eigenvalues"])
                item["eigenvalues_exact_top"] = _curve_list(ev[:max(cfg.n_outer, 10)])
                item["exact_all_eigenvalues"] = bool(ex["all_eigenvalues"])
                item["hessian_frobenius2"] = float(ex["frobenius2"])
                item["seconds_exact"] = {"hessian": float(ex["seconds_hessian"]), "eigh": float(ex["seconds_eigh"]),
                                         "per_hvp": float(ex["seconds_per_hvp"])}
            if skd:
                n = len(skd["overlap"])
                item["sketched"] = _curve_list(skd["overlap"])
                item["ratio_sketched"] = _curve_list(np.asarray(skd["overlap"]) / chance[:n])
                item["eigenvalues_sketched"] = _curve_list(skd["eigenvalues"])
                item["seconds_sketched"] = {"total": float(skd["seconds"]), "per_hvp": skd["seconds_per_hvp"],
                                            "stages": skd["seconds_stages"]}
            if ex and skd:
                n = min(len(ex["overlap"]), len(skd["overlap"]))
                item["abs_diff_exact_sketched_max"] = float(np.max(np.abs(
                    np.asarray(ex["overlap"][:n]) - np.asarray(skd["overlap"][:n]))))
                # eigenspace agreement between sketched and exact top-k (paper: "closely tracks")
                Qe, Qs = bases["exact"][split][s], bases["sketched"][split][s]
                item["eigenspace_overlap_exact_vs_sketched"] = {
                    str(k): ov.eigenspace_overlap(Qe, Qs, k) for k in (1, 2, 3, 5) + SUMMARY_KS
                    if k <= min(Qe.shape[1], Qs.shape[1])}
            per_step[split][str(s)] = item
            row = {}
            for k in SUMMARY_KS + (FIG1_K,):
                if k > K:
                    continue
                c = k / D
                r = {"chance": c}
                if ex and k <= len(ex["overlap"]):
                    r["exact"] = float(ex["overlap"][k - 1])
                    r["ratio_exact"] = r["exact"] / c
                if skd and k <= len(skd["overlap"]):
                    r["sketched"] = float(skd["overlap"][k - 1])
                    r["ratio_sketched"] = r["sketched"] / c
                row[str(k)] = r
            summary[split][str(s)] = row
    res["overlap"] = per_step
    res["summary"] = summary
    res["stability"] = _stability(cfg, prob, orders, bases)
    return res


def _stability(cfg, prob, orders, bases) -> dict:
    """Fig. 16: mask IoU between checkpoint steps (≤ 250) and eigenspace
    overlap between analysis steps (sketched bases; exact where no sketch)."""
    D = prob.n_params
    ck = [s for s in sorted(orders) if s <= cfg.dense_fig16_until]
    masks = {}
    for r in KAPPA_RHOS[::-1]:
        k = ov.k_for(D, r)
        M = np.eye(len(ck))
        for i, a in enumerate(ck):
            for j in range(i + 1, len(ck)):
                M[i, j] = M[j, i] = ov.mask_iou(orders[a], orders[ck[j]], k)
        masks[str(r)] = M.tolist()
    eig = {}
    for split in cfg.splits:
        src = "sketched" if len(bases["sketched"][split]) >= len(bases["exact"][split]) else "exact"
        B = bases[src][split]
        st = sorted(B)
        eig[split] = {"source": src, "steps": st, "k": {}}
        if not st:
            continue
        kmax = min(b.shape[1] for b in B.values())
        for k in FIG16_KS:
            if k > kmax:
                continue
            M = np.eye(len(st))
            for i, a in enumerate(st):
                for j in range(i + 1, len(st)):
                    M[i, j] = M[j, i] = ov.eigenspace_overlap(B[a], B[st[j]], k)
            eig[split]["k"][str(k)] = M.tolist()
    return {"mask_steps": ck, "mask_iou": masks, "eigenspace_overlap": eig}
