"""What issue 16's safety checks cost, as ratios measured in the same run.

A sparse symmetric operator (``D × D``, 8 nonzeros per row, float32 sketch)
gets one SEIGH run into a store on disk. Then, interleaved ``--repeats``
times, with the median of each:

* ``reopen, operator_id`` — ``seigh`` on the finished store with the caller's
  ``operator_id`` (nothing applied: the baseline of a reopen);
* ``reopen, operator check`` — the same call without it: the operator is
  applied to one recorded column and compared with the stored one
  (``sketchla.measurement.verify_operator``);
* ``eigenvectors, raw Zarr`` — ``da.from_zarr(Q) @ U`` computed (what the
  result handed out before, which read missing chunks as zeros);
* ``eigenvectors, checked reads`` — ``result.eigenvectors`` computed (one
  existence check per chunk read, and the temporary-store lifetime).

The check's cost is reported against the full run and against the operator's
application to one column, the checked reads against the raw ones. Prints a
table and writes benchmarks/out/trust_costs.json (peak RSS included).

    python benchmarks/trust_costs.py                # D = 1,000,000, n_O = 32, n_I = 65
    python benchmarks/trust_costs.py --D 20000 --repeats 2
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_report  # noqa: E402
from _synthetic import sparse_matrix  # noqa: E402

import sketchla as sk  # noqa: E402


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--D", type=int, default=1_000_000)
    p.add_argument("--n-outer", type=int, default=32)
    p.add_argument("--n-inner", type=int, default=65)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "trust_costs.json"))
    a = p.parse_args(argv)

    A = sparse_matrix(a.D, per_row=4, seed=0, symmetric=True)
    kw = dict(client="threads", dtype="float32", progress=False)
    with tempfile.TemporaryDirectory(prefix="trust-costs-") as d:
        store = os.path.join(d, "run")
        t_run, res = _timed(lambda: sk.seigh(A, a.n_outer, a.n_inner, store=store, operator_id="A", **kw))
        one = sk.TestMatrix((a.D, 1), seed=0, name="omega").block()
        t_column = min(_timed(lambda: A @ one)[0] for _ in range(a.repeats))
        times = {k: [] for k in ("reopen_operator_id", "reopen_operator_check", "eigenvectors_raw_zarr",
                                 "eigenvectors_checked_reads")}
        U = res.core_U.astype(np.float32)
        for _ in range(a.repeats):  # interleaved: the machine is shared and noisy
            times["reopen_operator_id"].append(
                _timed(lambda: sk.seigh(A, a.n_outer, a.n_inner, store=store, operator_id="A", **kw))[0])
            times["reopen_operator_check"].append(
                _timed(lambda: sk.seigh(A, a.n_outer, a.n_inner, store=store, **kw))[0])
            times["eigenvectors_raw_zarr"].append(_timed(lambda: (da.from_zarr(res.Q) @ U).compute())[0])
            times["eigenvectors_checked_reads"].append(_timed(lambda: res.eigenvectors.compute())[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    check = med["reopen_operator_check"] - med["reopen_operator_id"]
    report = {
        "D": a.D, "n_outer": a.n_outer, "n_inner": a.n_inner, "repeats": a.repeats,
        "seconds_full_run": t_run, "seconds_one_column_application": t_column,
        "seconds_median": med, "seconds_all": times,
        "operator_check_seconds": check,
        "operator_check_over_full_run": check / t_run,
        "operator_check_over_one_column_application": check / t_column if t_column > 0 else None,
        "checked_over_raw_eigenvector_reads": med["eigenvectors_checked_reads"] / med["eigenvectors_raw_zarr"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(f"D = {a.D:,}, n_O = {a.n_outer}, n_I = {a.n_inner}; full run {t_run:.2f} s, "
          f"one column A ω {t_column * 1e3:.1f} ms; medians of {a.repeats}, interleaved")
    print(f"{'what':32s} {'seconds':>9s}")
    for k, v in med.items():
        print(f"{k:32s} {v:9.3f}")
    print(f"operator check: {check:.3f} s = {report['operator_check_over_full_run']:.4f} x the full run "
          f"(= {report['operator_check_over_one_column_application'] or float('nan'):.1f} x one column's application)")
    print(f"checked / raw eigenvector reads: {report['checked_over_raw_eigenvector_reads']:.3f}; "
          f"peak RSS {report['peak_rss_mib']:.0f} MiB")
    write_report(a.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
