"""Table 2 of the synthetic study against the paper's (Appendix A.5)."""
import csv

import pytest

from overlap_experiments import synthetic as syn
from overlap_experiments.paper_values import PAPER_TABLE2, TABLE2_RHOS


@pytest.mark.slow  # 6 samples of 5 cells at D = 2048 (~3 s)
def test_table2_matches_paper_at_D2048(tmp_path):
    """Our O–O means at D = 2048 against the paper's Table 2.

    Few samples (T = 6) keep this fast; at D = 2048 the spread of every
    non-collapsing metric is tiny, so the tolerances below would still catch a
    wrong normalisation (e.g. projection_f without √k, or geodesic over π/2).
    """
    grid = syn.Grid(dims_vs_d=(2048,), rhos_vs_d=(0.4,), dims_vs_rho=(2048,), rhos_vs_rho=(0.4,),
                    table_d=2048, table_rhos=TABLE2_RHOS)
    res = syn.run_study(seed=0, samples=6, grid=grid, modalities=("O-O",))
    paths = syn.write_outputs(res, tmp_path, figures=False)
    with open(paths["table2.csv"]) as f:
        rows = list(csv.reader(f))
    # paper orientation: one row per metric, one column per ρ
    assert rows[0] == ["metric"] + [f"{r:g}" for r in TABLE2_RHOS]
    assert [r[0] for r in rows[1:]] == list(syn.METRICS)
    ours = {r[0]: [float(v) for v in r[1:]] for r in rows[1:]}
    for j, rho in enumerate(TABLE2_RHOS):
        # overlap equals ρ (= k/D up to rounding of k) closely
        assert ours["overlap"][j] == pytest.approx(rho, rel=0.12 if rho < 0.05 else 0.02)
        assert ours["overlap"][j] == pytest.approx(PAPER_TABLE2["overlap"][j], rel=0.12 if rho < 0.05 else 0.02)
        for m in ("geodesic", "chordal_f", "projection_f"):  # non-collapsing
            assert ours[m][j] == pytest.approx(PAPER_TABLE2[m][j], rel=0.05 if rho < 0.05 else 0.02), (m, rho)
        for m in ("chordal_2", "projection_2", "fubini_study"):  # collapsing: ≈ 0
            assert abs(ours[m][j] - PAPER_TABLE2[m][j]) < 2.5e-3, (m, rho)
    assert max(ours["fubini_study"]) < 1e-9
    md = paths["table2.md"].read_text()
    assert "(0.36536)" in md  # paper's values quoted beside ours
