"""The synthetic study of Grassmannian metrics (paper Alg. 3, Appendix A.4, Table 2).

* :mod:`.study` — the grid of (D, ρ, modality) cells, the seeded random
  pairs and :func:`run_study` on Dask (paper Alg. 3);
* :mod:`.tables` — Table 2 and the output files of a run;
* :mod:`.command` — the ``synthetic`` subcommand.
"""
from .command import main
from .study import (
    METRICS, MODALITIES, PAPER_GRID, QUICK_GRID, Grid, SyntheticResult, k_for, run_study, sample_block, sample_pair,
)
from .tables import table2, write_outputs

__all__ = ["MODALITIES", "METRICS", "Grid", "PAPER_GRID", "QUICK_GRID", "SyntheticResult", "k_for", "sample_pair",
           "sample_block", "run_study", "table2", "write_outputs", "main"]
