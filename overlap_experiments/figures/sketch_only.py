"""Figures of a sketch-only run: Figs. 3 and 4 of paper §6.2 (CIFAR-10 3c3d, CIFAR-100 All-CNN-C, ImageNet ResNet-18).

Drawn from the ``results.json`` dict of the sketch-only report
(:mod:`overlap_experiments.reports.sketch_only`; redraw without recomputing:
``make_figures(json.load(open(p)), out)``):

* ``fig03_overlap_vs_k.png`` — paper Fig. 3: sketched overlap (Eq. 3)
  between the top-k magnitude mask and the top-k |λ| Hessian eigenspace for
  every k ≤ n_O, one line per checkpoint step, the chance level k/D dashed;
  one panel per Hessian split (H_train, H_test). Log-log axes.
* ``fig04_overlap_vs_step.png`` — paper Fig. 4: left, overlap vs training
  step for a few k (:data:`FIG4_KS` up to n_O); right, the ratio overlap /
  (k/D) for the same k (how many times above chance).

Titles say "SYNTHETIC data" whenever the run used synthetic data.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .style import SPLIT_STYLE, pyplot, save_figure

logger = logging.getLogger(__name__)

__all__ = ["make_figures", "FIGURES", "FIG4_KS"]

FIGURES = {
    "fig03_overlap_vs_k.png": "overlap vs k per checkpoint step with chance k/D (paper Fig. 3)",
    "fig04_overlap_vs_step.png": "overlap and overlap/chance vs step for a few k (paper Fig. 4)",
}
#: k values of Fig. 4 (those ≤ n_O are drawn, plus n_O itself)
FIG4_KS = (1, 10, 100, 1000)


def _title(res: dict, what: str) -> str:
    p = res["problem"]
    tag = "SYNTHETIC data — " if res.get("synthetic") else ""
    return f"{tag}{p['title']} {p['model_name'].split(' (')[0]} (D={res['n_params']:,})\n{what}"


def _fig3(res: dict, out: Path, plt) -> Path:
    splits = list(res["overlap"])
    fig, axes = plt.subplots(1, len(splits), figsize=(5.5 * len(splits), 4.2), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, split in zip(axes[0], splits):
        by_step = res["overlap"][split]
        steps = sorted(by_step, key=int)
        for i, s in enumerate(steps):
            e = by_step[s]
            ax.plot(e["k"], e["overlap"], color=cmap(i / max(len(steps) - 1, 1)), label=f"step {s}")
        if steps:
            e = by_step[steps[-1]]
            ax.plot(e["k"], e["chance"], "k--", lw=1, label="chance k/D")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("k")
        ax.set_ylabel("overlap (Eq. 3)")
        ax.set_title(f"H_{split}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(_title(res, "mask vs top-k eigenspace overlap (Fig. 3)"), fontsize=10)
    return save_figure(fig, out / "fig03_overlap_vs_k.png", plt)


def _fig4(res: dict, out: Path, plt) -> Path:
    n_outer = res["parameters"]["n_outer"]
    ks = sorted({k for k in FIG4_KS if k <= n_outer} | {n_outer})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.get_cmap("tab10")
    for split, by_step in res["overlap"].items():
        steps = sorted(by_step, key=int)
        xs = [int(s) for s in steps]
        for j, k in enumerate(ks):
            ov = [by_step[s]["overlap"][k - 1] for s in steps]
            ratio = [by_step[s]["ratio"][k - 1] for s in steps]
            kw = dict(color=colors(j % 10), ls=SPLIT_STYLE.get(split, "-"), marker="o", ms=3,
                      label=f"H_{split}, k={k}")
            a1.plot(xs, ov, **kw)
            a2.plot(xs, ratio, **kw)
            a1.axhline(k / res["n_params"], color=colors(j % 10), lw=0.6, ls=":")
    pos = [int(s) for sp in res["overlap"].values() for s in sp if int(s) > 0]
    for ax in (a1, a2):
        ax.set_xscale("symlog", linthresh=min(pos) if pos else 1)
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.grid(True, which="both", alpha=0.3)
    a1.set_ylabel("overlap (dotted: chance k/D)")
    a2.set_ylabel("overlap / (k/D)")
    a2.axhline(1.0, color="k", lw=1, ls="--")
    a1.legend(fontsize=7)
    fig.suptitle(_title(res, "overlap and ratio to chance vs step (Fig. 4)"), fontsize=10)
    return save_figure(fig, out / "fig04_overlap_vs_step.png", plt)


def make_figures(res: dict, out) -> list[str]:
    """Draw Figs. 3 and 4 into folder ``out`` from a results dict; returns the PNG paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not res.get("overlap") or not any(res["overlap"].values()):
        raise ValueError("results hold no overlap curves to plot")
    plt = pyplot()
    paths = [_fig3(res, out, plt), _fig4(res, out, plt)]
    logger.info("figures%s: %s", " (SYNTHETIC data)" if res.get("synthetic") else "",
                ", ".join(p.name for p in paths))
    return [str(p) for p in paths]
