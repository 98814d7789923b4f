"""Out-of-core TSQR: sketchla.tsqr → Zarr vs dask.array.linalg.tsqr → Zarr vs numpy.linalg.qr.

Issue 3's benchmark. A is D × n float32 (default 2,000,000 × 256, plus D/2 and
2·D) stored uncompressed in Zarr (64 MiB row chunks). Every configuration
runs in its own subprocess, which reports its own peak RSS (``ru_maxrss`` of
itself and of its reaped children, i.e. Dask worker processes), so the
figures do not mix. Measured per configuration:

* wall time of the QR with Q written to a new uncompressed Zarr array
  (numpy: in memory, A loaded first — the load is not timed);
* peak RSS (MiB) of the process (and of the largest worker process);
* ``||QᵀQ − I||_max`` and ``||QR − A||_max / ||A||_max`` (streamed, float64,
  after the timing).

Configurations: sketchla.tsqr on Dask's threaded scheduler at D/2, D, 2D
(and at D with ``method="householder"``: the Householder Q for every block);
dask.array.linalg.tsqr + ``store`` at D/2 and D (2D with ``--dask-2d``), with
Dask's defaults and once at D with one BLAS thread per task (the setting
sketchla uses); numpy.linalg.qr at D only (guarded: ~36 bytes a number, as
float32 input is factorised in float64; measured at D/2 instead, or skipped,
if the machine lacks the memory); sketchla.tsqr on a LocalCluster of 1 and 2
worker processes (one thread each) at D (strong scaling). Timings are
reported as ratios to dask's tsqr at the same D, measured in the same run.
Prints a table, writes benchmarks/out/tsqr_scaling.json.

    python benchmarks/tsqr_scaling.py            # full run (~20 min on 2 busy cores)
    python benchmarks/tsqr_scaling.py --quick    # smoke run, small D
    python benchmarks/tsqr_scaling.py --skip-numpy --D 1000000
"""
import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHUNK_BYTES = 64 * 2**20


# ----------------------------------------------------------------------------- helpers (child)
def _chunk_rows(n, itemsize=4):
    return max(1, CHUNK_BYTES // (n * itemsize))


def _peak_rss_mib():
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kib / 1024, kids_kib / 1024


def _new_out(path, D, n, rows):
    import zarr

    return zarr.create_array(store=path, shape=(D, n), chunks=(rows, n), dtype="float32",
                             compressors=None, fill_value=0.0, overwrite=True)


def _errors(Q, R, A, rows):
    """Streamed float64 ``||QᵀQ − I||_max`` and ``||QR − A||_max / ||A||_max``."""
    import numpy as np

    D, n = A.shape
    G = np.zeros((n, n))
    rec = amax = 0.0
    R64 = np.asarray(R, dtype=np.float64)
    for s in range(0, D, rows):
        q = np.asarray(Q[s:s + rows], dtype=np.float64)
        a = np.asarray(A[s:s + rows], dtype=np.float64)
        G += q.T @ q
        rec = max(rec, float(np.abs(q @ R64 - a).max()))
        amax = max(amax, float(np.abs(a).max()))
    return float(np.abs(G - np.eye(n)).max()), rec / amax


def _run_one(cfg):
    """Run one configuration in this (child) process; print one JSON line."""
    import logging

    import numpy as np
    import zarr

    A = zarr.open_array(cfg["a_path"], mode="r")
    D, n = A.shape
    rows = A.chunks[0]  # out gets A's chunking (sketchla aligns its blocks to out's chunks)
    out_path = os.path.join(cfg["workdir"], f"q-{cfg['key']}.zarr")
    res = {}
    if cfg["method"] == "numpy":
        if cfg.get("mem_limit"):
            resource.setrlimit(resource.RLIMIT_DATA, (cfg["mem_limit"], cfg["mem_limit"]))
        a = A[:]
        t0 = time.perf_counter()
        try:
            Q, R = np.linalg.qr(a)
        except MemoryError:
            print(json.dumps({"skipped": "MemoryError under the memory guard"}))
            return
        res["seconds"] = time.perf_counter() - t0
    elif cfg["method"] == "sketchla":
        import sketchla as sk

        log = []

        class _Keep(logging.Handler):
            def emit(self, record):
                log.append(record.getMessage())

        lg = logging.getLogger("sketchla.linalg.tsqr")
        lg.setLevel(logging.INFO)
        lg.addHandler(_Keep())
        out = _new_out(out_path, D, n, rows)
        kw = dict(method=cfg.get("qr_method", "auto"), block_rows=cfg.get("block_rows"))
        if cfg["workers"]:
            from distributed import Client, LocalCluster

            with LocalCluster(n_workers=cfg["workers"], threads_per_worker=1, processes=True,
                              dashboard_address=":0", silence_logs=40) as cl, \
                    Client(cl, set_as_default=False) as client:
                client.run(lambda: __import__("sketchla.linalg"))  # warm the imports
                t0 = time.perf_counter()
                Q, R = sk.tsqr(A, out=out, client=client, **kw)
                res["seconds"] = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            Q, R = sk.tsqr(A, out=out, **kw)
            res["seconds"] = time.perf_counter() - t0
        res["log"] = log[-1] if log else ""
    elif cfg["method"] == "dask":
        import dask
        import dask.array as da

        if cfg.get("blas1"):
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
        Ad = da.from_zarr(A)
        t0 = time.perf_counter()
        Qd, Rd = da.linalg.tsqr(Ad)
        Q = _new_out(out_path, D, n, Qd.chunks[0][0])
        store = da.store(Qd, Q, lock=False, compute=False)
        _, R = dask.compute(store, Rd)
        res["seconds"] = time.perf_counter() - t0
    else:  # pragma: no cover
        raise ValueError(cfg["method"])
    # peak RSS of the computation itself, before the (float64, streamed) checks
    res["peak_rss_mib"], res["peak_rss_children_mib"] = _peak_rss_mib()
    res["orth_err"], res["recon_err"] = _errors(Q, R, A, rows // 4)
    shutil.rmtree(out_path, ignore_errors=True)
    print(json.dumps(res))


def _make_a(cfg):
    """Write a seeded Gaussian D×n float32 matrix to Zarr, block by block."""
    import numpy as np
    import zarr

    D, n = cfg["D"], cfg["n"]
    rows = cfg.get("block_rows") or _chunk_rows(n)
    A = zarr.create_array(store=cfg["a_path"], shape=(D, n), chunks=(rows, n), dtype="float32",
                          compressors=None, fill_value=0.0, overwrite=True)
    for i, s in enumerate(range(0, D, rows)):
        e = min(s + rows, D)
        rng = np.random.default_rng([cfg["seed"], i])
        A[s:e] = rng.standard_normal((e - s, n), dtype=np.float32)
    print(json.dumps({"ok": True}))


# ----------------------------------------------------------------------------- driver
def _child(payload, env=None, timeout=None):
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", json.dumps(payload)],
                              capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": " | ".join(tail) or f"exit code {proc.returncode}"}
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": "no output"}


def _mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover
        pass
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--D", type=int, default=2_000_000, help="rows of the middle size")
    ap.add_argument("--n", type=int, default=256, help="columns")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: D=200,000, n=128, 16384-row blocks")
    ap.add_argument("--block-rows", type=int, default=None,
                    help="sketchla block height (default: the library's 64 MiB blocks)")
    ap.add_argument("--skip-numpy", action="store_true", help="skip numpy.linalg.qr in memory")
    ap.add_argument("--skip-dask", action="store_true", help="skip dask.array.linalg.tsqr")
    ap.add_argument("--dask-2d", action="store_true",
                    help="also time dask's tsqr at 2·D (slow: off by default on shared machines)")
    ap.add_argument("--workdir", default=None, help="where the Zarr arrays go (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1800,
                    help="seconds allowed per configuration (default 1800)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        cfg = json.loads(a.one)
        return _make_a(cfg) if cfg["method"] == "make" else _run_one(cfg)
    if a.quick:
        a.D, a.n = 200_000, 128
        a.block_rows = a.block_rows or 16384
    D, n = a.D, a.n
    sizes = [D // 2, D, 2 * D]
    workdir = a.workdir or tempfile.mkdtemp(prefix="tsqr-scaling-")
    os.makedirs(workdir, exist_ok=True)
    a_paths = {d: os.path.join(workdir, f"A-{d}x{n}.zarr") for d in sizes}
    try:
        for d in sizes:
            t0 = time.perf_counter()
            r = _child({"method": "make", "D": d, "n": n, "seed": a.seed, "a_path": a_paths[d],
                        "block_rows": a.block_rows})
            if "error" in r:
                raise SystemExit(f"could not create A ({d}×{n}): {r['error']}")
            print(f"# A {d}×{n} float32 written in {time.perf_counter() - t0:.1f} s", flush=True)

        cfgs = []
        for d in sizes:
            cfgs.append(dict(label="sketchla.tsqr threads", method="sketchla", D=d, workers=0))
            if not a.skip_dask and (d <= D or a.dask_2d):
                cfgs.append(dict(label="dask tsqr threads", method="dask", D=d))
        cfgs.append(dict(label="sketchla.tsqr householder-only", method="sketchla", D=D, workers=0,
                         qr_method="householder"))
        if not a.skip_dask:
            cfgs.append(dict(label="dask tsqr threads, 1 BLAS thr", method="dask", D=D, blas1=True))
        if not a.skip_numpy:
            cfgs.append(dict(label="numpy.linalg.qr in memory", method="numpy", D=D))
        for w in (1, 2):
            cfgs.append(dict(label=f"sketchla.tsqr {w} worker proc", method="sketchla", D=D, workers=w))
        for c in cfgs:
            c["block_rows"] = a.block_rows

        rows = []
        for i, cfg in enumerate(cfgs):
            cfg.update(n=n, key=i, workdir=workdir, a_path=a_paths[cfg["D"]])
            if cfg["method"] == "numpy":
                avail = _mem_available()
                # f32 A, its f64 copy, LAPACK's f64 work array and Q, f32 Q: ~36 bytes a number
                fits = [d for d in sizes[:2][::-1]
                        if avail is None or d * n * 36 + 3 * 2**30 <= avail]
                if not fits:
                    msg = (f"needs ~{cfg['D'] * n * 36 / 2**30:.1f} GiB (+3 GiB margin), "
                           f"{avail / 2**30:.1f} GiB available")
                    print(f"# skip numpy: {msg}", flush=True)
                    rows.append({**cfg, "skipped": msg})
                    continue
                if fits[0] != cfg["D"]:
                    print(f"# numpy at D={cfg['D']} would need ~{cfg['D'] * n * 36 / 2**30:.1f} GiB; "
                          f"{avail / 2**30:.1f} GiB available: measured at D={fits[0]} instead",
                          flush=True)
                    cfg.update(D=fits[0], a_path=a_paths[fits[0]])
                if avail is not None:
                    cfg["mem_limit"] = int(avail - 2 * 2**30)
            t0 = time.perf_counter()
            res = _child(cfg, timeout=a.timeout)
            print(f"# {cfg['label']} D={cfg['D']}: {res} ({time.perf_counter() - t0:.0f} s incl. "
                  "start-up and checks)", flush=True)
            rows.append({**cfg, **res})
    finally:
        if a.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    base = {r["D"]: r["seconds"] for r in rows
            if r["method"] == "dask" and not r.get("blas1") and "seconds" in r}
    base_rss = {r["D"]: r["peak_rss_mib"] for r in rows
                if r["method"] == "dask" and not r.get("blas1") and "seconds" in r}
    one_worker = next((r["seconds"] for r in rows if r.get("workers") == 1 and "seconds" in r), None)
    for r in rows:
        if "seconds" not in r:
            continue
        r["peak_rss_any_process_mib"] = max(r["peak_rss_mib"], r["peak_rss_children_mib"])
        if r["D"] in base:
            r["speedup_vs_dask_tsqr"] = base[r["D"]] / r["seconds"]
            r["rss_ratio_vs_dask_tsqr"] = r["peak_rss_any_process_mib"] / base_rss[r["D"]]
        if r.get("workers") and one_worker:
            r["speedup_vs_1_worker"] = one_worker / r["seconds"]
    sk_rss = {r["D"]: r["peak_rss_any_process_mib"] for r in rows
              if r["method"] == "sketchla" and not r.get("workers") and r.get("qr_method") is None
              and "seconds" in r}

    print(f"\nA: D×{n} float32 in Zarr (uncompressed, {a.block_rows or _chunk_rows(n)}-row chunks); "
          "Q → new Zarr array with the same chunks; "
          f"{os.cpu_count()} cores")
    hdr = (f"{'configuration':32s} {'D':>9s} {'seconds':>8s} {'vs dask':>8s} {'RSS MiB':>8s} "
           f"{'RSS/dask':>8s} {'||QtQ-I||':>10s} {'||QR-A||':>10s}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        if "seconds" not in r:
            print(f"{r['label']:32s} {r['D']:9d}  skipped: {r.get('skipped') or r.get('error')}")
            continue
        sp = f"{r['speedup_vs_dask_tsqr']:7.2f}x" if "speedup_vs_dask_tsqr" in r else f"{'':8s}"
        rr = f"{r['rss_ratio_vs_dask_tsqr']:8.2f}" if "rss_ratio_vs_dask_tsqr" in r else f"{'':8s}"
        print(f"{r['label']:32s} {r['D']:9d} {r['seconds']:8.1f} {sp} {r['peak_rss_any_process_mib']:8.0f} "
              f"{rr} {r['orth_err']:10.2e} {r['recon_err']:10.2e}")
    summary = {}
    sk = next((r for r in rows if r["method"] == "sketchla" and r["D"] == D and not r.get("workers")
               and r.get("qr_method") is None and "seconds" in r), None)
    if sk is not None:
        def _at(pred):
            return next((r for r in rows if pred(r) and "seconds" in r), None)

        dask1 = _at(lambda r: r.get("blas1"))
        hh = _at(lambda r: r.get("qr_method") == "householder")
        npy = _at(lambda r: r["method"] == "numpy")
        sk_npy = _at(lambda r: npy is not None and r["method"] == "sketchla" and r["D"] == npy["D"]
                     and not r.get("workers") and r.get("qr_method") is None)
        summary = {
            "seconds_at_D": sk["seconds"],
            "speedup_vs_dask_tsqr_at_D": sk.get("speedup_vs_dask_tsqr"),
            "speedup_vs_dask_tsqr_1_blas_thread_at_D": dask1 and dask1["seconds"] / sk["seconds"],
            "speedup_vs_numpy_qr": npy and sk_npy and npy["seconds"] / sk_npy["seconds"],
            "numpy_qr_D": npy and npy["D"],
            "householder_only_seconds_at_D": hh and hh["seconds"],
            "peak_rss_mib_at_D": sk["peak_rss_any_process_mib"],
            "peak_rss_mib_by_D": {str(d): v for d, v in sorted(sk_rss.items())},
            "rss_growth_D_to_2D": sk_rss.get(2 * D, float("nan")) / sk_rss[D],
            "orth_err_at_D": sk["orth_err"],
            "targets": {"speedup_vs_dask_tsqr": 7.0, "peak_rss_mib": 1024, "orth_err": 1e-5},
        }
        sp = summary["speedup_vs_dask_tsqr_at_D"]
        print(f"\nsketchla.tsqr at D={D}: {sk['seconds']:.1f} s; "
              + (f"{sp:.2f}x dask tsqr (target >= 7); " if sp else "")
              + (f"{summary['speedup_vs_dask_tsqr_1_blas_thread_at_D']:.2f}x dask tsqr with 1 BLAS "
                 "thread per task; " if dask1 else "")
              + (f"{summary['speedup_vs_numpy_qr']:.2f}x numpy.linalg.qr (at D={npy['D']}); "
                 if summary["speedup_vs_numpy_qr"] else "")
              + f"peak RSS {summary['peak_rss_mib_at_D']:.0f} MiB (target <= 1024), "
              f"RSS(2D)/RSS(D) = {summary['rss_growth_D_to_2D']:.2f} (target ~1), "
              f"||QtQ-I||_max = {summary['orth_err_at_D']:.1e} (target <= 1e-5)")
        for r in rows:
            if r.get("log"):
                print(f"  [{r['label']}, D={r['D']}] {r['log']}")
    scal = [r for r in rows if r.get("workers") and "seconds" in r]
    if len(scal) == 2:
        print(f"strong scaling (processes, 1 thread each): 1 worker {scal[0]['seconds']:.1f} s, "
              f"2 workers {scal[1]['seconds']:.1f} s, speedup {scal[1]['speedup_vs_1_worker']:.2f}x")
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", "tsqr_scaling.json"), "w") as f:
        json.dump({"D": D, "n": n, "quick": a.quick, "cpu_count": os.cpu_count(),
                   "machine": platform.platform(), "rows": rows, "summary": summary}, f, indent=1)
    print(f"\nwrote {os.path.join(HERE, 'out', 'tsqr_scaling.json')}")


if __name__ == "__main__":
    main()
