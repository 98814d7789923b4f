"""``overlap-experiments run PROBLEM``: the one pipeline of paper §6, for every problem of Table 1.

Driven by a :class:`~overlap_experiments.config.RunConfig` (the problem's
entry in :mod:`.problems`, presets, options), every stage resumable inside
the output folder ``out``:

1. **data** (:mod:`.data`): real files, the bundled digits, or generated
   images ("SYNTHETIC" in every output); the network always has the paper's
   parameter count.
2. **training** (:mod:`.train`): SGD with the η and B of Table 1,
   checkpoints at ``checkpoint_steps`` in ``out/checkpoints/``.
3. **Hessian samples**: class-balanced, N of Table 1 per split, stored once
   in ``out/hessian_samples/`` (:mod:`.hessian.samples`) so that every Dask
   worker reads the same samples.
4. **checkpoints**: each analysed checkpoint's parameter-magnitude order
   (paper §3) and the metrics its report wants (:mod:`.reports`).
5. **Hessians**: for every analysed step and split, the Hessian of the
   checkpoint on the sample as a recipe each worker builds once
   (:mod:`.hessian.recipe`); where configured its exact analysis
   (:mod:`.exact`: dense H, eigendecomposition, curves and baselines), and
   SEIGH with the overlap of Eq. 3 for every k ≤ n_O (:mod:`.sketched`),
   its run store in ``out/seigh/``. Both are cached in ``out/analysis/``
   (:mod:`.cache`), keyed by the checkpoint's and the sample's SHA-256 and
   the analysis settings.
6. **results**: ``out/results.json`` and the figures, as the problem's
   report lays them out (:mod:`.reports`), and ``out/report.html``
   (:mod:`.reports.html`).

A rerun with the same settings skips finished work: training resumes from
its last checkpoint, samples and analyses are reused, an interrupted SEIGH
resumes inside its store. ``timings`` in results.json are the seconds spent
in this invocation; ``timings_reused`` the recorded seconds of the analyses
taken from the cache (computed by an earlier invocation). Every stage longer
than a few seconds shows its progress (:mod:`.progress`).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import time
from pathlib import Path

import sketchla as sk

from . import config, data, exact, outputs, problems, reports, sketched
from .cache import AnalysisCache
from .checkpoints import checkpoint_path
from .fileio import file_digest, write_json
from .hessian.recipe import hessian_recipe
from .hessian.samples import store_sample
from .progress import format_seconds, stage, track
from .reports import html
from .train import train

logger = logging.getLogger(__name__)

__all__ = ["run", "load_data", "train_checkpoints", "store_samples", "checkpoint_hessian", "add_parser"]


def run(out, cfg: config.RunConfig, *, progress: bool = True, figures: bool = True, keep_stores: bool = True,
        report: bool = True) -> dict:
    """Run the whole experiment of ``cfg`` into folder ``out``; returns the results dict (also
    written to ``out/results.json``). ``progress``: bars or log lines (:mod:`.progress`);
    ``figures``: draw the PNGs; ``keep_stores``: keep each SEIGH run store once its analysis is
    cached (``False`` deletes it, :mod:`.outputs`); ``report``: write ``out/report.html``."""
    with _blas_threads(cfg.blas_threads):
        return _run(Path(out), cfg, progress=progress, figures=figures, keep_stores=keep_stores, report=report)


def _run(out: Path, cfg, *, progress: bool, figures: bool, keep_stores: bool, report: bool) -> dict:
    import torch  # noqa: F401  (torch: optional dependency; fail before any work without it)

    t_start = time.perf_counter()
    problem = problems.get(cfg.problem)
    layout = reports.for_problem(problem)
    timings: dict = {}
    reused: dict = {}
    logger.info("%s (%s): %s, D=%d", problem.name, problem.title, cfg.label, problem.n_params)
    _ensure_cluster_tools(cfg.gpu)

    # 1. data (first, so a bad data path fails before anything is written); the
    # model's parameter count is checked by build_model when train() builds it
    with stage(f"{problem.name}: loading the data ({cfg.label})", enabled=progress) as st:
        dataset = load_data(cfg)
    timings["data"] = st["seconds"]
    out.mkdir(parents=True, exist_ok=True)

    # 2. training
    t0 = time.perf_counter()
    tr = train_checkpoints(cfg, dataset, out / "checkpoints", progress=progress)
    timings["train"] = time.perf_counter() - t0
    logger.info("%s: %d SGD steps trained (%s), %.1fs", problem.name, tr["trained_steps"], cfg.label, timings["train"])

    # 3. Hessian samples (never augmented)
    with stage(f"{problem.name}: Hessian samples", enabled=progress) as st:
        samples = store_samples(cfg, dataset, out / "hessian_samples")
    timings["hessian_samples"] = st["seconds"]

    # 4. checkpoints: magnitude orders and the report's metrics
    with stage(f"{problem.name}: evaluating the checkpoints", enabled=progress) as st:
        metrics, orders = layout.checkpoint_metrics(cfg, problem, dataset, samples, out / "checkpoints")
    timings["evaluate"] = st["seconds"]

    # 5. every analysed Hessian
    analyses = _analyse_hessians(cfg, problem, orders, samples, out, keep=layout.BASIS_COLUMNS,
                                 progress=progress, timings=timings, reused=reused, keep_stores=keep_stores)

    # 6. results
    results = layout.assemble(cfg, problem, dataset.source, tr, samples, metrics, orders, analyses, timings)
    results["timings"] = timings
    results["timings_reused"] = reused
    if figures:
        with stage(f"{problem.name}: figures", enabled=progress) as st:
            results["figures"] = layout.make_figures(results, out)
        timings["figures"] = st["seconds"]
    timings["total"] = time.perf_counter() - t_start
    results["disk"] = outputs.disk_use(out)
    write_json(out / "results.json", results)
    logger.info("%s (%s): wrote %s; this invocation %s; %s holds %s", problem.name, cfg.label, out / "results.json",
                format_seconds(timings["total"]), out, outputs.describe_use(results["disk"]))
    if report:
        html.write_report(out)
    return results


def load_data(cfg, *, augment: bool | None = None) -> data.Dataset:
    """The :class:`~overlap_experiments.data.Dataset` of the run (training split augmented as the
    problem says, unless ``augment`` says otherwise)."""
    return data.load(problems.get(cfg.problem).dataset, cfg.data_root, synthetic=cfg.synthetic,
                     augment=cfg.augment if augment is None else augment, seed=cfg.seed, image_size=cfg.image_size,
                     n_train=cfg.synthetic_train, n_test=cfg.synthetic_test)


def train_checkpoints(cfg, dataset, ckpt_dir, *, progress: bool = True):
    """SGD on ``dataset`` as ``cfg`` says, checkpoints at ``cfg.checkpoint_steps`` in ``ckpt_dir``
    (resumed if it holds a run with the same settings); returns the :class:`~overlap_experiments.train.TrainResult`."""
    return train(problems.get(cfg.problem), dataset, ckpt_dir, steps=cfg.steps, seed=cfg.seed,
                 checkpoint_steps=cfg.checkpoint_steps, lr=cfg.lr, batch_size=cfg.batch_size, progress=progress,
                 device=cfg.device, threads=cfg.train_threads)


def store_samples(cfg, dataset, folder) -> dict:
    """Draw the class-balanced Hessian sample of every split (N = ``cfg.hessian_samples[split]``,
    :func:`~overlap_experiments.data.balanced_sample`) and store it in ``folder``; returns
    ``{split: sample record}`` (:func:`~overlap_experiments.hessian.samples.store_sample`)."""
    problem = problems.get(cfg.problem)
    plain = load_data(cfg, augment=False) if dataset.augment and "train" in cfg.splits else dataset
    samples = {}
    for split in cfg.splits:
        idx = data.balanced_sample(plain.split(split).labels(), cfg.hessian_samples[split], plain.num_classes,
                                   cfg.seed, stream=problem.sample_stream)
        samples[split] = store_sample(plain, split, idx, folder)
    return samples


def _analyse_hessians(cfg, problem, orders, samples, out: Path, *, keep: int, progress: bool, timings: dict,
                      reused: dict, keep_stores: bool) -> dict:
    """``{split: {step: {"exact": record, "sketched": record}}}`` of every analysed Hessian, each kind
    where configured; records from the cache where it has them. Adds the seconds spent here to
    ``timings`` and the recorded seconds of cached records to ``reused``."""
    cache = AnalysisCache(out / "analysis")
    (out / "seigh").mkdir(exist_ok=True)
    analyses: dict = {split: {} for split in cfg.splits}
    timings["seigh"] = 0.0
    reused.update(seigh=0.0, analyses=0)
    if cfg.exact_steps:
        timings.update(exact_hessian=0.0, exact_eigh=0.0)
        reused.update(exact_hessian=0.0, exact_eigh=0.0)
    # what determines a SEIGH run besides its Hessian: names its store and is handed to sketched.analyse
    # (passes only where given, so that single-pass stores and cached analyses keep their names)
    sketch = {"n_outer": cfg.n_outer, "n_inner": cfg.n_inner, **({"passes": cfg.passes} if cfg.passes else {})}
    jobs = [(s, sp) for s in sorted(set(cfg.exact_steps) | set(cfg.sketch_steps)) for sp in cfg.splits]
    client, close = _client(cfg)
    try:
        for step, split in track(jobs, desc=f"Hessian analysis ({cfg.label})", unit="Hessians", enabled=progress):
            ck = checkpoint_path(out / "checkpoints", step)
            sample = samples[split]
            hessian = {"problem": cfg.problem, "checkpoint": file_digest(ck), "sample": sample["digest_X"],
                       "seed": cfg.seed}
            op = checkpoint_hessian(cfg, ck, sample, checkpoint_digest=hessian["checkpoint"])
            tag = f"H_{split} step {step} ({cfg.label})"
            entry = analyses[split].setdefault(step, {})
            if step in cfg.exact_steps and split in cfg.exact_splits:
                key = {"kind": "exact", "version": exact.CACHE_VERSION, **hessian, "k_max": cfg.k_max_exact,
                       "method": cfg.exact_method, "dtype": cfg.exact_dtype, "n_random": cfg.n_random_masks,
                       "basis_columns": keep}
                rec, was_cached = cache.fetch("exact", split, step, key, lambda: exact.analyse(
                    op, orders[step], k_max=cfg.k_max_exact, method=cfg.exact_method, dtype=cfg.exact_dtype,
                    n_random=cfg.n_random_masks, seed=cfg.seed, keep=keep, progress=progress, tag=tag))
                spent = timings if not was_cached else reused
                spent["exact_hessian"] += float(rec["seconds_hessian"])
                spent["exact_eigh"] += float(rec["seconds_eigh"])
                reused["analyses"] += int(was_cached)
                _log_reuse(was_cached, tag, "exact", cache.path("exact", split, step))
                entry["exact"] = rec
            if step in cfg.sketch_steps:
                ident = _store_ident({"version": 1, **hessian, **sketch})
                store = out / "seigh" / f"{split}_step{step:06d}_{ident}.zarr"
                key = {"kind": "sketched", "store": ident, "basis_columns": keep}
                rec, was_cached = cache.fetch("sketched", split, step, key, lambda: sketched.analyse(
                    op, orders[step], **sketch, seed=cfg.seed, store=store, chunk=cfg.chunk, client=client,
                    gpu=cfg.gpu, keep=keep, n_samples=sample["n"], progress=progress, tag=tag,
                    operator_id=_store_ident({"version": 1, **hessian})))
                seconds = rec["seconds"] + rec["seconds_overlap"]
                rec["seconds_this_call"] = 0.0 if was_cached else seconds
                (reused if was_cached else timings)["seigh"] += seconds
                reused["analyses"] += int(was_cached)
                _log_reuse(was_cached, tag, "sketched", cache.path("sketched", split, step))
                if not keep_stores and (freed := outputs.remove_store(store)):
                    logger.info("%s: removed its SEIGH store (%s; --no-keep-stores), the analysis is cached",
                                tag, outputs.format_bytes(freed))
                entry["sketched"] = rec
            sk.clear_recipe_cache()  # free the built operator (its model and sample) before the next one
            _empty_cuda_cache(cfg.device)
    finally:
        if close is not None:
            close()
    return analyses


def checkpoint_hessian(cfg, checkpoint, sample: dict, *, checkpoint_digest: str | None = None):
    """The Hessian of ``checkpoint`` on a stored ``sample``, with the run's product settings, as a
    :class:`sketchla.RecipeOperator` (:func:`~overlap_experiments.hessian.recipe.hessian_recipe`)."""
    return hessian_recipe(problems.get(cfg.problem), checkpoint, sample, checkpoint_digest=checkpoint_digest,
                          device=cfg.device, vectorize=cfg.vectorize, block=cfg.hvp_block, batch_size=cfg.hvp_batch)


def _store_ident(key: dict) -> str:
    """12 hex digits naming a SEIGH store by its Hessian and sketch: sketchla resumes a store by its
    sketch parameters only, so another checkpoint's or sample's Hessian must never find this one."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _log_reuse(was_cached: bool, tag: str, kind: str, path) -> None:
    if was_cached:
        logger.info("%s: %s analysis reused from %s", tag, kind, path)


def _empty_cuda_cache(device: str) -> None:
    if device != "cpu":
        import torch  # optional dependency

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _client(cfg):
    """``(client for seigh, close callback or None)``: a tcp scheduler, a LocalCUDACluster, a
    LocalCluster, or threads in this process (``False``)."""
    if cfg.scheduler is not None:
        return sk.get_client(address=cfg.scheduler)
    if cfg.gpu:
        return sk.get_client(gpu=True, n_workers=cfg.workers, threads_per_worker=1)
    if cfg.workers is not None:
        return sk.get_client(n_workers=cfg.workers, threads_per_worker=1)
    return False, None


def _ensure_cluster_tools(gpu: bool) -> None:
    """Raise a clear ``ImportError`` when ``--gpu`` is asked for without dask-cuda / CuPy."""
    if not gpu:
        return
    missing = []
    for mod, pip in (("dask_cuda", "dask-cuda"), ("cupy", "cupy-cuda12x")):
        try:
            __import__(mod)
        except ImportError:
            missing.append(pip)
    if missing:
        raise ImportError(f"--gpu needs {' and '.join(missing)} (pip install {' '.join(missing)}), "
                          "or start 'dask scheduler' + 'dask-cuda-worker' and pass --scheduler tcp://…")


@contextlib.contextmanager
def _blas_threads(n):
    """Limit the BLAS/LAPACK threads of NumPy/SciPy (OpenBLAS) to ``n`` for the run.

    The BLAS work of a small problem is small (TSQR of 7030 × 355, 711 × 711
    core solves, k × k SVDs) and OpenBLAS thread teams spin while waiting: on
    a shared 2-core machine two threads made the SEIGH core solve 10x slower
    than one (0.8 s vs 8–12 s measured). ``None`` leaves the library default.
    """
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits  # comes with scikit-learn (the experiments extra)

    # threadpoolctl only limits libraries already loaded: SciPy brings its own
    # OpenBLAS (separate from NumPy's), loaded by its first linalg import
    import scipy.linalg  # noqa: F401
    import scipy.sparse.linalg  # noqa: F401

    with threadpool_limits(limits=int(n), user_api="blas"):
        yield


# ------------------------------------------------------------------------------------------ command line
def add_parser(subparsers) -> argparse.ArgumentParser:
    """The ``run`` subcommand: one sub-parser per problem, each with the options that problem has."""
    p = subparsers.add_parser(
        "run", help="train a problem and measure exact/sketched overlap (paper §6)",
        description="Train PROBLEM with SGD, compute SEIGH (and, for small D, exact) Hessian eigenspaces at "
                    "checkpoints, and their overlap with parameter-magnitude masks; writes results.json and "
                    "figures to --out. 'run PROBLEM --help' lists the options of a problem.")
    runs = p.add_subparsers(dest="problem", metavar="PROBLEM", required=True)
    for name in problems.names():
        prob = problems.get(name)
        pp = runs.add_parser(name, help=f"{prob.title}, {prob.model_name}, D = {prob.n_params:,}",
                             description=f"{prob.title}, {prob.model_name}: D = {prob.n_params:,} parameters "
                                         f"(paper Table 1).")
        config.add_arguments(pp, prob)
    p.set_defaults(handler=_command)
    return p


def _command(args) -> int:
    cfg = config.from_args(args)
    res = run(args.out, cfg, progress=args.progress, figures=not args.no_figures, keep_stores=args.keep_stores)
    reports.for_problem(problems.get(cfg.problem)).print_summary(res)
    print(f"wrote {args.out}/results.json ({cfg.label})"
          + (f", {len(res.get('figures', []))} figures" if not args.no_figures else "")
          + f" and {args.out}/report.html; the folder holds {outputs.describe_use(res['disk'])}")
    return 0
