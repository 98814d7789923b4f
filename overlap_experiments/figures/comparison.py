"""Figures of a run with exact Hessians, exact vs sketched (16×16 MNIST; paper Fig. 1 left, Figs. 14–17).

All figures are drawn from the ``results.json`` dict of the exact-vs-sketched
report (:mod:`overlap_experiments.reports.comparison`), so they can be redrawn
without recomputing: ``make_figures(json.load(open(...)), out)``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..paper_values import FIG1_K, PAPER_TABLE2, TABLE2_RHOS
from .style import SPLIT_STYLE, pyplot, save_figure

logger = logging.getLogger(__name__)

__all__ = ["make_figures", "FIGURES"]

#: file name -> what it shows
FIGURES = {
    "fig01_left_overlap_k350.png": "exact vs sketched overlap at k = 350 over training steps, with chance k/D",
    "fig14_masks_vs_k.png": "overlap vs k: magnitude mask, best possible mask, 10 random masks, chance (H_train/H_test rows)",
    "fig15_training_kappa.png": "mini-batch loss, accuracies, κ of the parameters and of the Hessian spectra",
    "fig16_stability.png": "mask IoU and eigenspace overlap between training steps",
    "fig17_grassmann_metrics.png": "Grassmannian similarities between magnitude masks and top eigenspaces over steps",
    "fig_overlap_ratio_vs_k.png": "overlap / chance as a function of k at every analysed step (cf. paper Figs. 1 right, 3, 4)",
}

def _symlog_steps(ax, steps):
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=0, right=max(steps) * 1.3 if steps else 1)
    ax.set_xlabel("training step")


def _value(res, split, step, k, key):
    it = res["overlap"].get(split, {}).get(str(step))
    if it is None or key not in it or it[key] is None or k > len(it[key]):
        return None
    return it[key][k - 1]


def _fig1(res, out: Path, plt) -> Path:
    D = res["n_params"]
    k = FIG1_K
    fig, ax = plt.subplots(figsize=(6, 4))
    all_steps = []
    for split, by_step in res["overlap"].items():
        steps = sorted(int(s) for s in by_step)
        all_steps += steps
        for key, color, label in (("exact", "C0", "exact"), ("sketched", "C1", "sketched")):
            pts = [(s, _value(res, split, s, min(k, _kmax(res, split, s, key)), key)) for s in steps]
            pts = [(s, v) for s, v in pts if v is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, SPLIT_STYLE.get(split, "-"), color=color, marker="o" if key == "exact" else ".",
                        label=f"{label} overlap, H_{split}")
    kk = min(k, max((_kmax(res, sp, s, key) for sp, bs in res["overlap"].items() for s in bs
                     for key in ("exact", "sketched")), default=k))
    ax.axhline(kk / D, color="k", ls=":", label=f"chance k/D = {kk / D:.3f}")
    ax.set_ylabel(f"overlap (k = {kk})")
    ax.set_title(f"16×16 MNIST, D = {D}: magnitude mask vs top-{kk} eigenspace")
    _symlog_steps(ax, all_steps)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    return save_figure(fig, out / "fig01_left_overlap_k350.png", plt, dpi=120)


def _kmax(res, split, step, key):
    it = res["overlap"].get(split, {}).get(str(step), {})
    v = it.get(key)
    return len(v) if v else 0


def _fig14(res, out: Path, plt) -> Path:
    D = res["n_params"]
    splits = [sp for sp in res["overlap"] if any("exact" in it for it in res["overlap"][sp].values())]
    splits = splits or list(res["overlap"])[:1]
    steps = sorted({int(s) for sp in splits for s, it in res["overlap"][sp].items() if "exact" in it})
    if len(steps) > 3:  # the paper's columns: start, middle, end
        steps = [steps[0], steps[len(steps) // 2], steps[-1]]
    ncol = max(len(steps), 1)
    fig, axes = plt.subplots(len(splits), ncol, figsize=(4 * ncol, 3.2 * len(splits)), squeeze=False)
    for i, sp in enumerate(splits):
        for j, s in enumerate(steps):
            ax = axes[i, j]
            it = res["overlap"][sp].get(str(s), {})
            if "exact" not in it:
                ax.set_axis_off()
                continue
            n = len(it["exact"])
            ks = np.arange(1, n + 1)
            mean, std = np.asarray(it["random_mask_mean"]), np.asarray(it["random_mask_std"])
            ax.fill_between(ks, np.maximum(mean - std, 1e-6), mean + std, color="0.7", label="random masks ±1 std")
            ax.plot(ks, it["best_mask"], color="C2", label="best possible mask")
            ax.plot(ks, it["exact"], color="C0", label="param. magnitude mask")
            if it.get("sketched"):
                m = len(it["sketched"])
                ax.plot(ks[:m], it["sketched"], color="C1", lw=0.8, label="magnitude mask (sketched)")
            ax.plot(ks, ks / D, "k:", label="chance k/D")
            ax.set_yscale("log")
            ax.set_xscale("log")
            ax.set_title(f"H_{sp}, step {s} (test acc {it['test_acc']:.1%})", fontsize=9)
            ax.set_xlabel("k")
            if j == 0:
                ax.set_ylabel("overlap")
    if steps:
        axes[0, 0].legend(fontsize=6)
    return save_figure(fig, out / "fig14_masks_vs_k.png", plt, dpi=110)


def _fig15(res, out: Path, plt) -> Path:
    ck = res["checkpoints"]
    steps = sorted(int(s) for s in ck)
    fig, axes = plt.subplots(5, 1, figsize=(7, 13), sharex=True)
    losses = res["training"]["losses"]
    if losses:
        axes[0].plot(np.arange(len(losses)), losses, lw=0.7)
    axes[0].set_ylabel("mini-batch loss")
    axes[0].set_yscale("log")
    for split, c in (("train", "C0"), ("val", "C1"), ("test", "C2")):
        axes[1].plot(steps, [ck[str(s)][f"{split}_acc"] for s in steps], color=c, label=split)
    axes[1].set_ylabel("accuracy")
    axes[1].legend(fontsize=7)
    rhos = sorted(ck[str(steps[0])]["kappa_params"], key=float, reverse=True)
    for r in rhos:
        axes[2].plot(steps, [ck[str(s)]["kappa_params"][r] for s in steps], label=f"top {float(r):.1%}")
    axes[2].set_ylabel("κ(θ)")
    axes[2].legend(fontsize=7)
    for ax, split in ((axes[3], "train"), (axes[4], "test")):
        by = res["overlap"].get(split, {})
        st = sorted(int(s) for s, it in by.items() if "kappa_spectrum" in it)
        for r in rhos:
            pts = [(s, by[str(s)]["kappa_spectrum"].get(r)) for s in st]
            pts = [(s, v) for s, v in pts if v is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", label=f"top {float(r):.1%}")
        ax.set_ylabel(f"κ(Λ) of H_{split}")
        if st:
            ax.legend(fontsize=7)
        else:  # κ(Λ) needs the whole spectrum: exact Hessians only
            ax.text(0.5, 0.5, f"no exact H_{split} in this run\n(--exact-splits train test)",
                    ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.4")
    for ax in axes:
        ax.set_xscale("symlog", linthresh=1)
    axes[-1].set_xlabel("training step")
    return save_figure(fig, out / "fig15_training_kappa.png", plt, dpi=110)


def _fig16(res, out: Path, plt) -> Path:
    stab = res["stability"]
    rows = [("mask IoU", stab["mask_steps"], stab["mask_iou"], "ρ")]
    for split, e in stab["eigenspace_overlap"].items():
        rows.append((f"H_{split} eigenspace overlap ({e['source']})", e["steps"], e["k"], "k"))
    ncol = max(len(r[2]) for r in rows) or 1
    fig, axes = plt.subplots(len(rows), ncol, figsize=(3.2 * ncol, 3.2 * len(rows)), squeeze=False)
    for i, (title, steps, mats, sym) in enumerate(rows):
        keys = sorted(mats, key=float)
        for j in range(ncol):
            ax = axes[i, j]
            if j >= len(keys):
                ax.set_axis_off()
                continue
            M = np.asarray(mats[keys[j]])
            im = ax.imshow(M, vmin=0, vmax=1, cmap="viridis", origin="upper")
            lab = f"{float(keys[j]):.1%}" if sym == "ρ" else keys[j]
            ax.set_title(f"{title}\n{sym} = {lab}", fontsize=8)
            n_t = len(steps) if len(steps) <= 10 else 6
            ticks = np.unique(np.linspace(0, len(steps) - 1, n_t).round().astype(int)) if steps else []
            ax.set_xticks(ticks)
            ax.set_xticklabels([steps[t] for t in ticks], fontsize=6)
            ax.set_yticks(ticks)
            ax.set_yticklabels([steps[t] for t in ticks], fontsize=6)
            fig.colorbar(im, ax=ax, fraction=0.046)
    return save_figure(fig, out / "fig16_stability.png", plt, dpi=110)


def _fig17(res, out: Path, plt) -> Path:
    by = {sp: {int(s): it["metrics"] for s, it in res["overlap"][sp].items() if it.get("metrics")}
          for sp in res["overlap"]}
    splits = [sp for sp in by if by[sp]] or list(by)[:1]
    names = None
    for sp in splits:
        for m in by[sp].values():
            for r in m.values():
                names = list(r)
                break
    names = names or []
    fig, axes = plt.subplots(len(splits), max(len(names), 1), figsize=(2.9 * max(len(names), 1), 3 * len(splits)),
                             squeeze=False)
    for i, sp in enumerate(splits):
        steps = sorted(by[sp])
        rhos = sorted({r for s in steps for r in by[sp][s]}, key=float)
        for j, name in enumerate(names):
            ax = axes[i, j]
            for c, r in enumerate(rhos):
                pts = [(s, by[sp][s][r][name]) for s in steps if r in by[sp][s]]
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", color=f"C{c}", label=f"ρ = {float(r):.1%}")
                if abs(float(r) - 0.2) < 1e-9 and name in PAPER_TABLE2 and 0.2 in TABLE2_RHOS:
                    ax.axhline(PAPER_TABLE2[name][TABLE2_RHOS.index(0.2)], color=f"C{c}", ls="--", lw=0.8,
                               label="random (Table 2, ρ = 20%)")
            ax.set_title(f"{name}, H_{sp}", fontsize=8)
            _symlog_steps(ax, steps)
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("step", fontsize=7)
            if i == 0 and j == 0:
                ax.legend(fontsize=6)
    return save_figure(fig, out / "fig17_grassmann_metrics.png", plt, dpi=110)


def _fig_ratio(res, out: Path, plt) -> Path:
    splits = list(res["overlap"])
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 3.6), squeeze=False)
    for i, sp in enumerate(splits):
        ax = axes[0, i]
        steps = sorted(int(s) for s in res["overlap"][sp])
        cmap = plt.get_cmap("viridis")
        for c, s in enumerate(steps):
            it = res["overlap"][sp][str(s)]
            col = cmap(c / max(len(steps) - 1, 1))
            if it.get("ratio_sketched"):
                ax.plot(np.arange(1, len(it["ratio_sketched"]) + 1), it["ratio_sketched"], color=col,
                        lw=0.9, label=f"step {s}")
            elif it.get("ratio_exact"):
                ax.plot(np.arange(1, len(it["ratio_exact"]) + 1), it["ratio_exact"], color=col, lw=0.9,
                        ls="--", label=f"step {s} (exact)")
        ax.axhline(1.0, color="k", ls=":", label="chance")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("k")
        ax.set_ylabel("sketched overlap / chance")
        ax.set_title(f"H_{sp}")
        ax.legend(fontsize=6, ncol=2)
    return save_figure(fig, out / "fig_overlap_ratio_vs_k.png", plt, dpi=110)


def make_figures(res: dict, out) -> list[str]:
    """Draw every figure of :data:`FIGURES` from ``res`` into folder ``out``;
    returns the written paths. A figure that fails is logged and skipped
    (the numbers in results.json stay valid)."""
    plt = pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fn in (_fig1, _fig14, _fig15, _fig16, _fig17, _fig_ratio):
        try:
            written.append(str(fn(res, out, plt)))
        except Exception:  # keep the run's numbers even if one figure cannot be drawn
            logger.exception("figure %s failed", fn.__name__)
            plt.close("all")
    return written
