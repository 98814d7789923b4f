"""Figures 6 (train split) and 7 (test split) of paper appendix A.2: overlap proxies vs k.

Drawn from the ``proxies.json`` dict of the ``proxies`` subcommand
(:mod:`overlap_experiments.proxies.study`; redraw without recomputing:
``proxy_figures(json.load(open(p)), out)``). Each figure has one column per
training step; the top row shows the normalised GGN subtrace ξ_k (Eq. 7) and
the normalised H² subtrace, the bottom row the SAM measure ζ_{λ,k} (Eq. 8)
for three λ; both rows also show the exact overlap and the uniform baseline
k/D (dashed), on log-log axes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import finish, plain_log, pyplot, save_figure, steps_text

__all__ = ["proxy_figures", "FIGURES"]

#: file name -> caption
FIGURES = {
    "fig06_proxies_train.png": "Paper Fig. 6: overlap proxies on H_train vs k — normalised GGN and H² subtraces "
    "(Eq. 7, top) and the SAM measure ζ for three λ (Eq. 8, bottom) — beside the exact overlap and k/D.",
    "fig07_proxies_test.png": "Paper Fig. 7: the overlap proxies of Fig. 6 on H_test.",
}


def proxy_figures(doc: dict, out_dir) -> list[str]:
    """Draw ``fig06_proxies_train.png`` / ``fig07_proxies_test.png`` (the splits ``doc`` has) into ``out_dir``.

    ``doc`` is the ``proxies.json`` dict: ``curves[split][step]`` holds ``overlap`` (k_max,), ``ggn`` and
    ``h2`` (D,) and ``sam`` ``{λ: (D,)}``; also ``D``, ``lams``, ``problem``, ``data_source``,
    ``hessian_samples_per_class``, ``quick``. Returns the PNG paths.
    """
    plt = pyplot()
    D = int(doc["D"])
    paths = []
    k = np.arange(1, D + 1)
    for split, fig_no in (("train", 6), ("test", 7)):
        by = doc["curves"].get(split)
        if not by:
            continue
        steps = sorted(by, key=int)
        fig, axes = plt.subplots(2, len(steps), figsize=(max(4.4 * len(steps), 7), 8), squeeze=False, sharey="row",
                                 layout="constrained")
        for j, s in enumerate(steps):
            c = by[s]
            ko = np.arange(1, len(c["overlap"]) + 1)
            for row, ax in enumerate(axes[:, j]):
                ax.loglog(k, k / D, "k--", lw=1, label="chance k/D")
                ax.loglog(ko, c["overlap"], color="C3", lw=1.5, label=f"overlap (exact, k ≤ {len(ko)})")
                if row == 0:
                    ax.loglog(k, c["ggn"], color="C0", label="ξ_k: GGN subtrace (Eq. 7)")
                    ax.loglog(k, c["h2"], color="C2", label="H² subtrace")
                else:
                    for i, lam in enumerate(doc["lams"]):
                        ax.loglog(k, c["sam"][str(lam)], color=f"C{4 + i}", label=f"ζ (Eq. 8), λ = {lam:g}")
                ax.set_xlabel("k (top-k parameters by magnitude)")
                plain_log(ax, "x")
                ax.grid(True, which="major", alpha=0.3)
            axes[0, j].set_title(f"step {s}", fontsize=10)
        axes[0, 0].set_ylabel("normalised subtrace, overlap")
        axes[1, 0].set_ylabel("normalised SAM measure, overlap")
        axes[0, -1].legend(fontsize=8, loc="lower right")
        axes[1, -1].legend(fontsize=8, loc="lower right")
        finish(fig, f"Fig. {fig_no}: overlap proxies vs k, H_{split}", _caption(doc, split, steps))
        paths.append(str(save_figure(fig, Path(out_dir) / f"fig{fig_no:02d}_proxies_{split}.png", plt)))
    return paths


def _caption(doc: dict, split: str, steps) -> str:
    p = doc["problem"]
    n = doc["hessian_samples_per_class"] * p["num_classes"]
    parts = [f"{p['title']}, {p['model_name'].split(' (')[0]} (D = {doc['D']:,}), "
             f"{doc.get('data_source', {}).get('name', '?')} data",
             f"H_{split} (N = {n})", f"k = 1–{doc['D']:,}", steps_text(steps),
             f"eigenpairs by {doc.get('eigensolver', '?')}"]
    if doc.get("quick"):
        parts.append("quick run (--quick)")
    return " · ".join(parts)
