"""Figures 6 (train split) and 7 (test split) of paper appendix A.2: overlap proxies vs k.

Each figure has one column per training step; the top row shows the
normalised GGN subtrace ξ_k (Eq. 7) and the normalised H² subtrace, the
bottom row the SAM measure ζ_{λ,k} (Eq. 8) for three λ; both rows also show
the exact overlap and the uniform baseline k/D (dashed), on log-log axes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import pyplot, save_figure

__all__ = ["proxy_figures"]


def proxy_figures(curves: dict, D: int, lams, out_dir, source: str = "") -> list[str]:
    """Draw ``fig06_proxies_train.png`` / ``fig07_proxies_test.png`` (the splits present) into ``out_dir``.

    ``curves[split][step]`` holds ``overlap`` (k_max,), ``ggn`` and ``h2`` (D,) and ``sam`` ``{λ: (D,)}``
    (:mod:`overlap_experiments.proxies`); returns the PNG paths.
    """
    plt = pyplot()
    paths = []
    k = np.arange(1, D + 1)
    for split, fig_no in (("train", 6), ("test", 7)):
        by = curves.get(split)
        if not by:
            continue
        steps = sorted(by)
        fig, axes = plt.subplots(2, len(steps), figsize=(4.2 * len(steps), 7.2), squeeze=False, sharey="row")
        for j, s in enumerate(steps):
            c = by[s]
            ko = np.arange(1, len(c["overlap"]) + 1)
            for row, ax in enumerate(axes[:, j]):
                ax.loglog(k, k / D, "k--", lw=1, label="k/D")
                ax.loglog(ko, c["overlap"], color="C3", lw=1.5, label="overlap (exact)")
                if row == 0:
                    ax.loglog(k, c["ggn"], color="C0", label="ξ_k: GGN subtrace")
                    ax.loglog(k, c["h2"], color="C2", label="H² subtrace")
                else:
                    for i, lam in enumerate(lams):
                        ax.loglog(k, c["sam"][lam], color=f"C{4 + i}", label=f"ζ, λ={lam:g}")
                ax.set_xlabel("k (top-k parameters by magnitude)")
                ax.grid(True, which="major", alpha=0.3)
            axes[0, j].set_title(f"step {s}")
        axes[0, 0].set_ylabel("normalised subtrace / overlap")
        axes[1, 0].set_ylabel("normalised SAM delta / overlap")
        axes[0, -1].legend(fontsize=8, loc="lower right")
        axes[1, -1].legend(fontsize=8, loc="lower right")
        fig.suptitle(f"Fig. {fig_no}: overlap proxies, {split} split ({source})")
        paths.append(str(save_figure(fig, Path(out_dir) / f"fig{fig_no:02d}_proxies_{split}.png", plt)))
    return paths
