"""Figures of the synthetic Grassmannian study (paper Fig. 2 and Figs 8–13).

Lines are medians over the T samples of a cell, shaded bands the 5–95
percentiles, as in the paper. Figures are written as PNG with matplotlib's
Agg backend, named as every figure of the package (:mod:`.style`):

* ``fig02_om_chordal2_and_overlap.png`` — O–M modality; rows chordal_2 (a
  collapsing metric) and overlap; left column against D (one line per ρ),
  right column against ρ (one line per D); the overlap panels also show the
  expectation ρ (Appendix A.5).
* ``fig08_oo_metrics_vs_d.png`` / ``fig09_oo_metrics_vs_rho.png`` — O–O
  against D / against ρ, one panel per metric;
* ``fig10_mm_…`` / ``fig11_mm_…`` — M–M; ``fig12_om_…`` / ``fig13_om_…`` — O–M.

Each caption line names the modality, the grid, T and the seed, and says
"quick grid" for ``--quick`` runs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sketchla import grassmann as gm

from .style import METRIC_NAMES, finish, pyplot, save_figure

#: Resolution of the PNG files.
DPI = 110

__all__ = ["band", "plot_vs_d", "plot_vs_rho", "figure_metrics", "figure2", "write_figures", "figure_name",
           "FIGURE_OF", "FIGURES", "FIG2_NAME"]

#: (modality, axis) → paper figure number.
FIGURE_OF = {
    ("O-O", "d"): 8,
    ("O-O", "rho"): 9,
    ("M-M", "d"): 10,
    ("M-M", "rho"): 11,
    ("O-M", "d"): 12,
    ("O-M", "rho"): 13,
}

#: the modalities of Alg. 3 in words
MODALITY_WORDS = {
    "O-O": "O–O: two random orthonormal D×k bases",
    "O-M": "O–M: a random orthonormal D×k basis and a random k-sparse mask",
    "M-M": "M–M: two random k-sparse masks",
}


def figure_name(modality: str, axis: str | None = None) -> str:
    """The file of Fig. 2 (``axis`` None: ``fig02_om_chordal2_and_overlap.png``) or of Figs. 8–13
    (``fig08_oo_metrics_vs_d.png`` … ``fig13_om_metrics_vs_rho.png``)."""
    mod = modality.replace("-", "").lower()
    if axis is None:
        return f"fig02_{mod}_chordal2_and_overlap.png"
    return f"fig{FIGURE_OF[(modality, axis)]:02d}_{mod}_metrics_vs_{axis}.png"


#: the name of Fig. 2's file (the O–M modality, as the paper)
FIG2_NAME = figure_name("O-M")


#: file name -> caption
FIGURES = {
    FIG2_NAME: "Paper Fig. 2: a collapsing metric (chordal, 2-norm) and overlap for random O–M pairs, against D "
    "(one line per ρ) and against ρ (one line per D); median and 5–95 percentiles; overlap's expectation ρ "
    "dashed.",
    **{figure_name(m, a): f"Paper Fig. {n}: the seven normalised Grassmannian metrics of §4.1 for random "
       f"{MODALITY_WORDS[m].split(': ')[1]} against {'D' if a == 'd' else 'ρ = k/D'}; median and 5–95 percentiles."
       for (m, a), n in FIGURE_OF.items()},
}

_LABEL = {
    "geodesic": r"$\overline{\mathrm{dist}}_{g}$",
    "chordal_2": r"$\overline{\mathrm{dist}}_{c,2}$",
    "chordal_f": r"$\overline{\mathrm{dist}}_{c,F}$",
    "projection_2": r"$\overline{\mathrm{dist}}_{p,2}$",
    "projection_f": r"$\overline{\mathrm{dist}}_{p,F}$",
    "fubini_study": r"$\overline{\mathrm{dist}}_{a}$",
    "overlap": "overlap",
}


def band(samples: np.ndarray):
    """(median, p5, p95) of a 1-D sample array."""
    p5, p50, p95 = np.percentile(np.asarray(samples, dtype=float), [5, 50, 95])
    return p50, p5, p95


def _band_lines(ax, xs, groups, samples, label, metric: str):
    """One line per group: the median of ``samples(group, x)`` over ``xs`` with its 5–95 band."""
    for grp in groups:
        stats = np.array([band(samples(grp, x)) for x in xs])
        (line,) = ax.plot(xs, stats[:, 0], marker=".", label=label(grp))
        ax.fill_between(xs, stats[:, 1], stats[:, 2], color=line.get_color(), alpha=0.25, lw=0)
    ax.set_ylabel(_LABEL.get(metric, metric))
    ax.set_ylim(-0.02, 1.02)


def plot_vs_d(ax, result, modality: str, metric: str, rhos=None, dims=None):
    """Median and 5–95 band of ``metric`` against D, one line per ρ."""
    g = result.grid
    rhos = g.rhos_vs_d if rhos is None else rhos
    dims = g.dims_vs_d if dims is None else dims
    _band_lines(ax, dims, rhos, lambda rho, d: result.metric(modality, d, rho, metric),
                lambda rho: f"ρ={rho:g}", metric)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("D")


def plot_vs_rho(ax, result, modality: str, metric: str, dims=None, rhos=None):
    """Median and 5–95 band of ``metric`` against ρ, one line per D."""
    g = result.grid
    dims = g.dims_vs_rho if dims is None else dims
    rhos = g.rhos_vs_rho if rhos is None else rhos
    _band_lines(ax, rhos, dims, lambda d, r: result.metric(modality, d, r, metric),
                lambda d: f"D={d}", metric)
    ax.set_xlabel("ρ = k/D")


def _title(metric: str) -> str:
    """``"geodesic  dist_g"``: the metric in words and as the paper writes it."""
    words, symbol = METRIC_NAMES.get(metric, metric), _LABEL.get(metric, metric)
    return words if symbol == words else f"{words}  {symbol}"


def _caption(result, modality: str, axis: str | None = None) -> str:
    """Modality in words, the grid's D and ρ of the panels, T, seed, and "quick grid"."""
    g = result.grid
    parts = [MODALITY_WORDS.get(modality, modality)]
    if axis in (None, "d"):
        parts.append(f"D = {g.dims_vs_d[0]}–{g.dims_vs_d[-1]} at ρ = {', '.join(f'{r:g}' for r in g.rhos_vs_d)}")
    if axis in (None, "rho"):
        parts.append(f"ρ = {g.rhos_vs_rho[0]:g}–{g.rhos_vs_rho[-1]:g} at D = {', '.join(map(str, g.dims_vs_rho))}")
    parts.append(f"k = max(1, round(ρD)) · median and 5–95 % of T = {result.samples} pairs · seed {result.seed}")
    if g.dims_vs_d[-1] < 2048:
        parts.append("quick grid (--quick)")
    return " · ".join(parts)


def figure_metrics(result, modality: str, axis: str, path):
    """One panel per metric for ``modality`` against ``axis`` ('d' or 'rho'); Figs 8–13."""
    if axis not in ("d", "rho"):
        raise ValueError(f"axis={axis!r} must be 'd' or 'rho'")
    plt = pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.6), layout="constrained")
    for ax, metric in zip(axes.flat, gm.METRICS):
        (plot_vs_d if axis == "d" else plot_vs_rho)(ax, result, modality, metric)
        ax.set_title(_title(metric), fontsize=10)
        ax.grid(True, alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("normalised similarity\n(1 = same span)")
    axes.flat[0].legend(fontsize=8)
    axes.flat[-1].axis("off")
    num = FIGURE_OF.get((modality, axis))
    what = "D" if axis == "d" else "ρ = k/D"
    finish(fig, f"Fig. {num}: normalised Grassmannian metrics of random {modality} pairs against {what}",
           _caption(result, modality, axis))
    return save_figure(fig, Path(path), plt, dpi=DPI)


def figure2(result, path, modality: str = "O-M"):
    """Paper Fig. 2: chordal_2 (collapsing) and overlap, against D and against ρ."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.6), layout="constrained")
    for row, metric in enumerate(("chordal_2", "overlap")):
        plot_vs_d(axes[row, 0], result, modality, metric)
        plot_vs_rho(axes[row, 1], result, modality, metric)
    for rho in result.grid.rhos_vs_d:
        axes[1, 0].axhline(rho, color="k", ls="--", lw=0.7)
    r = np.array(result.grid.rhos_vs_rho)
    axes[1, 1].plot(r, r, "k--", lw=0.7, label="E[overlap] = ρ")
    for ax in axes.flat:
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
    for ax, metric in zip(axes[:, 0], ("chordal_2", "overlap")):
        ax.set_ylabel(_title(metric))
    finish(fig, f"Fig. 2: a collapsing metric (chordal, 2-norm) and overlap, random {modality} pairs",
           _caption(result, modality))
    return save_figure(fig, Path(path), plt, dpi=DPI)


def write_figures(result, out_dir) -> dict:
    """Write Fig. 2 and Figs. 8–13 (those whose modality was run) into ``out_dir``; returns {name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    mods = result.modalities
    fig2_mod = "O-M" if "O-M" in mods else mods[0]
    paths[figure_name(fig2_mod)] = figure2(result, out / figure_name(fig2_mod), modality=fig2_mod)
    for (mod, axis), num in sorted(FIGURE_OF.items(), key=lambda kv: kv[1]):
        if mod in mods:
            name = figure_name(mod, axis)
            paths[name] = figure_metrics(result, mod, axis, out / name)
    return paths
