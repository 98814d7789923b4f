"""The outputs of the synthetic study: the paper's Table 2 and the files of a run.

* :func:`table2` — means at D = ``table_d`` per metric and ρ (paper
  orientation: one row per metric, one column per ρ).
* :func:`write_outputs` — ``results.json`` (seed, grid, every cell's summary,
  Table 2 ours and the paper's), ``samples.npz`` (all samples),
  ``table2.csv`` / ``table2.md`` (O–O, with the paper's values beside ours
  at D = 2048) and ``table2_<modality>.csv``, and the figures
  (:mod:`overlap_experiments.figures.synthetic`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import sketchla as sk

from ..figures.synthetic import write_figures
from ..paper_values import PAPER_TABLE2, TABLE2_RHOS
from .study import METRICS, MODALITIES, SyntheticResult

__all__ = ["table2", "write_outputs"]


def table2(result: SyntheticResult, modality: str = "O-O", d: int | None = None, rhos=None) -> dict:
    """Means at D = ``d`` (default ``grid.table_d``) per metric and ρ.

    Returns ``{"d": d, "rhos": [...], "modality": ..., "rows": {metric: [mean per ρ]}}``
    — the paper's Table 2 orientation (one row per metric, one column per ρ).
    """
    d = result.grid.table_d if d is None else d
    rhos = result.grid.table_rhos if rhos is None else tuple(rhos)
    rows = {m: [float(np.mean(result.metric(modality, d, r, m))) for r in rhos] for m in METRICS}
    return {"d": d, "rhos": list(rhos), "modality": modality, "rows": rows}


def _table_csv(tab: dict) -> str:
    lines = ["metric," + ",".join(f"{r:g}" for r in tab["rhos"])]
    for m, vals in tab["rows"].items():
        lines.append(m + "," + ",".join(f"{v:.6g}" for v in vals))
    return "\n".join(lines) + "\n"


def _table_md(tab: dict, paper: bool) -> str:
    head = f"Means over T samples at D = {tab['d']}, modality {tab['modality']} (normalised, 1 = identical)\n\n"
    cols = [f"ρ={r:g}" for r in tab["rhos"]]
    lines = ["| metric | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m, vals in tab["rows"].items():
        cells = []
        for j, v in enumerate(vals):
            c = f"{v:.5f}"
            if paper and m in PAPER_TABLE2 and tab["rhos"][j] in TABLE2_RHOS:
                c += f" ({PAPER_TABLE2[m][TABLE2_RHOS.index(tab['rhos'][j])]:.5g})"
            cells.append(c)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    note = "\n\nIn parentheses: the paper's Table 2.\n" if paper else "\n"
    return head + "\n".join(lines) + note


def write_outputs(result: SyntheticResult, out_dir, *, figures: bool = True, extra: dict | None = None) -> dict:
    """Write results.json, samples.npz, table2.csv/.md (O–O; plus per-modality
    ``table2_<mod>.csv``) and the figures into ``out_dir``; returns {name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    tables = {}
    for mod in result.modalities:
        tab = table2(result, mod)
        tables[mod] = tab
        tag = mod.replace("-", "")
        p = out / f"table2_{tag}.csv"
        p.write_text(_table_csv(tab))
        paths[f"table2_{tag}.csv"] = p
    main_mod = "O-O" if "O-O" in tables else result.modalities[0]
    paper = main_mod == "O-O" and result.grid.table_d == 2048
    (out / "table2.csv").write_text(_table_csv(tables[main_mod]))
    (out / "table2.md").write_text(
        "\n".join(_table_md(tables[m], paper and m == main_mod) for m in result.modalities)
    )
    paths["table2.csv"] = out / "table2.csv"
    paths["table2.md"] = out / "table2.md"

    np.savez_compressed(
        out / "samples.npz",
        **{f"{mod}_d{d}_k{k}": v for (mod, d, k), v in result.values.items()},
        metrics=np.array(METRICS),
    )
    paths["samples.npz"] = out / "samples.npz"
    doc = {
        "experiment": "synthetic Grassmannian study (paper Alg. 3, Appendix A.4, Table 2)",
        "seed": result.seed,
        "samples": result.samples,
        "grid": result.grid.as_dict(),
        "modalities": list(result.modalities),
        "metrics": list(METRICS),
        "k_rule": "k = max(1, round(rho * d))",
        "normalization": "similarity 1 - dist/max_dist (sketchla.grassmann.normalized); overlap as is",
        "seeding": "numpy SeedSequence(seed, spawn_key=(d, k, modality_index, t)), modality_index in "
        + str(list(MODALITIES)),
        "sketchla_version": sk.__version__,
        "elapsed_s": result.elapsed_s,
        "table2": tables,
        "paper_table2": {"rhos": list(TABLE2_RHOS), "d": 2048, "modality": "O-O", "rows": PAPER_TABLE2},
        "summaries": result.summaries(),
    }
    if extra:
        doc.update(extra)
    (out / "results.json").write_text(json.dumps(doc, indent=1))
    paths["results.json"] = out / "results.json"
    if figures:
        paths.update(write_figures(result, out))
    return paths
