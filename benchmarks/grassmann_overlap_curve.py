"""Overlap curves (paper Eq. 3 for every k = 1..n) from a Zarr eigenbasis.

Compares, each in its own subprocess so the peak RSS values don't mix:

* ``curve_zarr``     — ``gm.overlap_curve(order, Q_zarr)``: one gather of the
                       n needed rows, then O(n²) cumulative sums;
* ``baseline_load``  — the paper's way: load the whole D×n basis into RAM, then
                       ``(1/k)·||Q[order[:k], :k]||²_F`` for every k (O(n³));
* ``curve_numpy`` / ``loop_numpy`` — the same two computations on an
                       in-memory basis (time only: one pass vs. a loop over k).

The basis is ``Q = H I_{D,n}`` with a Householder reflection ``H = I − 2vvᵀ``
(exactly orthonormal, dense rows), written to a Zarr store in row blocks.
Prints a table and writes ``benchmarks/out/grassmann_overlap_curve.json``.

    python benchmarks/grassmann_overlap_curve.py            # D = 1,000,000, n = 128 (≈0.5 GB store)
    python benchmarks/grassmann_overlap_curve.py --quick    # D = 100,000,  n = 64
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def write_basis(path, D, n, rows=65536):
    import zarr

    rng = np.random.default_rng(0)
    v = rng.standard_normal(D)
    v /= np.linalg.norm(v)
    z = zarr.create_array(store=path, shape=(D, n), chunks=(rows, n), dtype="float32", overwrite=True)
    for r0 in range(0, D, rows):
        r1 = min(D, r0 + rows)
        blk = -2.0 * np.outer(v[r0:r1], v[:n])
        if r0 < n:
            j = np.arange(r0, min(r1, n))
            blk[j - r0, j] += 1.0
        z[r0:r1] = blk.astype(np.float32)
    order = rng.permutation(D)
    np.save(path + ".order.npy", order)


def loop_curve(order, Q, n):
    """Reference: one Frobenius norm per k (O(n³) in total)."""
    return np.array([np.sum(Q[order[:k], :k].astype(np.float64) ** 2) / k for k in range(1, n + 1)])


def measure(mode, path):
    import zarr

    from sketchla import grassmann as gm

    z = zarr.open_array(path, mode="r")
    order = np.load(path + ".order.npy")
    D, n = z.shape
    t0 = time.perf_counter()
    if mode == "curve_zarr":
        curve = gm.overlap_curve(order, z)
    elif mode == "baseline_load":
        Q = z[...]
        curve = loop_curve(order, Q, n)
    elif mode in ("curve_numpy", "loop_numpy"):
        Q = z[...]
        t0 = time.perf_counter()  # compute time only
        curve = gm.overlap_curve(order, Q) if mode == "curve_numpy" else loop_curve(order, Q, n)
    else:
        raise ValueError(f"mode={mode!r}")
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "seconds": seconds, "peak_rss_mb": rss_mb, "curve": curve.tolist()}))


def run_child(mode, path):
    out = subprocess.run([sys.executable, __file__, "--measure", mode, "--store", path],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--D", type=int, default=1_000_000)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(args.measure, args.store)
        return
    D, n = (100_000, 64) if args.quick else (args.D, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "Q.zarr")
        write_basis(path, D, n)
        res = {m: run_child(m, path) for m in ("baseline_load", "curve_zarr", "loop_numpy", "curve_numpy")}
    err = max(abs(a - b) for a, b in zip(res["curve_zarr"]["curve"], res["baseline_load"]["curve"]))
    base, loop = res["baseline_load"], res["loop_numpy"]
    print(f"D = {D:,}, n = {n}, float32 basis in Zarr ({D * n * 4 / 2**20:.0f} MiB); max |Δcurve| = {err:.2e}")
    print(f"{'mode':<15}{'seconds':>10}{'× baseline':>12}{'peak RSS MiB':>15}{'× baseline':>12}")
    for m, r in res.items():
        ref = loop if m.endswith("numpy") else base
        print(f"{m:<15}{r['seconds']:>10.3f}{r['seconds'] / ref['seconds']:>12.3f}"
              f"{r['peak_rss_mb']:>15.0f}{r['peak_rss_mb'] / ref['peak_rss_mb']:>12.3f}")
    os.makedirs(OUT, exist_ok=True)
    summary = {"D": D, "n": n, "max_abs_diff": err,
               "results": {m: {k: v for k, v in r.items() if k != "curve"} for m, r in res.items()}}
    with open(os.path.join(OUT, "grassmann_overlap_curve.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
