"""What every figure shares: matplotlib with the Agg backend, PNG writing, line styles per split."""
from __future__ import annotations

from pathlib import Path

__all__ = ["pyplot", "save_figure", "SPLIT_STYLE"]

#: line style of the Hessian splits (H_train solid, H_test dashed)
SPLIT_STYLE = {"train": "-", "test": "--"}


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only, no display)."""
    import matplotlib  # matplotlib: optional dependency (the experiments extra), only when drawing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, plt, dpi: int = 110) -> Path:
    """Lay out ``fig``, write it to ``path`` as PNG, close it and return ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
