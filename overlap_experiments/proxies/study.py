"""``overlap-experiments proxies``: paper appendix A.2, Figs 6 (train) and 7 (test), on 16×16 MNIST.

An extra on the pipeline (:mod:`overlap_experiments.pipeline`): it uses the
same data, training (an existing ``--out`` folder of ``run mnist16`` is
resumed, its checkpoints reused), Hessian samples (50 per class) and Hessian
recipe, and at steps 0 / 100 / 1000 and for the train and test samples
computes, for every k = 1..D in the parameter-magnitude order:

* ξ_k, the normalised GGN subtrace (Eq. 7), from the exact GGN diagonal;
* the normalised H² subtrace, ``(H²)_ii = ||H e_i||²`` from the exact Hessian;
* ζ_{λ,k}, the SAM perturbation measure (Eq. 8), for three radii λ;
* the exact overlap of the top-k mask with the top-k Hessian eigenspace
  (k ≤ k_max), and the uniform baseline k/D.

Writes ``proxies.json`` (every curve, the seed, all parameters, the data
source, timings) and ``fig06_proxies_train.png`` / ``fig07_proxies_test.png``,
then (re)writes the folder's ``report.html``.
Re-running with the same arguments gives the same numbers.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from .. import config, overlap as ov, pipeline, problems
from .. import progress as progress_display
from ..checkpoints import checkpoint_path, load_model
from ..fileio import write_json
from ..figures.proxies import proxy_figures
from ..hessian.dense import exact_hessian, top_eigenpairs
from ..hessian.samples import load_sample
from ..models import flat_parameters
from ..reports import html
from . import measures as px

logger = logging.getLogger(__name__)

__all__ = ["add_parser", "add_arguments", "run", "DEFAULT_STEPS", "DEFAULT_LAMS"]

PROBLEM = "mnist16"
DEFAULT_STEPS = (0, 100, 1000)
DEFAULT_LAMS = (0.01, 0.1, 1.0)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """The ``proxies`` subcommand."""
    p = subparsers.add_parser("proxies", help="cheaper overlap proxies on 16×16 MNIST (paper App. A.2, Figs 6-7)",
                              description="GGN and H² subtraces (Eq. 7) and the SAM measure (Eq. 8) vs overlap "
                                          "and k/D.")
    add_arguments(p)
    p.set_defaults(handler=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``overlap-experiments proxies``."""
    p.add_argument("--out", required=True, help="output folder (checkpoints of an earlier `run mnist16 --out` "
                   "there are reused)")
    p.add_argument("--seed", type=int, default=0, help="seed of training, Hessian samples and masks (default 0)")
    p.add_argument("--data-root", default=None, help="MNIST in torchvision's layout (default: scikit-learn digits)")
    p.add_argument("--steps", type=int, nargs="+", default=None,
                   help=f"training steps to analyse (default {' '.join(map(str, DEFAULT_STEPS))})")
    p.add_argument("--lams", type=float, nargs=3, default=DEFAULT_LAMS, metavar="λ",
                   help="three SAM radii λ (default 0.01 0.1 1)")
    p.add_argument("--splits", nargs="+", default=["train", "test"], choices=["train", "test"])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: steps 0 and 20, 5 Hessian samples per class, Lanczos top eigenpairs")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    progress_display.add_argument(p)
    return p


def _check_args(args):
    if not isinstance(args.seed, int) or args.seed < 0:
        raise ValueError(f"--seed={args.seed!r} must be a non-negative int")
    for lam in args.lams:
        if not np.isfinite(lam) or lam <= 0:
            raise ValueError(f"--lams: λ={lam} must be positive and finite")
    steps = sorted(set(args.steps if args.steps is not None else ((0, 20) if args.quick else DEFAULT_STEPS)))
    if steps[0] < 0:
        raise ValueError(f"--steps must be non-negative, got {steps}")
    return steps


def run(args) -> int:
    """Run the ``proxies`` subcommand from parsed ``args``; returns the exit code."""
    import torch  # noqa: F401  (torch: optional dependency; fail before any work without it)

    t_start = time.perf_counter()
    steps = _check_args(args)
    progress = args.progress
    prob = problems.get(PROBLEM)
    per_class = 5 if args.quick else prob.n_hessian_train // prob.num_classes
    # the pipeline's configuration of these steps: data, training, samples and Hessians as `run mnist16`
    cfg = config.make_config(PROBLEM, seed=args.seed, data_root=args.data_root, steps=max(steps), checkpoints=steps,
                             sketch_steps=steps, exact_steps=steps, splits=args.splits, exact_splits=args.splits,
                             hessian_samples=per_class * prob.num_classes)
    dataset = pipeline.load_data(cfg)  # first, so a bad data path fails before anything is written
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckdir = out / "checkpoints"
    pipeline.train_checkpoints(cfg, dataset, ckdir, progress=progress)
    samples = pipeline.store_samples(cfg, dataset, out / "hessian_samples")
    D = prob.n_params
    k_max = min(50 if args.quick else ov.k_for(D, 0.2), D)
    lams = [float(v) for v in args.lams]
    curves: dict = {sp: {} for sp in args.splits}
    timings = {"hessian": 0.0, "eigh": 0.0, "ggn": 0.0, "sam": 0.0}
    jobs = [(s, sp) for s in steps for sp in args.splits]
    for s, sp in progress_display.track(jobs, desc="proxies", unit="Hessians", enabled=progress):
        model = load_model(prob, checkpoint_path(ckdir, s))
        Xs, ys = load_sample(samples[sp])
        order = ov.magnitude_order(flat_parameters(model))
        t0 = time.perf_counter()
        H = exact_hessian(pipeline.checkpoint_hessian(cfg, checkpoint_path(ckdir, s), samples[sp]),
                          progress=progress, desc=f"H_{sp} step {s}: dense H from {D} Hessian-vector products")
        h2 = np.einsum("ij,ij->j", H, H)  # ||H e_i||² (float64)
        timings["hessian"] += time.perf_counter() - t0
        method = "lanczos" if args.quick else "lapack"
        with progress_display.stage(f"H_{sp} step {s}: top {k_max} eigenpairs of the dense {D}×{D} H ({method})",
                                    enabled=progress) as st:
            _, Q = top_eigenpairs(H, k_max, method=method, seed=args.seed, overwrite=True)
        del H
        timings["eigh"] += st["seconds"]
        t0 = time.perf_counter()
        ggn = px.ggn_diagonal(model, Xs, ys, progress=progress)
        timings["ggn"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        sam = {lam: px.normalized_subtrace(px.sam_deltas(model, Xs, ys, lam, progress=progress), order)
               for lam in lams}
        timings["sam"] += time.perf_counter() - t0
        curves[sp][s] = {
            "overlap": ov.overlap_curve(order, Q, k_max),
            "ggn": px.normalized_subtrace(ggn, order),
            "h2": px.normalized_subtrace(h2, order),
            "sam": sam,
        }
    timings["total"] = time.perf_counter() - t_start
    result = {
        "problem": prob.as_dict(), "seed": args.seed, "steps": steps, "lams": lams, "splits": list(args.splits),
        "hessian_samples_per_class": per_class,
        "hessian_indices": {sp: list(samples[sp]["indices"]) for sp in args.splits},
        "k_max_overlap": k_max, "D": D, "quick": bool(args.quick), "data_source": dataset.source,
        "eigensolver": "lanczos (top k_max)" if args.quick else "LAPACK syevd",
        "curves": {sp: {str(s): {"overlap": c["overlap"].tolist(), "ggn": c["ggn"].tolist(),
                                 "h2": c["h2"].tolist(), "sam": {str(l): v.tolist() for l, v in c["sam"].items()}}
                        for s, c in by.items()} for sp, by in curves.items()},
        "summary": _summary(curves, D), "timings": timings,
    }
    if not args.no_figures:
        result["figures"] = proxy_figures(result, out)
    write_json(out / "proxies.json", result)
    report = html.write_report(out)
    _print_summary(result)
    print(f"wrote {out / 'proxies.json'} and {report}")
    return 0


def _summary(curves, D) -> dict:
    """Each curve at k = 1 %, 5 %, 20 % of D, divided by the uniform baseline k/D."""
    out = {}
    for sp, by in curves.items():
        for s, c in by.items():
            row = {}
            for frac in (0.01, 0.05, 0.2):
                k = max(1, int(round(frac * D)))
                vals = {"ggn": c["ggn"][k - 1], "h2": c["h2"][k - 1],
                        **{f"sam_{lam:g}": v[k - 1] for lam, v in c["sam"].items()}}
                if k <= len(c["overlap"]):
                    vals["overlap"] = c["overlap"][k - 1]
                row[str(k)] = {name: {"value": float(v), "ratio_to_k_over_D": float(v / (k / D))}
                               for name, v in vals.items()}
            out.setdefault(sp, {})[str(s)] = row
    return out


def _print_summary(result) -> None:
    print(f"\nProxies (appendix A.2), D = {result['D']}; value / (k/D) at k:")
    for sp, by in result["summary"].items():
        for s, row in by.items():
            for k, vals in row.items():
                txt = "  ".join(f"{n} {v['ratio_to_k_over_D']:.2f}" for n, v in vals.items())
                print(f"  {sp:5s} step {s:>5s} k={k:>5s}: {txt}")
