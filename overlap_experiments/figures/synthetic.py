"""Figures of the synthetic Grassmannian study (paper Fig. 2 and Figs 8–13).

Lines are medians over the T samples of a cell, shaded bands the 5–95
percentiles, as in the paper. Figures are written as PNG with matplotlib's
Agg backend.

* Fig. 2  — O–M modality; rows chordal_2 (a collapsing metric) and overlap;
  left column against D (one line per ρ), right column against ρ (one line
  per D); the overlap panels also show the expectation ρ (Appendix A.5).
* Figs 8/9   — O–O against D / against ρ, one panel per metric;
* Figs 10/11 — M–M; Figs 12/13 — O–M.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sketchla import grassmann as gm

from .style import pyplot

#: Resolution of the PNG files.
DPI = 110

__all__ = ["band", "plot_vs_d", "plot_vs_rho", "figure_metrics", "figure2", "write_figures", "FIGURE_OF"]

#: (modality, axis) → paper figure number.
FIGURE_OF = {
    ("O-O", "d"): 8,
    ("O-O", "rho"): 9,
    ("M-M", "d"): 10,
    ("M-M", "rho"): 11,
    ("O-M", "d"): 12,
    ("O-M", "rho"): 13,
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


def figure_metrics(result, modality: str, axis: str, path):
    """One panel per metric for ``modality`` against ``axis`` ('d' or 'rho'); Figs 8–13."""
    if axis not in ("d", "rho"):
        raise ValueError(f"axis={axis!r} must be 'd' or 'rho'")
    plt = pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(16, 7), constrained_layout=True)
    for ax, metric in zip(axes.flat, gm.METRICS):
        (plot_vs_d if axis == "d" else plot_vs_rho)(ax, result, modality, metric)
        ax.set_title(_LABEL.get(metric, metric))
    axes.flat[0].legend(fontsize=8)
    axes.flat[-1].axis("off")
    num = FIGURE_OF.get((modality, axis))
    what = "D" if axis == "d" else "ρ = k/D"
    fig.suptitle(
        f"Fig. {num}: normalised Grassmannian metrics, {modality} pairs, against {what} "
        f"(median, 5–95 percentiles, T={result.samples}, seed={result.seed})"
    )
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return Path(path)


def figure2(result, path, modality: str = "O-M"):
    """Paper Fig. 2: chordal_2 (collapsing) and overlap, against D and against ρ."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    for row, metric in enumerate(("chordal_2", "overlap")):
        plot_vs_d(axes[row, 0], result, modality, metric)
        plot_vs_rho(axes[row, 1], result, modality, metric)
    for rho in result.grid.rhos_vs_d:
        axes[1, 0].axhline(rho, color="k", ls="--", lw=0.7)
    r = np.array(result.grid.rhos_vs_rho)
    axes[1, 1].plot(r, r, "k--", lw=0.7, label="E[overlap] = ρ")
    for ax in axes[:, 0]:
        ax.legend(fontsize=7)
    for ax in axes[:, 1]:
        ax.legend(fontsize=7)
    fig.suptitle(f"Fig. 2: {modality} pairs (median, 5–95 percentiles, T={result.samples}, seed={result.seed})")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return Path(path)


def write_figures(result, out_dir) -> dict:
    """Write fig2.png and fig08.png … fig13.png (those whose modality was run)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    mods = result.modalities
    fig2_mod = "O-M" if "O-M" in mods else mods[0]
    paths["fig2.png"] = figure2(result, out / "fig2.png", modality=fig2_mod)
    for (mod, axis), num in sorted(FIGURE_OF.items(), key=lambda kv: kv[1]):
        if mod in mods:
            name = f"fig{num:02d}.png"
            paths[name] = figure_metrics(result, mod, axis, out / name)
    return paths
