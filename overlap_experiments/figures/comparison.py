"""Figures of a run with exact Hessians, exact vs sketched (16×16 MNIST; paper Fig. 1, Figs. 14–17).

All figures are drawn from the ``results.json`` dict of the exact-vs-sketched
report (:mod:`overlap_experiments.reports.comparison`), so they can be redrawn
without recomputing: ``make_figures(json.load(open(...)), out)``. Each names
in its caption line the problem, the data, the Hessian splits, k and the
steps it shows (:func:`.style.caption`); a run that cannot fill a panel
(no exact H_test, k beyond n_O, a collapsing metric) drops it and says so.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from ..overlap import k_for
from ..paper_values import COLLAPSING_METRICS, FIG1_K, FIG16_KS, PAPER_TABLE2, TABLE2_RHOS
from .style import (METRIC_NAMES, SPLIT_STYLE, caption, finish, k_axes, plain_log, pyplot, save_figure, steps_axis,
                    steps_text)

logger = logging.getLogger(__name__)

__all__ = ["make_figures", "FIGURES", "FLAT_BELOW"]

#: file name -> caption (what the figure shows; the run's k and steps are in the figure itself)
FIGURES = {
    "fig01_left_overlap_vs_step.png": "Paper Fig. 1 (left): overlap (Eq. 3) of the top-k parameter-magnitude mask "
    "with the top-k Hessian eigenspace over training, exact (dense eigendecomposition) and sketched (SEIGH), "
    "against the chance level k/D.",
    "fig01_right_ratio_vs_k.png": "Paper Fig. 1 (right), for this problem: overlap divided by chance k/D as a "
    "function of k, one line per analysed step (sketched; exact where no sketch).",
    "fig14_masks_vs_k.png": "Paper Fig. 14: overlap vs k of the parameter-magnitude mask, of the best possible "
    "k-mask and of random k-masks (mean and ±1 std of 10), with chance k/D; one panel per exact Hessian.",
    "fig15_training_kappa.png": "Paper Fig. 15: mini-batch loss, accuracies, κ of the parameters (share of ‖θ‖² "
    "in the top ρ of them) and κ of the exact Hessian spectra over training.",
    "fig16_stability.png": "Paper Fig. 16: IoU of magnitude masks between checkpoints (top row) and overlap "
    "between top-k Hessian eigenspaces of the analysed steps (one row per split).",
    "fig17_grassmann_metrics.png": "Paper Fig. 17: normalised Grassmannian similarities between the top-ρD magnitude "
    "mask and the top-ρD exact eigenspace over training, with the random baselines of paper Table 2; metrics that "
    "collapse to ≈ 0 are named, not drawn.",
}
#: a collapsing metric (paper §4.2) whose every value in a run is below this is named, not drawn, in Fig. 17
FLAT_BELOW = 0.01


def _curves(res, kind) -> list[tuple[str, dict]]:
    """``[(split, {step: curve})]`` of one kind ("exact" / "sketched"), splits that have it."""
    out = []
    for split, by in res["overlap"].items():
        pts = {int(s): it[kind] for s, it in by.items() if it.get(kind)}
        if pts:
            out.append((split, pts))
    return out


def _fig1_left(res, out: Path, plt) -> Path:
    D = res["n_params"]
    series = [(split, kind, pts) for kind in ("exact", "sketched") for split, pts in _curves(res, kind)]
    # one k for every point: the paper's, or the longest all curves reach (quick runs: n_O)
    k = min([FIG1_K] + [len(c) for _, _, pts in series for c in pts.values()])
    fig, ax = plt.subplots(figsize=(7.5, 4.6), layout="constrained")
    steps = set()
    for split, kind, pts in series:
        xs = sorted(pts)
        steps |= set(xs)
        ax.plot(xs, [pts[s][k - 1] for s in xs], SPLIT_STYLE.get(split, "-"), color="C0" if kind == "exact" else "C1",
                marker="o" if kind == "exact" else "s", ms=6 if kind == "exact" else 4,
                label=f"{kind} overlap, H_{split}")
    ax.axhline(k / D, color="k", ls=":", label=f"chance k/D = {k / D:.3g}")
    ax.set_ylabel(f"overlap of top-{k} mask and eigenspace")
    steps_axis(ax, sorted(steps))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    exact_steps = sorted({s for split, kind, pts in series if kind == "exact" for s in pts})
    extra = f"exact at {', '.join(map(str, exact_steps))}" if exact_steps else "no exact Hessians"
    if k < FIG1_K:
        extra += f"; the paper's k = {FIG1_K} needs n_O ≥ {FIG1_K}"
    finish(fig, f"Fig. 1 (left): magnitude mask vs top-{k} Hessian eigenspace over training",
           caption(res, splits=list(res["overlap"]), k=k, steps=sorted(steps), extra=extra))
    return save_figure(fig, out / "fig01_left_overlap_vs_step.png", plt)


def _fig1_right(res, out: Path, plt) -> Path:
    splits = list(res["overlap"])
    fig, axes = plt.subplots(1, len(splits), figsize=(5.2 * len(splits), 4.2), squeeze=False, layout="constrained",
                             sharey=True)
    cmap = plt.get_cmap("viridis")
    all_steps, kmax = set(), 0
    for ax, sp in zip(axes[0], splits):
        steps = sorted(int(s) for s in res["overlap"][sp])
        all_steps |= set(steps)
        for c, s in enumerate(steps):
            it = res["overlap"][sp][str(s)]
            kind = "sketched" if it.get("ratio_sketched") else "exact"
            ratio = it.get(f"ratio_{kind}")
            if not ratio:
                continue
            kmax = max(kmax, len(ratio))
            ax.plot(np.arange(1, len(ratio) + 1), ratio, color=cmap(c / max(len(steps) - 1, 1)), lw=1,
                    ls="-" if kind == "sketched" else "--", label=f"step {s}" + (" (exact)" if kind == "exact" else ""))
        ax.axhline(1.0, color="k", ls=":", label="chance (ratio 1)")
        k_axes(ax, sp)
        ax.legend(fontsize=7, ncol=2, loc="lower right")
    axes[0, 0].set_ylabel("overlap / chance k/D")
    finish(fig, "Fig. 1 (right) for this problem: overlap relative to chance vs k",
           caption(res, splits=splits, k=f"k = 1–{kmax}", steps=sorted(all_steps)))
    return save_figure(fig, out / "fig01_right_ratio_vs_k.png", plt)


def _fig14(res, out: Path, plt) -> Path:
    D = res["n_params"]
    exact = _curves(res, "exact")
    splits = [sp for sp, _ in exact]
    steps = sorted({s for _, pts in exact for s in pts})
    if len(steps) > 3:  # the paper's columns: start, middle, end
        steps = [steps[0], steps[len(steps) // 2], steps[-1]]
    if not splits:
        raise ValueError("Fig. 14 needs exact Hessians (none in this run)")
    fig, axes = plt.subplots(len(splits), len(steps), figsize=(max(4.3 * len(steps), 6.5), 3.6 * len(splits) + 0.9),
                             squeeze=False, layout="constrained", sharey=True)
    lows = []
    for i, sp in enumerate(splits):
        for j, s in enumerate(steps):
            ax = axes[i, j]
            it = res["overlap"][sp].get(str(s), {})
            if "exact" not in it:
                ax.set_axis_off()
                ax.text(0.5, 0.5, f"no exact H_{sp} at step {s}", ha="center", va="center", transform=ax.transAxes)
                continue
            n = len(it["exact"])
            ks = np.arange(1, n + 1)
            mean, std = np.asarray(it["random_mask_mean"]), np.asarray(it["random_mask_std"])
            ax.fill_between(ks, np.maximum(mean - std, 1e-12), mean + std, color="0.8", label="random masks ±1 std")
            ax.plot(ks, mean, color="0.5", lw=0.8, label="random masks, mean")
            ax.plot(ks, it["best_mask"], color="C2", label="best possible mask")
            ax.plot(ks, it["exact"], color="C0", label="magnitude mask (exact H)")
            shown = [np.asarray(it["best_mask"]), np.asarray(it["exact"]), ks / D]
            if it.get("sketched"):
                m = len(it["sketched"])
                ax.plot(ks[:m], it["sketched"], color="C1", lw=0.8, label="magnitude mask (sketched H)")
                shown.append(np.asarray(it["sketched"]))
            ax.plot(ks, ks / D, "k:", label="chance k/D")
            ax.set_xscale("log")
            ax.set_yscale("log")
            lows.append(min(float(np.min(c[c > 0])) for c in shown if np.any(c > 0)))
            ax.set_title(f"H_{sp}, step {s} (test acc {it['test_acc']:.1%})", fontsize=9)
            ax.set_xlabel("k (mask size = eigenspace dimension)")
            plain_log(ax, "x")
            ax.grid(True, which="major", alpha=0.3)
        axes[i, 0].set_ylabel("overlap (Eq. 3)")
    # the random masks' band reaches 0 where std > mean: keep the (shared) axis on the curves
    axes[0, 0].set_ylim(min(lows) / 3, 1.2)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 2 * len(steps)), fontsize=8)
    kmax = max(len(it["exact"]) for sp in splits for it in res["overlap"][sp].values() if it.get("exact"))
    finish(fig, "Fig. 14: magnitude masks vs the best and random masks, overlap with the top-k eigenspace",
           caption(res, splits=splits, k=f"k = 1–{kmax}", steps=steps))
    return save_figure(fig, out / "fig14_masks_vs_k.png", plt)


def _fig15(res, out: Path, plt) -> Path:
    ck = res["checkpoints"]
    steps = sorted(int(s) for s in ck)
    rhos = sorted(ck[str(steps[0])]["kappa_params"], key=float, reverse=True)
    spectra = []  # κ(Λ) needs the whole spectrum: exact Hessians only
    for split, by in res["overlap"].items():
        st = sorted(int(s) for s, it in by.items() if any(v is not None for v in it.get("kappa_spectrum", {}).values()))
        if st:
            spectra.append((split, by, st))
    n = 3 + len(spectra)
    fig, axes = plt.subplots(n, 1, figsize=(7.5, 2.3 * n + 0.8), sharex=True, layout="constrained")
    losses = res["training"]["losses"]
    if losses:
        axes[0].plot(np.arange(len(losses)), losses, lw=0.7)
        if max(losses) > 20 * min(losses) > 0:  # a log axis only where the loss spans decades
            axes[0].set_yscale("log")
    axes[0].set_ylabel("mini-batch loss")
    for split, c in (("train", "C0"), ("val", "C1"), ("test", "C2")):
        if f"{split}_acc" in ck[str(steps[0])]:
            axes[1].plot(steps, [ck[str(s)][f"{split}_acc"] for s in steps], color=c, label=split)
    axes[1].set_ylabel("accuracy")
    axes[1].legend(fontsize=8, loc="upper left")
    for r in rhos:
        axes[2].plot(steps, [ck[str(s)]["kappa_params"][r] for s in steps], label=f"top {float(r):.1%}")
    axes[2].set_ylabel("κ(θ)")
    axes[2].legend(fontsize=8, loc="center left", title="parameters", title_fontsize=8)
    for ax, (split, by, st) in zip(axes[3:], spectra):
        for r in rhos:
            pts = [(s, by[str(s)]["kappa_spectrum"].get(r)) for s in st]
            pts = [(s, v) for s, v in pts if v is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", label=f"top {float(r):.1%}")
        ax.set_ylabel(f"κ(Λ) of H_{split}")
        ax.legend(fontsize=8, loc="lower right", title="eigenvalues", title_fontsize=8)
    for ax in axes:
        steps_axis(ax, steps, label="")
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("training step (symlog axis)")
    missing = [sp for sp in res["overlap"] if sp not in {s for s, _, _ in spectra}]
    extra = "accuracy on the whole train/val/test splits"
    if missing:
        extra += "; no exact " + ", ".join(f"H_{sp}" for sp in missing) + " (κ(Λ) needs --exact-splits)"
    finish(fig, "Fig. 15: training, and the collapse of the parameters and of the Hessian spectrum",
           caption(res, splits=[sp for sp, _, _ in spectra], steps=f"{len(steps)} checkpoints, steps "
                   f"{steps[0]}–{steps[-1]}", extra=extra))
    return save_figure(fig, out / "fig15_training_kappa.png", plt)


def _tick_every(last: int) -> int:
    """A round tick spacing giving 4–8 ticks on [0, last]."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000):
        if last / step <= 8:
            return step
    return 10 ** int(math.log10(max(last, 1)))


def _cell_edges(steps) -> np.ndarray:
    """Edges of heatmap cells centred on the (irregular) ``steps``, so that the axis is in steps."""
    s = np.asarray(steps, dtype=float)
    if len(s) == 1:
        return np.array([s[0] - 0.5, s[0] + 0.5])
    mid = (s[1:] + s[:-1]) / 2
    return np.concatenate([[s[0] - (mid[0] - s[0])], mid, [s[-1] + (s[-1] - mid[-1])]])


def _fig16(res, out: Path, plt) -> Path:
    D = res["n_params"]
    stab = res["stability"]
    mask_steps, masks = stab["mask_steps"], stab["mask_iou"]
    # eigenspace panels (split, k) fill the rows below the masks' row, ncol to a row
    eig = [(sp, e, kk) for sp, e in stab["eigenspace_overlap"].items() for kk in sorted(e["k"], key=int)]
    ncol = max(len(masks), 1)
    nrow = 1 + math.ceil(len(eig) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol + 1.2, 3.3 * nrow + 0.8), squeeze=False,
                             layout="constrained")
    edges = _cell_edges(mask_steps)
    ticks = np.arange(0, mask_steps[-1] + 1, _tick_every(mask_steps[-1]))
    im = None
    for j, r in enumerate(sorted(masks, key=float)):
        ax = axes[0, j]
        im = ax.pcolormesh(edges, edges, np.asarray(masks[r]), vmin=0, vmax=1, cmap="viridis")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(edges[-1], edges[0])  # step 0 top left, as the paper
        ax.set_aspect("equal")
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_title(f"mask IoU, ρ = {float(r):.1%} (k = {k_for(D, float(r))})", fontsize=9)
        ax.set_xlabel("training step")
        if j == 0:
            ax.set_ylabel(f"training step\n(checkpoints {mask_steps[0]}–{mask_steps[-1]})")
    if im is not None:
        fig.colorbar(im, ax=axes[0, :], shrink=0.85, label="IoU of the two masks")
    for n, (sp, e, kk) in enumerate(eig):
        ax = axes[1 + n // ncol, n % ncol]
        st = e["steps"]
        im = ax.imshow(np.asarray(e["k"][kk]), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(st)), [str(s) for s in st], rotation=90 if len(st) > 5 else 0, fontsize=8)
        ax.set_yticks(range(len(st)), [str(s) for s in st], fontsize=8)
        ax.set_title(f"H_{sp} eigenspaces ({e['source']}), k = {kk}", fontsize=9)
        ax.set_xlabel("analysed step (one cell each)")
        if n % ncol == 0:
            ax.set_ylabel("analysed step")
    for n in range(len(eig), (nrow - 1) * ncol):
        axes[1 + n // ncol, n % ncol].set_axis_off()
    if eig:
        fig.colorbar(im, ax=axes[1:, :].ravel().tolist(), shrink=0.85, label="eigenspace overlap")
    eig_steps = sorted({s for _, e, _ in eig for s in e["steps"]})
    extra = f"masks: checkpoints {mask_steps[0]}–{mask_steps[-1]}"
    if eig:
        extra += f"; eigenspaces: {steps_text(eig_steps)}"
        missing = [k for k in FIG16_KS if str(k) not in {kk for _, _, kk in eig}]
        if missing:
            extra += f"; k = {', '.join(map(str, missing))} not drawn (more than the eigenvectors kept: n_O)"
    finish(fig, "Fig. 16: stability of magnitude masks and of Hessian eigenspaces between training steps",
           caption(res, splits=sorted({sp for sp, _, _ in eig}, key=list(res["overlap"]).index), extra=extra))
    return save_figure(fig, out / "fig16_stability.png", plt)


def _fig17(res, out: Path, plt) -> Path:
    by = {sp: {int(s): it["metrics"] for s, it in res["overlap"][sp].items() if it.get("metrics")}
          for sp in res["overlap"]}
    splits = [sp for sp in by if by[sp]]
    if not splits:
        raise ValueError("Fig. 17 needs exact Hessians (none in this run)")
    values: dict = {}
    for sp in splits:
        for m in by[sp].values():
            for per_rho in m.values():
                for name, v in per_rho.items():
                    values.setdefault(name, []).append(v)
    flat = [n for n, vs in values.items() if n in COLLAPSING_METRICS and max(vs) < FLAT_BELOW]
    names = [n for n in values if n not in flat]
    ncol = 2 if len(splits) == 1 else len(names)
    panels = [(sp, n) for sp in splits for n in names]
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.4 * ncol, 3.3 * nrow + 0.9), squeeze=False, layout="constrained",
                             sharex=True)
    all_steps = sorted({s for sp in splits for s in by[sp]})
    for ax, (sp, name) in zip(axes.flat, panels):
        steps = sorted(by[sp])
        rhos = sorted({r for s in steps for r in by[sp][s]}, key=float)
        top = 0.0
        for c, r in enumerate(rhos):
            xs = [s for s in steps if r in by[sp][s]]
            ax.plot(xs, [by[sp][s][r][name] for s in xs], marker="o", color=f"C{c}", label=f"ρ = {float(r):.1%}")
            if name in PAPER_TABLE2 and float(r) in TABLE2_RHOS:
                top = max(top, PAPER_TABLE2[name][TABLE2_RHOS.index(float(r))])
                ax.axhline(PAPER_TABLE2[name][TABLE2_RHOS.index(float(r))], color=f"C{c}", ls=":", lw=1)
            top = max([top] + [by[sp][s][r][name] for s in xs])
        ax.set_title(f"{METRIC_NAMES.get(name, name)}, H_{sp}", fontsize=10)
        steps_axis(ax, all_steps)
        ax.set_ylim(0, 1.1 * top if top > 0 else 1)
        ax.set_ylabel("similarity (1 = same span)")
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles + [plt.Line2D([], [], color="0.3", ls=":")],
               labels + ["random O–O pairs (paper Table 2, D = 2048)"],
               loc="outside lower center", ncol=len(labels) + 1, fontsize=8)
    extra = "normalised 1 − dist/max_dist"
    if flat:
        extra += "; not drawn, collapsing (paper §4.2): " + ", ".join(
            f"{METRIC_NAMES.get(n, n)} (max {max(values[n]):.1g})" for n in flat)
    finish(fig, "Fig. 17: Grassmannian similarity of the top-ρD magnitude mask and the top-ρD eigenspace",
           caption(res, splits=splits, k="k = ρ·D", steps=all_steps, extra=extra))
    return save_figure(fig, out / "fig17_grassmann_metrics.png", plt)


def make_figures(res: dict, out) -> list[str]:
    """Draw every figure of :data:`FIGURES` from ``res`` into folder ``out``;
    returns the written paths. A figure that fails is logged and skipped
    (the numbers in results.json stay valid)."""
    plt = pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fn in (_fig1_left, _fig1_right, _fig14, _fig15, _fig16, _fig17):
        try:
            written.append(str(fn(res, out, plt)))
        except Exception:  # keep the run's numbers even if one figure cannot be drawn
            logger.exception("figure %s failed", fn.__name__)
            plt.close("all")
    return written
