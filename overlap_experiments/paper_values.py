"""Numbers taken from the paper: its Table 2, the ρ levels and k values its figures show, and what its text
says where it only plots (:data:`PAPER_CLAIMS`, the "paper" column of report.html).

(Table 1 lives with the problems, :mod:`overlap_experiments.problems`.)
"""
from __future__ import annotations

__all__ = ["PAPER_TABLE2", "TABLE2_RHOS", "COLLAPSING_METRICS", "KAPPA_RHOS", "METRIC_RHOS", "SUMMARY_KS", "FIG1_K",
           "FIG16_KS", "PAPER_CLAIMS"]

#: Ratios ρ of the paper's Table 2 (columns) at D = 2048.
TABLE2_RHOS = (0.005, 0.01, 0.05, 0.2, 0.4)
#: Table 2 of the paper (Appendix A.5): O–O means over 50 samples at D = 2048, per normalised metric.
PAPER_TABLE2 = {
    "geodesic": (0.03711, 0.05191, 0.11909, 0.24534, 0.36536),
    "chordal_2": (0.00197, 0.00161, 0.00048, 0.00046, 0.00026),
    "chordal_f": (0.02983, 0.04202, 0.09984, 0.21754, 0.33783),
    "projection_2": (1e-5, 1e-5, 0.0, 0.0, 0.0),
    "projection_f": (0.00248, 0.00479, 0.02513, 0.1057, 0.22527),
    "fubini_study": (0.0, 0.0, 0.0, 0.0, 0.0),
    "overlap": (0.00495, 0.00955, 0.04962, 0.20022, 0.39980),
}

#: the metrics paper §4.2 calls collapsing: ≈ 0 for random pairs at large D (Fig. 2, Table 2)
COLLAPSING_METRICS = ("chordal_2", "projection_2", "fubini_study")

#: ρ levels of κ (Fig. 15) and of the mask IoU matrices (Fig. 16)
KAPPA_RHOS = (0.2, 0.05, 0.01, 0.005)
#: ρ levels of the mask-vs-eigenspace metrics (Fig. 17)
METRIC_RHOS = (0.005, 0.01, 0.05, 0.2)
#: k values summarised in results.json / the console table of the §6.1 run
SUMMARY_KS = (10, 50, 100, 350)
#: k of Fig. 1 (left)
FIG1_K = 350
#: subspace sizes of the eigenspace-stability matrices (Fig. 16)
FIG16_KS = (10, 35, 70, 175)

#: what the paper says about quantities it only plots, quoted or closely paraphrased (report.html's "paper" column)
PAPER_CLAIMS = {
    "overlap_exact": "plot only (Fig. 1 left): above chance; largest shortly after initialization, then decays",
    "overlap_sketched": "plot only (Fig. 1 left): \"a good approximation\" of the exact overlap",
    "exact_vs_sketched": "\"closely tracks the exact overlap\" (§6.1)",
    "ratio_large": "\"at least 10×\" chance for most steps and k (Fig. 4 right)",
    "ratio_resnet": "largest for small k, \"surpassing 10³\" (Fig. 4 right)",
    "proxies": "\"well above chance-level baseline in most of their domain\", below it for small k (App. A.2)",
}
