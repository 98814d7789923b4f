"""The report of a sketch-only run (paper §6.2: CIFAR-10 3c3d, CIFAR-100 All-CNN-C, ImageNet ResNet-18).

It evaluates the analysed checkpoints on the stored Hessian samples only (the
whole data sets are too large to evaluate at every checkpoint) and writes
``results.json`` with

* ``synthetic`` / ``label`` — whether the images were generated ("SYNTHETIC data");
* ``seeds`` and ``parameters`` — what determined the numbers;
* ``checkpoints[step]`` — ``{split}_sample_loss`` and ``{split}_sample_acc``;
* ``hessian_samples[split]`` — ``n``, ``indices``, ``digest_X``;
* ``overlap[split][step]`` — ``k`` = 1..n_O, ``eigenvalues`` (by descending
  |λ|), ``overlap`` (Eq. 3), ``chance`` (k/D), ``ratio``, ``n_samples``,
  ``store`` (the SEIGH run store) and ``timings`` (``per_hvp``,
  ``measurement``, ``rest``, per-stage, ``this_call``: 0 when reused);

and Figs. 3 and 4 (:mod:`overlap_experiments.figures.sketch_only`).
"""
from __future__ import annotations

import numpy as np

from .. import overlap as ov
from ..checkpoints import checkpoint_path, load_model
from ..devices import resolve_device
from ..figures.sketch_only import make_figures
from ..hessian.samples import load_sample
from ..models import flat_parameters
from ..train import evaluate
from .common import config_record, sketch_certificate, timing_lines, training_record

__all__ = ["BASIS_COLUMNS", "checkpoint_metrics", "assemble", "make_figures", "print_summary"]

#: no eigenvectors are kept in memory: D × n_O is too large for these problems
BASIS_COLUMNS = 0


def checkpoint_metrics(cfg, problem, data, samples, ckpt_dir) -> tuple[dict, dict]:
    """``(metrics, orders)`` of the analysed checkpoints: loss and accuracy on each stored Hessian
    sample; the parameters' magnitude order."""
    device = resolve_device(cfg.device)
    metrics, orders = {}, {}
    for step in sorted(set(cfg.sketch_steps) | set(cfg.exact_steps)):
        model = load_model(problem, checkpoint_path(ckpt_dir, step))
        orders[step] = ov.magnitude_order(flat_parameters(model))
        row = {}
        for split in cfg.splits:
            X, y = load_sample(samples[split], mmap=True)
            row[f"{split}_sample_loss"], row[f"{split}_sample_acc"] = evaluate(model, X, y, batch=100,
                                                                               device=device)
        metrics[step] = row
    return metrics, orders


def assemble(cfg, problem, data_source, training, samples, metrics, orders, analyses, timings) -> dict:
    """The results dict (module docstring); adds the median seconds per HVP to ``timings``."""
    D = problem.n_params
    overlap = {split: {str(step): _entry(e["sketched"], cfg.n_outer, D) for step, e in sorted(by.items())}
               for split, by in analyses.items()}
    per_hvp = [e["timings"]["per_hvp"] for sp in overlap.values() for e in sp.values() if e["timings"]["per_hvp"]]
    timings["per_hvp_median"] = float(np.median(per_hvp)) if per_hvp else None
    return {
        "problem": problem.as_dict(),
        "synthetic": cfg.synthetic,
        "label": cfg.label,
        "data_source": data_source,
        "n_params": int(D),
        "seeds": {"init": cfg.seed, "minibatches": cfg.seed, "augmentation": cfg.seed,
                  "hessian_samples": cfg.seed, "sketch": cfg.seed},
        "config": config_record(cfg),
        "parameters": {"lr": cfg.lr, "batch_size": cfg.batch_size, "steps": cfg.steps,
                       "checkpoints": cfg.checkpoint_steps, "sketch_steps": cfg.sketch_steps,
                       "n_outer": cfg.n_outer, "n_inner": cfg.n_inner, "passes": cfg.passes, "hvps": cfg.hvps,
                       "hessian_samples": cfg.hessian_samples,
                       "augment": cfg.augment, "device": str(resolve_device(cfg.device)),
                       "vectorize": cfg.vectorize, "hvp_block": cfg.hvp_block, "hvp_batch": cfg.hvp_batch},
        "hessian_samples": {s: {"n": m["n"], "indices": m["indices"], "digest_X": m["digest_X"]}
                            for s, m in samples.items()},
        "training": training_record(training),
        "checkpoints": {str(s): row for s, row in metrics.items()},
        "overlap": overlap,
    }


def _entry(rec, n_outer: int, D: int) -> dict:
    """``overlap[split][step]`` of a sketched record."""
    curve = np.asarray(rec["overlap"])
    chance = ov.chance_curve(n_outer, D)
    stages = rec["stages"]
    meas = stages.get("measure")
    return {
        "k": list(range(1, n_outer + 1)),
        "eigenvalues": [float(v) for v in np.asarray(rec["eigenvalues"])],
        "overlap": [float(v) for v in curve],
        "chance": [float(v) for v in chance],
        "ratio": [float(v) for v in curve / chance],
        "n_samples": rec["n_samples"],
        "store": rec["store"],
        "certificate": sketch_certificate(rec),
        "timings": {"per_hvp": rec["per_hvp"], "measurement": meas,
                    "rest": sum(v for k, v in stages.items() if k != "measure") + rec["seconds_overlap"],
                    "stages": stages, "overlap": rec["seconds_overlap"], "seigh_call": rec["seconds"],
                    "this_call": rec["seconds_this_call"]},
    }


def print_summary(res: dict) -> None:
    """The console table: overlap, chance and ratio at k = 1, 10, 100, 1000, n_O per split and step."""
    D = res["n_params"]
    print(f"\n{res['problem']['title']} {res['problem']['model_name']}: D = {D:,}, {res['label']} "
          f"({res['data_source']['name']})")
    print(f"{'split':5s} {'step':>6s} {'k':>5s} {'overlap':>10s} {'chance':>10s} {'ratio':>8s} {'top |λ|':>10s} "
          f"{'s/HVP':>7s}")
    for split, by in res["overlap"].items():
        for s in sorted(by, key=int):
            e = by[s]
            n = len(e["overlap"])
            for k in sorted({k for k in (1, 10, 100, 1000) if k <= n} | {n}):
                hv = e["timings"]["per_hvp"]
                print(f"{split:5s} {s:>6s} {k:5d} {e['overlap'][k - 1]:10.3e} {e['chance'][k - 1]:10.3e} "
                      f"{e['ratio'][k - 1]:8.1f} {abs(e['eigenvalues'][0]):10.3e} "
                      f"{hv if hv is None else round(hv, 3)!s:>7s}")
    print(timing_lines(res, [("training", "train"), ("SEIGH and overlap", "seigh")]))
