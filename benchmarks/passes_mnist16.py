"""Single pass against block Krylov at the same number of HVPs, on the paper's MNIST Hessians (issue 15.4).

Runs ``overlap-experiments run mnist16`` twice on one training run: the
default (paper Table 1: single-pass SEIGH, n_O = 355, n_I = 711 HVPs) and
``--passes 1`` (block Krylov with an exact Rayleigh–Ritz step, block n_O = 355:
710 HVPs). The second run copies the first's checkpoints, samples and exact
analyses (the same Hessians), so only SEIGH differs. For each Hessian with an
exact eigendecomposition the table gives, single pass / q = 1:

* the exact-vs-sketched eigenspace overlap at k = 10, 50, 100, 350
  (``eigenspace_overlap_exact_vs_sketched`` of results.json: ‖V_kᵀ V̂_k‖²_F / k);
* the largest relative error of the top-k |λ| (sorted magnitudes, so that
  ± pairs of nearly equal size are not counted as sign errors);
* the gap of the mask-overlap curves, max and mean over k of
  |overlap_exact(k) − overlap_sketched(k)| (paper Eq. 3, k = 1..355);
* the certificate's ‖H − Ĥ‖_F estimate and the SEIGH seconds of each run.

    python benchmarks/passes_mnist16.py --out results/passes          # both runs, ~4 min on 2 cores
    python benchmarks/passes_mnist16.py --single A --krylov B          # tabulate two finished runs
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

KS = (10, 50, 100, 350)


def _run(out: Path, extra: list[str]) -> None:
    cmd = [sys.executable, "-m", "overlap_experiments.cli", "run", "mnist16", "--out", str(out), "--no-progress",
           *extra]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True)


def _copy_run(src: Path, dst: Path) -> None:
    """The training run, its samples and the exact analyses of ``src`` (not its SEIGH stores or outputs)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("checkpoints", "hessian_samples", "analysis"):
        if (src / name).exists() and not (dst / name).exists():
            shutil.copytree(src / name, dst / name,
                            ignore=shutil.ignore_patterns("sketched_*") if name == "analysis" else None)


def _rel_err(values, exact, k: int) -> float:
    """Largest relative error of the top-k magnitudes (as many as both hold, where k exceeds them)."""
    n = min(k, values.size, exact.size)
    return float(np.max(np.abs(values[:n] - exact[:n]) / exact[:n]))


def compare(single: dict, krylov: dict) -> list[dict]:
    """One row per (split, step) with an exact analysis in both results.json files."""
    rows = []
    for split, by in single["overlap"].items():
        for step, a in by.items():
            b = krylov["overlap"].get(split, {}).get(step, {})
            if "eigenspace_overlap_exact_vs_sketched" not in a or "eigenspace_overlap_exact_vs_sketched" not in b:
                continue
            exact = np.sort(np.abs(a["eigenvalues_exact_top"]))[::-1]
            row = {"split": split, "step": int(step)}
            for name, r in (("single", a), ("krylov", b)):
                sk = np.sort(np.abs(r["eigenvalues_sketched"]))[::-1]
                ex, cur = np.asarray(r["exact"]), np.asarray(r["sketched"])
                gap = np.abs(ex[:cur.size] - cur)
                row[name] = {
                    "eigenspace_overlap": {k: r["eigenspace_overlap_exact_vs_sketched"][str(k)] for k in KS},
                    "max_rel_err_abs_eigenvalues": {k: _rel_err(sk, exact, k) for k in KS},
                    "mask_curve_gap_max": float(gap.max()), "mask_curve_gap_mean": float(gap.mean()),
                    "certificate": r.get("certificate_sketched"),
                }
            rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="folder for both runs (single/ and passes1/)")
    p.add_argument("--single", default=None, help="a finished default run (instead of --out)")
    p.add_argument("--krylov", default=None, help="a finished --passes 1 run of the same training run")
    p.add_argument("--json", default=str(Path(__file__).resolve().parent / "out" / "passes_mnist16.json"))
    a = p.parse_args(argv)
    if a.out:
        single, krylov = Path(a.out) / "single", Path(a.out) / "passes1"
        _run(single, [])
        _copy_run(single, krylov)
        _run(krylov, ["--passes", "1"])
    elif a.single and a.krylov:
        single, krylov = Path(a.single), Path(a.krylov)
    else:
        p.error("give --out, or --single and --krylov")
    res = {n: json.loads((d / "results.json").read_text()) for n, d in (("single", single), ("krylov", krylov))}
    cfg = {n: r["config"] for n, r in res.items()}
    if cfg["krylov"].get("passes") != 1 or cfg["single"].get("passes", 0) != 0:
        p.error("--single must be a single-pass run and --krylov a --passes 1 run")
    rows = compare(res["single"], res["krylov"])
    hvps = {"single": cfg["single"]["n_inner"], "krylov": 2 * cfg["krylov"]["n_outer"]}
    print(f"\nSEIGH on the same Hessians: single pass n_O = {cfg['single']['n_outer']}, n_I = {hvps['single']} HVPs "
          f"vs block Krylov q = 1, n_O = {cfg['krylov']['n_outer']}: {hvps['krylov']} HVPs (each: single / q=1)")
    head = ["split", "step"] + [f"overlap k={k}" for k in KS] + [f"|λ| err k={k}" for k in KS[:3]] + \
        ["curve gap max", "curve gap mean"]
    print(" | ".join(head))
    for r in rows:
        s, b = r["single"], r["krylov"]
        cells = [r["split"], str(r["step"])]
        cells += [f"{s['eigenspace_overlap'][k]:.3f} / {b['eigenspace_overlap'][k]:.3f}" for k in KS]
        cells += [f"{s['max_rel_err_abs_eigenvalues'][k]:.2g} / {b['max_rel_err_abs_eigenvalues'][k]:.2g}"
                  for k in KS[:3]]
        cells += [f"{s['mask_curve_gap_max']:.4f} / {b['mask_curve_gap_max']:.4f}",
                  f"{s['mask_curve_gap_mean']:.5f} / {b['mask_curve_gap_mean']:.5f}"]
        print(" | ".join(cells))
    seconds = {n: r["timings"].get("seigh") or r.get("timings_reused", {}).get("seigh") for n, r in res.items()}
    print(f"SEIGH seconds of all 14 Hessians: single {seconds['single']:.1f}, q=1 {seconds['krylov']:.1f} "
          f"(ratio {seconds['krylov'] / seconds['single']:.2f})")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps({"hvps": hvps, "rows": rows, "seigh_seconds": seconds,
                                        "single": str(single), "krylov": str(krylov)}, indent=1))
    print("wrote", a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
