"""SEIGH overhead over its measurements, and SEIGH vs ``scipy.sparse.linalg.eigsh`` (issue 5).

Setting (the "measurements cost like HVPs" of the issue): the operator is the
Hessian of a tanh MLP 256-256-256-10 (D = 134,154 parameters) on N synthetic
samples (``benchmarks/_mlp_hessian.py``), each application a real vmapped
forward-over-reverse HVP in torch. SEIGH runs with n_O = 128, n_I = 256 on
Dask's threaded scheduler (2 threads), store on local disk.

What decides the overhead is the cost of one application relative to D: the
linear algebra costs O(D·n_O·(n_O + 2·n_I)) whatever the operator, an HVP
about 4 passes of N samples. An MLP does ~1 flop per parameter per sample, so
its HVPs are cheap for their D; the paper's convnets do 10²–10³ (ResNet-18:
~1.8 GFLOP per 224² image for 11.7M parameters), so their HVPs cost far more
per D than this MLP's at any N used here. The default N = 5000 is the paper's
largest Hessian sample (ImageNet); ``--samples 1000`` shows the cheap end.

Table 1: seconds per SEIGH stage and everything-but-measurement as a fraction
of measurement time (target ≤ 10 %), medians of ``--repeats`` SEIGH runs per
test-matrix kind (default: "gaussian" and the fast "signs"), interleaved. The measurement stage also
generates Ω (D × n_I) in the tasks that apply the operator; the table gives
the time to generate Ω alone and the overhead counting that as overhead too.
Module imports on a process's first decomposition and the operator's build
and first application are timed before the runs and not counted.

Table 2: top-k eigenvalue accuracy and wall time of SEIGH vs ``eigsh`` (ARPACK
Lanczos, one matvec at a time) at the same budget of operator applications
(n_I), both against a reference from a converged ``eigsh``; plus SEIGH's own
a-posteriori error estimate (10 extra applications, not counted in the
budget), which says when the sketch is dominated by the spectrum's tail.

    python benchmarks/seigh_overhead.py                  # the setting above
    python benchmarks/seigh_overhead.py --samples 1000   # cheaper HVPs
    python benchmarks/seigh_overhead.py --test-kinds gaussian   # one kind only
    python benchmarks/seigh_overhead.py --quick          # small net, n_O = 32, n_I = 64
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse.linalg as spla

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_report  # noqa: E402
import sketchla as sk  # noqa: E402

from _mlp_hessian import MLPHessian  # noqa: E402


class _Counted(spla.LinearOperator):
    """The HVP operator as a SciPy LinearOperator (float64 in/out) that counts applications."""

    def __init__(self, op):
        super().__init__(np.float64, op.shape)
        self.op, self.count = op, 0

    def _matvec(self, x):
        return self._matmat(np.asarray(x).reshape(-1, 1)).ravel()

    def _matmat(self, X):
        self.count += X.shape[1]
        return self.op.matmat(X.astype(np.float32)).astype(np.float64)


def _eigsh_budget(op, k, budget, seed):
    """``eigsh`` held to ``budget`` applications; returns (λ by |λ|, seconds, applications used).

    ARPACK returns only converged Ritz values, so a budget cap cannot be
    imposed by ``maxiter`` alone. ``eigsh`` is run with ``ncv`` vectors and
    ``maxiter=1`` (``2·ncv − k + 1`` applications: one cycle and one implicit
    restart), ``ncv = (budget + k − 1) // 2``, and a tolerance loosened until
    the ``k`` values count as converged; the values are then scored against the
    reference like SEIGH's.
    """
    v0 = np.random.default_rng(seed).standard_normal(op.shape[0])
    ncv = max(k + 2, (budget + k - 1) // 2)
    for tol in (1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0):
        lin = _Counted(op)
        t0 = time.perf_counter()
        try:
            lam = spla.eigsh(lin, k=k, which="LM", ncv=ncv, maxiter=1, tol=tol, v0=v0,
                             return_eigenvectors=False)
        except spla.ArpackNoConvergence:
            continue
        dt = time.perf_counter() - t0
        return np.asarray(lam)[np.argsort(-np.abs(lam))], dt, lin.count, tol
    return np.full(k, np.nan), float("nan"), lin.count, float("nan")


def _rel_err(est, ref, k):
    """Relative errors of the top-k sets, paired by signed value (Weyl); NaN where missing."""
    est = np.sort(np.asarray(est)[:k])
    ref_k = np.sort(np.asarray(ref)[:k])
    if est.size < k:
        return np.full(k, np.nan)
    return np.abs(est - ref_k) / np.abs(ref_k)


def _run_seigh(op, a, kind, tmp, rep):
    """One SEIGH run with ``kind`` test matrices; its stage times, eigenvalues and error estimate."""
    t0 = time.perf_counter()
    res = sk.seigh(op, a.n_outer, a.n_inner, seed=0, store=os.path.join(tmp, f"{kind}-{rep}"), client=False,
                   chunk=a.chunk, progress=False, test_kind=kind)
    t_seigh = time.perf_counter() - t0
    t0 = time.perf_counter()
    res.write_eigenvectors()
    t_qu = time.perf_counter() - t0
    timings = res.timings
    timings["Q@U"] = t_qu
    timings["setup/other"] = max(t_seigh - sum(v for k, v in timings.items() if k != "Q@U"), 0.0)
    est = res.estimate_error(op, 10, client=False, progress=False)
    # Ω (D × n_I) is generated inside the measurement stage, by the tasks that apply the
    # operator; generating it once more alone bounds that share of "measure".
    omega = sk.TestMatrix((op.shape[0], a.n_inner), seed=0, name="omega", kind=kind)
    t0 = time.perf_counter()
    omega.to_dask(row_block=sk.random.TILE_ROWS).sum().compute(scheduler="threads")
    t_gen = time.perf_counter() - t0
    other = sum(v for k, v in timings.items() if k != "measure")
    return {
        "kind": kind, "seconds_per_stage": timings, "seconds": t_seigh + t_qu,
        "overhead_fraction_of_measure": other / timings["measure"],
        "omega_generation_seconds": t_gen,
        "overhead_fraction_of_operator_time": (other + t_gen) / (timings["measure"] - t_gen),
        "seconds_per_application": timings["measure"] / a.n_inner,
        "eigenvalues": np.asarray(res.eigenvalues), "estimate": est,
    }


def _median_run(reps):
    """Per-stage medians (and median overhead fractions) over repeats of one kind.

    The eigenvalues and error estimate are those of the first repeat: every
    repeat computes the same numbers (same seed), only the times differ.
    """
    med = dict(reps[0])
    med["seconds_per_stage"] = {st: float(np.median([r["seconds_per_stage"][st] for r in reps]))
                                for st in reps[0]["seconds_per_stage"]}
    for key in ("seconds", "overhead_fraction_of_measure", "omega_generation_seconds",
                "overhead_fraction_of_operator_time", "seconds_per_application"):
        med[key] = float(np.median([r[key] for r in reps]))
    med["overhead_fraction_of_measure_each"] = [r["overhead_fraction_of_measure"] for r in reps]
    return med


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", default="256,256,256,10")
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--n-outer", type=int, default=128)
    p.add_argument("--n-inner", type=int, default=256)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--chunk", type=int, default=8)
    p.add_argument("--test-kinds", default="gaussian,signs",
                   help=f"comma-separated kinds of SEIGH's test matrices, one SEIGH run each, "
                        f"from {', '.join(sk.random.KINDS)} (default gaussian,signs)")
    p.add_argument("--repeats", type=int, default=3,
                   help="SEIGH runs per kind (interleaved); the tables give medians (default 3)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "seigh_overhead.json"))
    a = p.parse_args(argv)
    kinds = [k.strip() for k in a.test_kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in sk.random.KINDS]
    if bad or not kinds:
        p.error(f"--test-kinds: {bad or 'none given'}; choose from {', '.join(sk.random.KINDS)}")
    if a.repeats < 1:
        p.error("--repeats must be at least 1")
    if a.quick:
        a.widths, a.samples, a.n_outer, a.n_inner, a.top = "64,64,10", 200, 32, 64, 5
    widths = tuple(int(w) for w in a.widths.split(","))
    local = MLPHessian(widths, a.samples, 0)
    D = local.shape[0]
    op = sk.RecipeOperator(MLPHessian, widths, a.samples, 0, shape=(D, D), dtype="float32", symmetric=True)
    print(f"MLP {widths}, D={D:,}, N={a.samples}; SEIGH n_O={a.n_outer} n_I={a.n_inner}", flush=True)

    # One-off module imports (sketchla's lazy submodules, distributed) happen on a
    # process's first decomposition; they are timed here and not counted as overhead.
    t0 = time.perf_counter()
    import distributed  # noqa: F401
    import sketchla.decompositions  # noqa: F401
    t_import = time.perf_counter() - t0
    # Build the operator of this process and apply it once (torch's first vmapped HVP
    # traces), so the first SEIGH run's measurement does not pay for it.
    t0 = time.perf_counter()
    op.matmat(np.ones((D, a.chunk), dtype=np.float32))
    t_warm = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="seigh-overhead-") as tmp:
        # kinds interleaved within each repeat, so slow phases of a shared machine hit both
        all_runs = [_run_seigh(op, a, kind, tmp, rep) for rep in range(a.repeats) for kind in kinds]
    runs = [_median_run([r for r in all_runs if r["kind"] == kind]) for kind in kinds]

    lam_eigsh, t_eigsh, n_eigsh, tol_eigsh = _eigsh_budget(local, a.top, a.n_inner, seed=0)

    ref_lin = _Counted(local)
    t0 = time.perf_counter()
    lam_ref = spla.eigsh(ref_lin, k=2 * a.top, which="LM", tol=1e-7, ncv=max(4 * a.top, 40),
                         v0=np.random.default_rng(1).standard_normal(D), return_eigenvectors=False)
    t_ref = time.perf_counter() - t0
    lam_ref = lam_ref[np.argsort(-np.abs(lam_ref))]
    err_eigsh = _rel_err(lam_eigsh, lam_ref, a.top)
    for r in runs:
        r["rel_err"] = _rel_err(r["eigenvalues"], lam_ref, a.top)

    stages = list(runs[0]["seconds_per_stage"])
    print(f"\nTable 1: seconds per SEIGH stage, median of {a.repeats} interleaved runs per test-matrix kind")
    print(f"{'stage':<34}" + "".join(f"{r['kind']:>12}" for r in runs))
    for st in stages:
        print(f"{st:<34}" + "".join(f"{r['seconds_per_stage'][st]:>12.2f}" for r in runs))
    rows = [("ms per application (measure / n_I)", lambda r: f"{1e3 * r['seconds_per_application']:.1f}"),
            ("everything but measure ÷ measure", lambda r: f"{100 * r['overhead_fraction_of_measure']:.1f} %"),
            ("… in each run (min–max)", lambda r: "{:.1f}–{:.1f}".format(
                100 * min(r["overhead_fraction_of_measure_each"]), 100 * max(r["overhead_fraction_of_measure_each"]))),
            ("Ω generation alone (s)", lambda r: f"{r['omega_generation_seconds']:.2f}"),
            ("… counting Ω generation as overhead", lambda r: f"{100 * r['overhead_fraction_of_operator_time']:.1f} %")]
    for label, fmt in rows:
        print(f"{label:<34}" + "".join(f"{fmt(r):>12}" for r in runs))
    print(f"target ≤ 10 %; not counted, before the runs: imports {t_import:.2f} s, "
          f"operator build + first application {t_warm:.2f} s")

    base = runs[0]["seconds"]
    print(f"\nTable 2: top-{a.top} eigenvalues against a converged eigsh; time ÷ SEIGH ({runs[0]['kind']})")
    print(f"{'method':<30}{'applications':>13}{'seconds':>10}{'÷ SEIGH':>9}{'max rel err':>14}")
    for r in runs:
        print(f"{'SEIGH, ' + r['kind']:<30}{a.n_inner:>13}{r['seconds']:>10.1f}{r['seconds'] / base:>9.2f}"
              f"{np.nanmax(r['rel_err']):>14.2e}")
    print(f"{'eigsh, same budget':<30}{n_eigsh:>13}{t_eigsh:>10.1f}{t_eigsh / base:>9.2f}{np.nanmax(err_eigsh):>14.2e}")
    print(f"{'eigsh converged (reference)':<30}{ref_lin.count:>13}{t_ref:>10.1f}{t_ref / base:>9.2f}{'—':>14}")
    for r in runs:
        est = r["estimate"]
        print(f"SEIGH ({r['kind']}) a-posteriori estimate: ||A - Â||_F ≈ {est.frobenius:.3g} "
              f"(||Â||_F = {est.approx_frobenius:.3g}), ||A - Â||_2 ≤ {est.spectral_bound:.3g} with probability "
              f"{est.spectral_probability:.10g}")
    print(f"top |λ| = {abs(lam_ref[0]):.3g}")

    report = {
        "setting": {"operator": "tanh-MLP Hessian (torch.func HVP)", "widths": widths, "D": D,
                    "n_samples": a.samples, "n_outer": a.n_outer, "n_inner": a.n_inner, "chunk": a.chunk,
                    "repeats": a.repeats,
                    "scheduler": "dask threads", "cpu_count": os.cpu_count()},
        "import_seconds_not_counted": t_import, "operator_warmup_seconds_not_counted": t_warm,
        "seigh": [{
            "test_kind": r["kind"], "seconds_per_stage": r["seconds_per_stage"], "seconds": r["seconds"],
            "overhead_fraction_of_measure": r["overhead_fraction_of_measure"],
            "overhead_fraction_of_measure_each_run": r["overhead_fraction_of_measure_each"],
            "omega_generation_seconds": r["omega_generation_seconds"],
            "overhead_fraction_with_generation": r["overhead_fraction_of_operator_time"],
            "seconds_per_application": r["seconds_per_application"],
            "eigenvalues": r["eigenvalues"][: a.top].tolist(), "rel_err": r["rel_err"].tolist(),
            "error_estimate": {"frobenius": r["estimate"].frobenius,
                               "approx_frobenius": r["estimate"].approx_frobenius,
                               "spectral_bound": r["estimate"].spectral_bound,
                               "spectral_probability": r["estimate"].spectral_probability,
                               "numerical_rank": r["estimate"].numerical_rank},
        } for r in runs],
        "eigsh_budget_seconds": t_eigsh, "eigsh_budget_applications": n_eigsh, "eigsh_budget_tol": tol_eigsh,
        "eigsh_reference_seconds": t_ref, "eigsh_reference_applications": ref_lin.count,
        "top": a.top, "reference_eigenvalues": lam_ref[: a.top].tolist(),
        "eigsh_budget_eigenvalues": np.asarray(lam_eigsh[: a.top]).tolist(),
        "eigsh_budget_rel_err": err_eigsh.tolist(),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    write_report(a.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
