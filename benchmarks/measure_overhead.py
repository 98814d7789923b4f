"""Overhead of sketchla.measure over a plain in-memory product.

Baseline (same run): ``A @ Omega`` with Omega generated in memory by the same
TestMatrix. Each configuration runs in its own subprocess so peak RSS values
do not mix. Prints a table and writes benchmarks/out/measure_overhead.json.

    python benchmarks/measure_overhead.py [--D 200000] [--n 64]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def _one(cfg):
    import numpy as np
    import scipy.sparse as sp

    from sketchla import TestMatrix, measure
    from sketchla.store import RunStore

    D, n = cfg["D"], cfg["n"]
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(D), 10)
    A = sp.csr_array((rng.standard_normal(10 * D).astype(np.float32), (rows, rng.integers(0, D, 10 * D))),
                     shape=(D, D))
    om = TestMatrix((D, n), seed=0, name="Omega")
    t0 = time.perf_counter()
    if cfg["chunk"] == 0:
        Y = A @ om.toarray()
        checksum = float(np.abs(Y).sum())
    else:
        with tempfile.TemporaryDirectory() as d:
            st = RunStore.open(os.path.join(d, "run"), {"seed": 0})
            Y = measure(A, om, st, "Y", chunk=cfg["chunk"], client=cfg["client"], progress=False)
            checksum = float(np.abs(Y[:]).sum())
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": dt, "peak_rss_mib": rss, "checksum": checksum}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--D", type=int, default=200_000)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        return _one(json.loads(a.one))
    cfgs = [dict(label="baseline A@Omega (in memory)", chunk=0, client=None)]
    for client in ("sync", "threads"):
        for chunk in (1, 8, 64):
            cfgs.append(dict(label=f"measure {client} chunk={chunk}", chunk=chunk, client=client))
    rows = []
    for cfg in cfgs:
        cfg.update(D=a.D, n=a.n)
        out = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)],
                             capture_output=True, text=True, check=True)
        rows.append({**cfg, **json.loads(out.stdout.strip().splitlines()[-1])})
    base = rows[0]["seconds"]
    print(f"D={a.D} n={a.n} (sparse, 10 nnz/row, float32)")
    print(f"{'configuration':34s} {'seconds':>9s} {'ratio':>7s} {'peak RSS MiB':>13s}")
    for r in rows:
        r["ratio_to_baseline"] = r["seconds"] / base
        print(f"{r['label']:34s} {r['seconds']:9.3f} {r['ratio_to_baseline']:7.2f} {r['peak_rss_mib']:13.1f}")
    os.makedirs(os.path.join(os.path.dirname(__file__), "out"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "out", "measure_overhead.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
