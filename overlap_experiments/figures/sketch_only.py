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

Each figure's caption line (:func:`.style.caption`) names the problem, the
data ("SYNTHETIC data" whenever the images were generated), the splits, k,
the steps and the sketch sizes.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .style import SPLIT_STYLE, caption, finish, k_axes, pyplot, save_figure, steps_axis

logger = logging.getLogger(__name__)

__all__ = ["make_figures", "FIGURES", "FIG4_KS", "figure_caption"]

FIGURES = {
    "fig03_overlap_vs_k.png": "Paper Fig. 3: sketched overlap (Eq. 3) of the top-k magnitude mask with the top-k |λ| "
    "Hessian eigenspace for every k ≤ n_O, one line per checkpoint step, with chance k/D; one panel per Hessian "
    "split.",
    "fig04_overlap_vs_step.png": "Paper Fig. 4: sketched overlap (left) and overlap divided by chance k/D (right) "
    "over training, for a few k.",
}
#: k values of Fig. 4 (those ≤ n_O are drawn, plus n_O itself)
FIG4_KS = (1, 10, 100, 1000)


def figure_caption(res: dict, *, k: str) -> str:
    """The caption line of a sketch-only figure: problem, data, splits, ``k``, steps, n_O and n_I."""
    p = res["parameters"]
    return caption(res, splits=list(res["overlap"]), k=k, steps=_steps(res),
                   extra=f"SEIGH n_O = {p['n_outer']}" + ("" if p.get("passes") else f", n_I = {p['n_inner']}"))


def _steps(res) -> list[int]:
    return sorted({int(s) for by in res["overlap"].values() for s in by})


def _fig3(res: dict, out: Path, plt) -> Path:
    splits = list(res["overlap"])
    fig, axes = plt.subplots(1, len(splits), figsize=(5.5 * len(splits), 4.4), squeeze=False, layout="constrained",
                             sharey=True)
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
        k_axes(ax, split)
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("overlap (Eq. 3)")
    finish(fig, "Fig. 3: magnitude mask vs top-k Hessian eigenspace, overlap for every k",
           figure_caption(res, k=f"k = 1–{res['parameters']['n_outer']}"))
    return save_figure(fig, out / "fig03_overlap_vs_k.png", plt)


def _fig4(res: dict, out: Path, plt) -> Path:
    n_outer = res["parameters"]["n_outer"]
    ks = sorted({k for k in FIG4_KS if k <= n_outer} | {n_outer})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    colors = plt.get_cmap("tab10")
    for split, by_step in res["overlap"].items():
        steps = sorted(by_step, key=int)
        xs = [int(s) for s in steps]
        for j, k in enumerate(ks):
            kw = dict(color=colors(j % 10), ls=SPLIT_STYLE.get(split, "-"), marker="o", ms=3,
                      label=f"H_{split}, k = {k}")
            a1.plot(xs, [by_step[s]["overlap"][k - 1] for s in steps], **kw)
            a2.plot(xs, [by_step[s]["ratio"][k - 1] for s in steps], **kw)
    for j, k in enumerate(ks):
        a1.axhline(k / res["n_params"], color=colors(j % 10), lw=0.8, ls=":")
    for ax in (a1, a2):
        steps_axis(ax, _steps(res))
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
    a1.set_ylabel("overlap (dotted: chance k/D)")
    a2.set_ylabel("overlap / chance k/D")
    a2.axhline(1.0, color="k", lw=1, ls="--")
    handles, labels = a1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), fontsize=8)
    finish(fig, "Fig. 4: overlap over training (left) and its ratio to chance (right), for a few k",
           figure_caption(res, k="k = " + ", ".join(map(str, ks))))
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
