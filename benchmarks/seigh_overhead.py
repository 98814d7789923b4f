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
of measurement time (target ≤ 10 %).

Table 2: top-k eigenvalue accuracy and wall time of SEIGH vs ``eigsh`` (ARPACK
Lanczos, one matvec at a time) at the same budget of operator applications
(n_I), both against a reference from a converged ``eigsh``; plus SEIGH's own
a-posteriori error estimate (10 extra applications, not counted in the
budget), which says when the sketch is dominated by the spectrum's tail.

    python benchmarks/seigh_overhead.py                  # the setting above
    python benchmarks/seigh_overhead.py --samples 1000   # cheaper HVPs
    python benchmarks/seigh_overhead.py --test-kind rademacher   # Rademacher test matrices
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
from sketchla.operators import RecipeOperator  # noqa: E402

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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", default="256,256,256,10")
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--n-outer", type=int, default=128)
    p.add_argument("--n-inner", type=int, default=256)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--chunk", type=int, default=8)
    p.add_argument("--test-kind", default="gaussian", choices=["gaussian", "rademacher"],
                   help="kind of SEIGH's test matrices (default gaussian)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "seigh_overhead.json"))
    a = p.parse_args(argv)
    if a.quick:
        a.widths, a.samples, a.n_outer, a.n_inner, a.top = "64,64,10", 200, 32, 64, 5
    widths = tuple(int(w) for w in a.widths.split(","))
    local = MLPHessian(widths, a.samples, 0)
    D = local.shape[0]
    op = RecipeOperator(MLPHessian, widths, a.samples, 0, shape=(D, D), dtype="float32", symmetric=True)
    print(f"MLP {widths}, D={D:,}, N={a.samples}; SEIGH n_O={a.n_outer} n_I={a.n_inner}", flush=True)

    with tempfile.TemporaryDirectory(prefix="seigh-overhead-") as tmp:
        t0 = time.perf_counter()
        res = sk.seigh(op, a.n_outer, a.n_inner, seed=0, store=os.path.join(tmp, "run"), client=False,
                       chunk=a.chunk, progress=False, test_kind=a.test_kind)
        t_seigh = time.perf_counter() - t0
        t0 = time.perf_counter()
        res.write_eigenvectors()
        t_qu = time.perf_counter() - t0
        timings = dict(res.store.get_stage("timings"))
        lam_seigh = res.eigenvalues
        est = res.estimate_error(op, 10, client=False, progress=False)
    timings["Q@U"] = t_qu
    other = sum(v for k, v in timings.items() if k != "measure")
    unaccounted = max(t_seigh - sum(v for k, v in timings.items() if k != "Q@U"), 0.0)
    timings["setup/other"] = unaccounted
    other += unaccounted
    overhead = other / timings["measure"]

    lam_eigsh, t_eigsh, n_eigsh, tol_eigsh = _eigsh_budget(local, a.top, a.n_inner, seed=0)

    ref_lin = _Counted(local)
    t0 = time.perf_counter()
    lam_ref = spla.eigsh(ref_lin, k=2 * a.top, which="LM", tol=1e-7, ncv=max(4 * a.top, 40),
                         v0=np.random.default_rng(1).standard_normal(D), return_eigenvectors=False)
    t_ref = time.perf_counter() - t0
    lam_ref = lam_ref[np.argsort(-np.abs(lam_ref))]

    err_seigh = _rel_err(lam_seigh, lam_ref, a.top)
    err_eigsh = _rel_err(lam_eigsh, lam_ref, a.top)

    print(f"\n{'SEIGH stage':<16}{'seconds':>10}{'÷ measure':>12}")
    for k, v in timings.items():
        print(f"{k:<16}{v:>10.2f}{v / timings['measure']:>12.3f}")
    print(f"everything but measurement: {100 * overhead:.1f} % of measurement time (target ≤ 10 %); "
          f"{timings['measure'] / a.n_inner * 1e3:.1f} ms per application")
    print(f"\n{'method':<28}{'applications':>13}{'seconds':>10}{'÷ SEIGH':>9}{'max rel err top-' + str(a.top):>22}")
    print(f"{'SEIGH (n_I applications)':<28}{a.n_inner:>13}{t_seigh + t_qu:>10.1f}{1.0:>9.2f}{np.nanmax(err_seigh):>22.2e}")
    print(f"{'eigsh, same budget':<28}{n_eigsh:>13}{t_eigsh:>10.1f}{t_eigsh / (t_seigh + t_qu):>9.2f}"
          f"{np.nanmax(err_eigsh):>22.2e}")
    print(f"{'eigsh converged (reference)':<28}{ref_lin.count:>13}{t_ref:>10.1f}{t_ref / (t_seigh + t_qu):>9.2f}{'—':>22}")
    print(f"SEIGH a-posteriori estimate: ||A - Â||_F ≈ {est.frobenius:.3g} (||Â||_F = {est.approx_frobenius:.3g}), "
          f"||A - Â||_2 ≤ {est.spectral_bound:.3g} with probability {est.spectral_probability:.10g}; "
          f"top |λ| = {abs(lam_ref[0]):.3g}")

    report = {
        "setting": {"operator": "tanh-MLP Hessian (torch.func HVP)", "widths": widths, "D": D,
                    "n_samples": a.samples, "test_kind": a.test_kind, "n_outer": a.n_outer, "n_inner": a.n_inner, "chunk": a.chunk,
                    "scheduler": "dask threads", "cpu_count": os.cpu_count()},
        "seigh_seconds_per_stage": timings, "overhead_fraction_of_measure": overhead,
        "seigh_seconds": t_seigh + t_qu, "eigsh_budget_seconds": t_eigsh, "eigsh_budget_applications": n_eigsh, "eigsh_budget_tol": tol_eigsh,
        "eigsh_reference_seconds": t_ref, "eigsh_reference_applications": ref_lin.count,
        "top": a.top, "reference_eigenvalues": lam_ref[: a.top].tolist(),
        "seigh_eigenvalues": np.asarray(lam_seigh[: a.top]).tolist(),
        "eigsh_budget_eigenvalues": np.asarray(lam_eigsh[: a.top]).tolist(),
        "seigh_error_estimate": {"frobenius": est.frobenius, "approx_frobenius": est.approx_frobenius,
                                 "spectral_bound": est.spectral_bound,
                                 "spectral_probability": est.spectral_probability,
                                 "numerical_rank": est.numerical_rank},
        "seconds_per_application": timings["measure"] / a.n_inner,
        "seigh_rel_err": err_seigh.tolist(), "eigsh_budget_rel_err": err_eigsh.tolist(),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    write_report(a.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
