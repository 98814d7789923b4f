"""What every figure shares: matplotlib on Agg, the file-naming scheme, titles with a caption, PNG writing.

File names
----------
Every subcommand names its figures ``figNN_<what>.png``: ``NN`` is the number
of the paper's figure it reproduces, two digits (``fig01_left_…``,
``fig01_right_…`` for the two halves of Fig. 1), ``<what>`` says what is
plotted against what (``overlap_vs_step``, ``metrics_oo_vs_d``). No name
holds a run parameter (k, steps): those are in the figure's caption line.

Titles
------
:func:`finish` puts a two-line title inside the canvas: the paper figure and
what it shows, then a caption line naming the problem (or study), the data,
the Hessian splits, k and the step range (:func:`caption`), and "quick run"
for ``--quick`` runs. Figures are laid out with matplotlib's constrained
layout and saved with a tight bounding box, so no text is clipped.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

__all__ = ["pyplot", "save_figure", "finish", "caption", "problem_text", "steps_text", "steps_axis", "plain_log",
           "k_axes", "SPLIT_STYLE", "DPI", "METRIC_NAMES"]

#: line style of the Hessian splits (H_train solid, H_test dashed)
SPLIT_STYLE = {"train": "-", "test": "--"}
#: resolution of every PNG
DPI = 110
#: the Grassmannian metrics of paper §4.1 in words (panel titles, legends)
METRIC_NAMES = {"geodesic": "geodesic", "chordal_2": "chordal (2-norm)", "chordal_f": "chordal (Frobenius)",
                "projection_2": "projection (2-norm)", "projection_f": "projection (Frobenius)",
                "fubini_study": "Fubini–Study", "overlap": "overlap"}


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only, no display)."""
    import matplotlib  # matplotlib: optional dependency (the experiments extra), only when drawing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def problem_text(res: dict) -> str:
    """``"16×16 MNIST, tanh-MLP (D = 7,030), digits data"`` from a run's results dict; ``SYNTHETIC data``
    when the images were generated."""
    p = res["problem"]
    model = p["model_name"].split(" (")[0]
    data = "SYNTHETIC data" if res.get("synthetic") else f"{res.get('data_source', {}).get('name', '?')} data"
    return f"{p['title']}, {model} (D = {res['n_params']:,}), {data}"


def steps_text(steps) -> str:
    """``"step 100"`` or ``"steps 0–1000 (7 analysed)"``."""
    steps = sorted({int(s) for s in steps})
    if not steps:
        return "no steps"
    if len(steps) == 1:
        return f"step {steps[0]}"
    return f"steps {steps[0]}–{steps[-1]} ({len(steps)} analysed)"


def caption(res: dict, *, splits=None, k=None, steps=None, extra: str | None = None) -> str:
    """The caption line of a run's figure: problem and data, ``H_split`` s, ``k``, the step range,
    ``extra``, the SEIGH passes of a ``--passes`` run, and "quick run" when the run was ``--quick``."""
    parts = [problem_text(res)]
    if splits:
        parts.append(", ".join(f"H_{s}" for s in splits) + f" (N = {_sample_sizes(res, splits)})")
    if k is not None:
        parts.append(k if isinstance(k, str) else f"k = {k}")
    if steps is not None:
        parts.append(steps if isinstance(steps, str) else steps_text(steps))
    if extra:
        parts.append(extra)
    if res.get("config", {}).get("passes"):
        parts.append(f"SEIGH: block Krylov, {res['config']['passes']} pass(es) (--passes)")
    if res.get("config", {}).get("quick"):
        parts.append("quick run (--quick)")
    return " · ".join(parts)


def _sample_sizes(res: dict, splits) -> str:
    ns = {int(res.get("hessian_samples", {}).get(s, {}).get("n", 0)) for s in splits}
    return "/".join(str(n) for n in sorted(ns)) if ns else "?"


def steps_axis(ax, steps, label: str | None = "training step (symlog axis)") -> None:
    """Training steps 0, 10, …, 1000 on the x axis: linear up to the first positive step, logarithmic
    beyond; a tick at every step when there are at most 8 of them, plain numbers (no powers of ten)."""
    from matplotlib.ticker import FuncFormatter, NullLocator  # matplotlib: optional, only when drawing

    steps = sorted({int(s) for s in steps})
    positive = [s for s in steps if s > 0]
    first = positive[0] if positive else 1
    ax.set_xscale("symlog", linthresh=first, linscale=0.5)
    ax.set_xlim(-0.05 * first, positive[-1] * 1.4 if positive else 1)
    if len(steps) <= 8:
        ax.set_xticks(steps)
        ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(_plain))
    if label is not None:
        ax.set_xlabel(label)


def k_axes(ax, split: str) -> None:
    """A panel of curves over k = 1..n for ``H_split``: log-log, plain k ticks, a grid."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("k (top-k mask and eigenspace)")
    plain_log(ax, "x")
    ax.set_title(f"H_{split}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)


def plain_log(ax, axis: str = "x") -> None:
    """Plain numbers on a log axis (``20``, not ``2×10¹``); minor ticks labelled only when the axis
    spans less than a decade (else they would crowd)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter  # matplotlib: optional, only when drawing

    a = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    a.set_major_formatter(FuncFormatter(_plain))
    a.set_minor_formatter(FuncFormatter(_plain) if 0 < lo and hi / lo < 10 else NullFormatter())


def _plain(x, _pos=None) -> str:
    return f"{x:g}"


def finish(fig, title: str, caption_line: str) -> None:
    """Give ``fig`` its title: ``title`` (the paper figure, what it shows) over ``caption_line``, the
    caption broken at its `` · `` separators into lines that fit the figure's width."""
    fig.suptitle("\n".join([title, *_wrap(caption_line, int(fig.get_figwidth() * 13))]), fontsize=10)


def _wrap(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` characters, broken at `` · `` (or spaces, for longer parts)."""
    lines: list[str] = []
    for part in text.split(" · "):
        for piece in textwrap.wrap(part, max(width, 20)) or [""]:
            if lines and len(lines[-1]) + 3 + len(piece) <= width:
                lines[-1] += " · " + piece
            else:
                lines.append(piece)
    return lines


def save_figure(fig, path: Path, plt, dpi: int = DPI) -> Path:
    """Write ``fig`` to ``path`` as PNG (tight bounding box: nothing clipped), close it, return ``path``."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.15, facecolor="white")
    plt.close(fig)
    return Path(path)
