"""The report of a run with exact Hessians: exact and sketched side by side (paper §6.1, App. A.7, B.1).

For problems whose D allows dense Hessians (mnist16). It evaluates *every*
checkpoint on the whole train/val/test splits and takes κ of its parameters
(paper Fig. 15), and writes ``results.json`` with

* ``checkpoints[step]`` — ``kappa_params`` {ρ: κ(θ)}, ``{split}_loss``, ``{split}_acc``;
* ``hessian_samples[split]`` — ``n``, ``per_class``, ``indices``;
* ``overlap[split][step]`` — the curves for every k (``k``, ``chance`` = k/D;
  ``exact``, ``ratio_exact``, ``random_mask_mean/std``, ``best_mask``,
  ``kappa_spectrum``, ``metrics``, eigenvalues and timings of the exact
  analysis; ``sketched``, ``ratio_sketched``, ``eigenvalues_sketched`` and
  timings of SEIGH; their agreement where both exist);
* ``summary[split][step][k]`` — exact / sketched / chance / ratios at the k of
  :data:`~overlap_experiments.paper_values.SUMMARY_KS` and Fig. 1;
* ``stability`` — mask IoU between checkpoints ≤ 250 and eigenspace overlap
  between analysed steps (Fig. 16);

and the figures of :mod:`overlap_experiments.figures.comparison`.
"""
from __future__ import annotations

import numpy as np

from .. import overlap as ov
from ..checkpoints import checkpoint_path, load_model
from ..figures.comparison import make_figures
from ..models import flat_parameters
from ..paper_values import FIG1_K, FIG16_KS, KAPPA_RHOS, SUMMARY_KS
from ..train import evaluate
from .common import config_record, sketch_certificate, timing_lines, training_record

__all__ = ["BASIS_COLUMNS", "checkpoint_metrics", "assemble", "make_figures", "print_summary"]

#: leading eigenvectors kept in memory per analysed Hessian (Fig. 16, exact-vs-sketched agreement)
BASIS_COLUMNS = max(FIG16_KS + (FIG1_K,))


def checkpoint_metrics(cfg, problem, data, samples, ckpt_dir) -> tuple[dict, dict]:
    """``(metrics, orders)`` of every checkpoint: loss, accuracy on every data split and κ(θ);
    the parameters' magnitude order."""
    metrics, orders = {}, {}
    for s in cfg.checkpoint_steps:
        m = load_model(problem, checkpoint_path(ckpt_dir, s))
        theta = flat_parameters(m)
        orders[s] = ov.magnitude_order(theta)
        row = {"kappa_params": ov.kappa(theta, KAPPA_RHOS)}
        for name, split in data.splits.items():
            X, y = split.batch(np.arange(len(split)))
            row[f"{name}_loss"], row[f"{name}_acc"] = evaluate(m, X, y)
        metrics[s] = row
    return metrics, orders


def _curve_list(x):
    return None if x is None else [float(v) for v in np.asarray(x)]


def assemble(cfg, problem, data_source, training, samples, metrics, orders, analyses, timings) -> dict:
    """The results dict (module docstring); adds the median seconds per HVP to ``timings``."""
    D = problem.n_params
    res: dict = {
        "problem": problem.as_dict(),
        "config": config_record(cfg),
        "n_params": int(D),
        "data_source": data_source,
        "hessian_samples": {sp: {"n": int(m["n"]), "per_class": int(m["n"]) // problem.num_classes,
                                 "indices": [int(i) for i in m["indices"]]} for sp, m in samples.items()},
        "training": training_record(training),
        "checkpoints": {str(s): {k: ({str(r): x for r, x in v.items()} if isinstance(v, dict) else v)
                                 for k, v in row.items()} for s, row in metrics.items()},
    }
    per_step: dict = {}
    summary: dict = {}
    for split, by_step in analyses.items():
        per_step[split], summary[split] = {}, {}
        for s, e in sorted(by_step.items()):
            per_step[split][str(s)] = _item(e.get("exact"), e.get("sketched"), metrics[s], D, cfg.n_outer)
            summary[split][str(s)] = _summary_row(e.get("exact"), e.get("sketched"), D)
    res["overlap"] = per_step
    res["summary"] = summary
    res["stability"] = _stability(cfg, problem, orders, analyses)
    entries = [e for by in analyses.values() for e in by.values()]
    exact = [e["exact"]["seconds_per_hvp"] for e in entries if "exact" in e]
    sketched = [e["sketched"]["per_hvp"] for e in entries if "sketched" in e and e["sketched"]["per_hvp"]]
    timings["hvp_seconds_exact"] = float(np.median(exact)) if exact else None
    timings["hvp_seconds_sketched"] = float(np.median(sketched)) if sketched else None
    return res


def _item(ex, skd, row, D, n_outer) -> dict:
    """``overlap[split][step]``: the exact and sketched curves of one Hessian, side by side."""
    K = max(len(ex["overlap"]) if ex else 0, len(skd["overlap"]) if skd else 0)
    ks = np.arange(1, K + 1)
    chance = ov.chance_curve(K, D)
    item = {"k": ks.tolist(), "chance": _curve_list(chance), "test_acc": row["test_acc"], "train_acc": row["train_acc"]}
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
        item["eigenvalues_exact_top"] = _curve_list(ev[:max(n_outer, 10)])
        item["exact_all_eigenvalues"] = bool(ex["all_eigenvalues"])
        item["hessian_frobenius2"] = float(ex["frobenius2"])
        item["seconds_exact"] = {"hessian": float(ex["seconds_hessian"]), "eigh": float(ex["seconds_eigh"]),
                                 "per_hvp": float(ex["seconds_per_hvp"])}
    if skd:
        n = len(skd["overlap"])
        item["sketched"] = _curve_list(skd["overlap"])
        item["ratio_sketched"] = _curve_list(np.asarray(skd["overlap"]) / chance[:n])
        item["eigenvalues_sketched"] = _curve_list(skd["eigenvalues"])
        item["seconds_sketched"] = {"total": float(skd["seconds"]), "per_hvp": skd["per_hvp"],
                                    "stages": skd["stages"]}
        item["certificate_sketched"] = sketch_certificate(skd)
    if ex and skd:
        n = min(len(ex["overlap"]), len(skd["overlap"]))
        item["abs_diff_exact_sketched_max"] = float(np.max(np.abs(
            np.asarray(ex["overlap"][:n]) - np.asarray(skd["overlap"][:n]))))
        # eigenspace agreement between sketched and exact top-k (paper: "closely tracks")
        Qe, Qs = ex["basis"], skd["basis"]
        item["eigenspace_overlap_exact_vs_sketched"] = {
            str(k): ov.eigenspace_overlap(Qe, Qs, k) for k in (1, 2, 3, 5) + SUMMARY_KS
            if k <= min(Qe.shape[1], Qs.shape[1])}
    return item


def _summary_row(ex, skd, D) -> dict:
    """``summary[split][step]``: exact / sketched overlap, chance and ratios at a few k."""
    K = max(len(ex["overlap"]) if ex else 0, len(skd["overlap"]) if skd else 0)
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
    return row


def _stability(cfg, problem, orders, analyses) -> dict:
    """Fig. 16: mask IoU between checkpoint steps (≤ 250) and eigenspace
    overlap between analysis steps (sketched bases; exact where no sketch)."""
    D = problem.n_params
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
        bases = {kind: {s: e[kind]["basis"] for s, e in analyses[split].items() if kind in e}
                 for kind in ("exact", "sketched")}
        src = "sketched" if len(bases["sketched"]) >= len(bases["exact"]) else "exact"
        B = bases[src]
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


def print_summary(res: dict) -> None:
    """The console table: overlap at a few k per split and step, with chance and the ratio."""
    D = res["n_params"]
    print(f"\n{res['problem']['title']}: D = {D} parameters, data = {res['data_source']['name']}")
    print(f"{'split':5s} {'step':>5s} {'test acc':>8s} {'k':>4s} {'exact':>8s} {'sketched':>8s} "
          f"{'chance':>8s} {'exact/chance':>12s}")
    for split, by in res["summary"].items():
        for s in sorted(by, key=int):
            acc = res["checkpoints"][s]["test_acc"]
            for k, r in sorted(by[s].items(), key=lambda kv: int(kv[0])):
                ex = f"{r['exact']:.4f}" if "exact" in r else "-"
                skd = f"{r['sketched']:.4f}" if "sketched" in r else "-"
                ratio = f"{r['ratio_exact']:.1f}" if "ratio_exact" in r else (
                    f"{r['ratio_sketched']:.1f}*" if "ratio_sketched" in r else "-")
                print(f"{split:5s} {s:>5s} {acc:8.2%} {k:>4s} {ex:>8s} {skd:>8s} {r['chance']:8.4f} {ratio:>12s}")
    print("(* = sketched/chance)")
    print(timing_lines(res, [("training", "train"), ("exact Hessians", "exact_hessian"), ("eigh", "exact_eigh"),
                             ("SEIGH", "seigh")]))
