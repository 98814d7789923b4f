"""Out-of-core QR: sketchla.tsqr → Zarr (each method) vs dask.array.linalg.tsqr → Zarr vs numpy.linalg.qr,
beside this machine's roofline.

Issues 3 and 18's benchmark. A is D × n float32 (default 2,000,000 × 256, plus D/2 and
2·D) stored uncompressed in Zarr (64 MiB row chunks). Every configuration
runs in its own subprocess, which reports its own peak RSS (``ru_maxrss`` of
itself and of its reaped children, i.e. Dask worker processes), so the
figures do not mix. Measured per configuration:

* wall time of the QR with Q written to a new uncompressed Zarr array
  (numpy: in memory, A loaded first — the load is not timed);
* peak RSS (MiB) of the process (and of the largest worker process);
* ``||QᵀQ − I||_max`` and ``||QR − A||_max / ||A||_max`` (streamed, float64,
  after the timing);
* for sketchla, which algorithm ran and its passes over A (from its log).

Configurations: sketchla.tsqr ``method="auto"`` on Dask's threaded scheduler at D/2, D, 2D,
and at D ``method="cholesky"`` and ``method="householder"`` (the same-run comparison of
the two algorithms); dask.array.linalg.tsqr + ``store`` at D/2 and D (2D with
``--dask-2d``), with Dask's defaults and once at D with one BLAS thread per task (the
setting sketchla uses); numpy.linalg.qr at D only (guarded: ~36 bytes a number, as
float32 input is factorised in float64; measured at D/2 instead, or skipped, if the
machine lacks the memory); sketchla.tsqr on a LocalCluster of 1 and 2 worker processes
(one thread each) at D (strong scaling). The four headline configurations at D (the three
sketchla methods and dask's tsqr) run ``--repeats`` times, interleaved round by round;
their medians are reported. Timings are ratios to dask's tsqr at the same D, measured
in the same run.

Roofline (``benchmarks/_roofline.py``): before the runs, this machine's sequential write
and read bandwidth on the work directory's file system and its GEMM rates (float32 and
float64, as many threads as cores with one BLAS thread each) are measured; each
configuration's time is printed beside its model time (bytes read / read bandwidth +
bytes written / write bandwidth + flops / GEMM rate, with the bytes and flops the code
moves: ``_roofline.qr_flops_bytes``) and the ratio.

Prints a table, writes benchmarks/out/tsqr_scaling.json.

    python benchmarks/tsqr_scaling.py                # full run (~30–60 min on 2 busy cores)
    python benchmarks/tsqr_scaling.py --quick        # smoke run, small D
    python benchmarks/tsqr_scaling.py --skip-numpy --D 1000000 --repeats 1
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
sys.path.insert(0, HERE)
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
        import _roofline
        import sketchla as sk
        import sketchla.linalg  # noqa: F401  (dask, zarr: imported before the timing, as dask's rows do)

        log = _roofline.tsqr_log()
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


def _model(r, ceilings, n, block_rows):
    """Roofline model of one row (``_roofline.model``)."""
    import _roofline

    if r["method"] == "sketchla":
        method, passes, final32, product = _roofline.qr_algorithm(r.get("log", ""))
        r["algorithm"], r["passes_over_A"] = method, passes
        fb = _roofline.qr_flops_bytes(method, r["D"], n, 4, block_rows, passes=passes, final32=final32,
                                      product_solve=product)
    else:
        r["passes_over_A"] = 1 if r["method"] == "dask" else 0
        fb = _roofline.qr_flops_bytes(r["method"], r["D"], n, 4, block_rows)
    if r.get("workers") or r.get("blas1"):
        # other thread layouts than the ceilings were measured with: no model
        return None
    return _roofline.model(ceilings, **fb)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--D", type=int, default=2_000_000, help="rows of the middle size")
    ap.add_argument("--n", type=int, default=256, help="columns")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: D=200,000, n=128, 16384-row blocks, 1 repeat")
    ap.add_argument("--block-rows", type=int, default=None,
                    help="sketchla block height (default: the library's 64 MiB blocks)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each headline configuration at D, interleaved (median reported)")
    ap.add_argument("--skip-numpy", action="store_true", help="skip numpy.linalg.qr in memory")
    ap.add_argument("--skip-dask", action="store_true", help="skip dask.array.linalg.tsqr")
    ap.add_argument("--dask-2d", action="store_true",
                    help="also time dask's tsqr at 2·D (slow: off by default on shared machines)")
    ap.add_argument("--workdir", default=None, help="where the Zarr arrays go (default: a temp dir)")
    ap.add_argument("--roofline-bytes", type=int, default=2**30,
                    help="size of the scratch file the disk bandwidth is measured with")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1800,
                    help="seconds allowed per configuration (default 1800)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        cfg = json.loads(a.one)
        return _make_a(cfg) if cfg["method"] == "make" else _run_one(cfg)
    if a.quick:
        a.D, a.n, a.repeats = 200_000, 128, 1
        a.block_rows = a.block_rows or 16384
    if a.repeats < 1:
        ap.error("--repeats must be at least 1")
    import _roofline

    D, n = a.D, a.n
    sizes = [D // 2, D, 2 * D]
    workdir = a.workdir or tempfile.mkdtemp(prefix="tsqr-scaling-")
    os.makedirs(workdir, exist_ok=True)
    a_paths = {d: os.path.join(workdir, f"A-{d}x{n}.zarr") for d in sizes}
    block_rows = a.block_rows or _chunk_rows(n)
    try:
        ceilings = _roofline.measure_ceilings(workdir, n=n, disk_bytes=a.roofline_bytes, kinds=())
        _roofline.print_ceilings(ceilings)
        for d in sizes:
            t0 = time.perf_counter()
            r = _child({"method": "make", "D": d, "n": n, "seed": a.seed, "a_path": a_paths[d],
                        "block_rows": a.block_rows})
            if "error" in r:
                raise SystemExit(f"could not create A ({d}×{n}): {r['error']}")
            print(f"# A {d}×{n} float32 written in {time.perf_counter() - t0:.1f} s", flush=True)

        headline = [dict(label="sketchla.tsqr auto", method="sketchla", D=D, workers=0),
                    dict(label="sketchla.tsqr cholesky", method="sketchla", D=D, workers=0, qr_method="cholesky"),
                    dict(label="sketchla.tsqr householder", method="sketchla", D=D, workers=0,
                         qr_method="householder")]
        if not a.skip_dask:
            headline.append(dict(label="dask tsqr threads", method="dask", D=D))
        others = []
        for d in (D // 2, 2 * D):
            others.append(dict(label="sketchla.tsqr auto", method="sketchla", D=d, workers=0))
            if not a.skip_dask and (d < D or a.dask_2d):
                others.append(dict(label="dask tsqr threads", method="dask", D=d))
        if not a.skip_dask:
            others.append(dict(label="dask tsqr threads, 1 BLAS thr", method="dask", D=D, blas1=True))
        if not a.skip_numpy:
            others.append(dict(label="numpy.linalg.qr in memory", method="numpy", D=D))
        for w in (1, 2):
            others.append(dict(label=f"sketchla.tsqr auto {w} worker proc", method="sketchla", D=D, workers=w))
        cfgs = headline + others
        for i, c in enumerate(cfgs):
            c.update(block_rows=a.block_rows, n=n, key=i, workdir=workdir, a_path=a_paths[c["D"]])
        schedule = [c for _ in range(a.repeats) for c in headline] + others  # rounds, interleaved

        runs = {c["key"]: [] for c in cfgs}
        skipped = {}
        for cfg in schedule:
            cfg = dict(cfg)
            if cfg["method"] == "numpy":
                avail = _roofline.mem_available()
                # f32 A, its f64 copy, LAPACK's f64 work array and Q, f32 Q: ~36 bytes a number
                fits = [d for d in sizes[:2][::-1]
                        if avail is None or d * n * 36 + 3 * 2**30 <= avail]
                if not fits:
                    msg = (f"needs ~{cfg['D'] * n * 36 / 2**30:.1f} GiB (+3 GiB margin), "
                           f"{avail / 2**30:.1f} GiB available")
                    print(f"# skip numpy: {msg}", flush=True)
                    skipped[cfg["key"]] = msg
                    continue
                if fits[0] != cfg["D"]:
                    print(f"# numpy at D={cfg['D']} would need ~{cfg['D'] * n * 36 / 2**30:.1f} GiB; "
                          f"{avail / 2**30:.1f} GiB available: measured at D={fits[0]} instead",
                          flush=True)
                    cfg.update(D=fits[0], a_path=a_paths[fits[0]])
                    cfgs[cfg["key"]].update(D=fits[0], a_path=a_paths[fits[0]])
                if avail is not None:
                    cfg["mem_limit"] = int(avail - 2 * 2**30)
            t0 = time.perf_counter()
            res = _child(cfg, timeout=a.timeout)
            print(f"# {cfg['label']} D={cfg['D']}: {res} ({time.perf_counter() - t0:.0f} s incl. "
                  "start-up and checks)", flush=True)
            if "seconds" in res:
                runs[cfg["key"]].append(res)
            else:
                skipped[cfg["key"]] = res.get("skipped") or res.get("error")
    finally:
        if a.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    import statistics

    rows = []
    for c in cfgs:
        got = runs[c["key"]]
        if not got:
            rows.append({**c, "skipped": skipped.get(c["key"], "no run")})
            continue
        med = sorted(got, key=lambda r: r["seconds"])[(len(got) - 1) // 2]  # the median run (lower middle)
        row = {**c, **med, "seconds": statistics.median(r["seconds"] for r in got),
               "seconds_all": [r["seconds"] for r in got],
               "peak_rss_mib": max(r["peak_rss_mib"] for r in got),
               "peak_rss_children_mib": max(r["peak_rss_children_mib"] for r in got),
               "orth_err": max(r["orth_err"] for r in got), "recon_err": max(r["recon_err"] for r in got)}
        row["peak_rss_any_process_mib"] = max(row["peak_rss_mib"], row["peak_rss_children_mib"])
        row["roofline"] = _model(row, ceilings, n, block_rows)
        rows.append(row)

    base = {r["D"]: r for r in rows if r["method"] == "dask" and not r.get("blas1") and "seconds" in r}
    one_worker = next((r["seconds"] for r in rows if r.get("workers") == 1 and "seconds" in r), None)
    for r in rows:
        if "seconds" not in r:
            continue
        if r["D"] in base:
            r["speedup_vs_dask_tsqr"] = base[r["D"]]["seconds"] / r["seconds"]
            r["rss_ratio_vs_dask_tsqr"] = r["peak_rss_any_process_mib"] / base[r["D"]]["peak_rss_any_process_mib"]
        if r.get("workers") and one_worker:
            r["speedup_vs_1_worker"] = one_worker / r["seconds"]
        if r.get("roofline"):
            r["seconds_over_model"] = r["seconds"] / r["roofline"]["seconds"]

    print(f"\nA: D×{n} float32 in Zarr (uncompressed, {block_rows}-row chunks); Q → new Zarr array with the same "
          f"chunks; {os.cpu_count()} cores; headline rows: median of {a.repeats} interleaved runs")
    _roofline.print_ceilings(ceilings)
    hdr = (f"{'configuration':34s} {'D':>9s} {'seconds':>8s} {'vs dask':>8s} {'RSS MiB':>8s} {'RSS/dask':>8s} "
           f"{'||QtQ-I||':>10s} {'||QR-A||':>10s} {'passes':>6s} {'GB r/w':>9s} {'model s':>8s} {'t/model':>7s}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        if "seconds" not in r:
            print(f"{r['label']:34s} {r['D']:9d}  skipped: {r.get('skipped')}")
            continue
        sp = f"{r['speedup_vs_dask_tsqr']:7.2f}x" if "speedup_vs_dask_tsqr" in r else f"{'':8s}"
        rr = f"{r['rss_ratio_vs_dask_tsqr']:8.2f}" if "rss_ratio_vs_dask_tsqr" in r else f"{'':8s}"
        m = r.get("roofline")
        io = f"{m['bytes_read'] / 1e9:4.1f}/{m['bytes_written'] / 1e9:<4.1f}" if m else f"{'':9s}"
        mod = f"{m['seconds']:8.1f} {r['seconds_over_model']:7.2f}" if m else f"{'':8s} {'':7s}"
        label = r["label"] + (f" [{r['algorithm']}]" if r.get("algorithm") and r.get("qr_method") is None else "")
        print(f"{label:34s} {r['D']:9d} {r['seconds']:8.1f} {sp} {r['peak_rss_any_process_mib']:8.0f} "
              f"{rr} {r['orth_err']:10.2e} {r['recon_err']:10.2e} {r.get('passes_over_A', ''):>6} {io} {mod}")
    summary = {}

    def _at(pred):
        return next((r for r in rows if "seconds" in r and pred(r)), None)

    sk = _at(lambda r: r["method"] == "sketchla" and r["D"] == D and not r.get("workers") and r.get("qr_method") is None)
    if sk is not None:
        dask1 = _at(lambda r: r.get("blas1"))
        hh = _at(lambda r: r.get("qr_method") == "householder")
        ch = _at(lambda r: r.get("qr_method") == "cholesky")
        npy = _at(lambda r: r["method"] == "numpy")
        sk_npy = _at(lambda r: npy is not None and r["method"] == "sketchla" and r["D"] == npy["D"]
                     and not r.get("workers") and r.get("qr_method") is None)
        sk_rss = {r["D"]: r["peak_rss_any_process_mib"] for r in rows if "seconds" in r
                  and r["method"] == "sketchla" and not r.get("workers") and r.get("qr_method") is None}
        summary = {
            "seconds_at_D": sk["seconds"], "seconds_all_at_D": sk["seconds_all"],
            "algorithm_at_D": sk.get("algorithm"), "passes_over_A_at_D": sk.get("passes_over_A"),
            "speedup_vs_dask_tsqr_at_D": sk.get("speedup_vs_dask_tsqr"),
            "speedup_vs_dask_tsqr_1_blas_thread_at_D": dask1 and dask1["seconds"] / sk["seconds"],
            "speedup_vs_numpy_qr": npy and sk_npy and npy["seconds"] / sk_npy["seconds"],
            "numpy_qr_D": npy and npy["D"],
            "householder_seconds_at_D": hh and hh["seconds"],
            "speedup_vs_householder_at_D": hh and hh["seconds"] / sk["seconds"],
            "cholesky_seconds_at_D": ch and ch["seconds"],
            "seconds_over_model_at_D": sk.get("seconds_over_model"),
            "model_seconds_at_D": sk["roofline"] and sk["roofline"]["seconds"],
            "peak_rss_mib_at_D": sk["peak_rss_any_process_mib"],
            "peak_rss_mib_by_D": {str(d): v for d, v in sorted(sk_rss.items())},
            "rss_growth_D_to_2D": sk_rss.get(2 * D, float("nan")) / sk_rss[D],
            "orth_err_at_D": sk["orth_err"],
            "targets": {"speedup_vs_dask_tsqr": 7.0, "peak_rss_mib": 1024, "orth_err": 1e-6},
        }
        sp = summary["speedup_vs_dask_tsqr_at_D"]
        print(f"\nsketchla.tsqr (auto → {sk.get('algorithm')}, {sk.get('passes_over_A')} passes over A) at D={D}: "
              f"{sk['seconds']:.1f} s (runs {', '.join(f'{t:.1f}' for t in sk['seconds_all'])}); "
              + (f"{sp:.2f}x dask tsqr (target >= 7); " if sp else "")
              + (f"{summary['speedup_vs_householder_at_D']:.2f}x its Householder TSQR; " if hh else "")
              + (f"{summary['speedup_vs_dask_tsqr_1_blas_thread_at_D']:.2f}x dask tsqr with 1 BLAS "
                 "thread per task; " if dask1 else "")
              + (f"{summary['speedup_vs_numpy_qr']:.2f}x numpy.linalg.qr (at D={npy['D']}); "
                 if summary["speedup_vs_numpy_qr"] else "")
              + (f"{summary['seconds_over_model_at_D']:.2f}x its roofline time "
                 f"({summary['model_seconds_at_D']:.1f} s); " if sk.get("roofline") else "")
              + f"peak RSS {summary['peak_rss_mib_at_D']:.0f} MiB (target <= 1024), "
              f"RSS(2D)/RSS(D) = {summary['rss_growth_D_to_2D']:.2f} (target ~1), "
              f"||QtQ-I||_max = {summary['orth_err_at_D']:.1e} (target <= 1e-6)")
        for r in rows:
            if r.get("log"):
                print(f"  [{r['label']}, D={r['D']}] {r['log']}")
    scal = [r for r in rows if r.get("workers") and "seconds" in r]
    if len(scal) == 2:
        print(f"strong scaling (processes, 1 thread each): 1 worker {scal[0]['seconds']:.1f} s, "
              f"2 workers {scal[1]['seconds']:.1f} s, speedup {scal[1]['speedup_vs_1_worker']:.2f}x")
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", "tsqr_scaling.json"), "w") as f:
        json.dump({"D": D, "n": n, "quick": a.quick, "repeats": a.repeats, "cpu_count": os.cpu_count(),
                   "machine": platform.platform(), "ceilings": ceilings, "rows": rows, "summary": summary},
                  f, indent=1)
    print(f"\nwrote {os.path.join(HERE, 'out', 'tsqr_scaling.json')}")


if __name__ == "__main__":
    main()
