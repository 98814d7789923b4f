"""How a run's numbers become ``results.json``, the console summary and the figures: two reports.

* :mod:`.comparison` — problems with exact Hessians (small D, mnist16):
  exact and sketched side by side, every checkpoint evaluated on the whole
  data (paper §6.1, Figs. 1 left, 14–17);
* :mod:`.sketch_only` — every other problem: the sketched spectrum and
  overlap, checkpoints evaluated on the Hessian samples (paper §6.2, Figs. 3–4).

Both offer the same five names: ``BASIS_COLUMNS`` (eigenvectors the report
needs in memory), ``checkpoint_metrics``, ``assemble``, ``make_figures``,
``print_summary``.
"""
from . import comparison, sketch_only

__all__ = ["for_problem", "comparison", "sketch_only"]


def for_problem(problem):
    """The report of ``problem``: :mod:`.comparison` when it has exact steps, else :mod:`.sketch_only`."""
    return comparison if problem.exact_steps else sketch_only
