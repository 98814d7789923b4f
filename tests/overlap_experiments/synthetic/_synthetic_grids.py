"""A grid of the synthetic study small enough for unit tests (D ≤ 64)."""
from overlap_experiments import synthetic as syn

TINY = syn.Grid(
    dims_vs_d=(16, 32, 64),
    rhos_vs_d=(0.4, 0.05),
    dims_vs_rho=(32, 64),
    rhos_vs_rho=(0.05, 0.5, 1.0),
    table_d=64,
    table_rhos=(0.05, 0.4),
)
