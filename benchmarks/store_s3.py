"""Run stores on object storage (issue 21): a SEIGH measurement stage into a local S3
server against local disk, and the number of concurrent writers at which it stops scaling.

A local S3 API (moto's server mode, a subprocess on 127.0.0.1, over HTTP) is
started here. The SEIGH measurement stage ``Y = A Ω`` (``sketchla.measure``
of a cheap sparse operator, so the store's I/O dominates; ±1 test matrices) is
written, each time into a fresh store, to

* local disk (the baseline) and
* ``s3://`` on the local server,

with the threaded scheduler and ``--threads`` tasks at once. Then the same
stage into S3 with 1, 2, 4, ... concurrent writers (Dask threads), as
throughput relative to one writer; it "stops scaling" at the first count
whose throughput is less than ``--gain`` (10 %) above the previous one. Every
configuration is timed ``--repeats`` times, the repeats interleaved over the
configurations (load from elsewhere on the machine spreads over all), and the
best time counts. Timings are seconds and ratios to the baseline of the
same run. Prints a table and writes benchmarks/out/store_s3.json.

moto keeps objects in memory in one Python process, so the figures are those
of this server on this machine (an upper bound on the store's own overhead
per request, not a forecast of AWS S3's throughput).

    python benchmarks/store_s3.py                 # D = 250,000, n = 64 float32 (64 MB)
    python benchmarks/store_s3.py --quick         # tiny, for the test suite
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_report  # noqa: E402

import sketchla as sk  # noqa: E402
from sketchla.store import RunStore  # noqa: E402


def start_moto():
    """``(Popen, endpoint)`` of a moto S3 server on a free port of 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            return proc, endpoint
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("moto's S3 server did not start (pip install 'moto[server]' s3fs)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--D", type=int, default=250_000)
    p.add_argument("--n", type=int, default=64, help="columns (n_inner of the SEIGH run)")
    p.add_argument("--chunk", type=int, default=4, help="columns per measurement task")
    p.add_argument("--threads", type=int, default=4, help="concurrent tasks of the disk-vs-S3 comparison")
    p.add_argument("--writers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--gain", type=float, default=0.10, help="least throughput gain that counts as scaling")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a dry run)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "store_s3.json"))
    a = p.parse_args(argv)
    if a.quick:
        a.D, a.n, a.chunk, a.repeats, a.writers = 20_000, 8, 2, 1, [1, 2]

    import dask
    import s3fs

    rng = np.random.default_rng(0)
    A = sp.diags(rng.standard_normal(a.D).astype(np.float32), format="csr")  # cheap: I/O dominates
    omega = sk.TestMatrix((a.D, a.n), seed=0, name="omega", kind="signs", dtype="float32")
    mb = a.D * a.n * 4 / 1e6
    proc, endpoint = start_moto()
    opts = {"endpoint_url": endpoint, "key": "bench", "secret": "bench"}
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3fs.S3FileSystem(skip_instance_cache=True, **opts).mkdir(bucket)
    tmp = tempfile.TemporaryDirectory(prefix="store-s3-")

    def stage(kind: str, threads: int) -> float:
        """Seconds of one measurement stage into a fresh store of ``kind``."""
        tag = uuid.uuid4().hex[:8]
        if kind == "disk":
            run = RunStore.open(os.path.join(tmp.name, tag), {"seed": 0})
        else:
            run = RunStore.open(f"s3://{bucket}/{tag}", {"seed": 0}, storage_options=opts)
        with dask.config.set(num_workers=threads):
            t0 = time.perf_counter()
            sk.measure(A, omega, run, "Y", chunk=a.chunk, client="threads", progress=False)
            sec = time.perf_counter() - t0
        assert len(run.done_keys("Y")) == -(-a.n // a.chunk)
        return sec

    try:
        for w in sorted(set(a.writers) | {a.threads}):  # warm up: imports, connections, a client per thread
            stage("s3", w)
        # repeats interleaved over the configurations, so load from elsewhere spreads over all of them
        samples = {("disk", a.threads): [], ("s3", a.threads): [], **{("s3w", w): [] for w in a.writers}}
        for _ in range(a.repeats):
            for kind, threads in samples:
                samples[(kind, threads)].append(stage("disk" if kind == "disk" else "s3", threads))
        rows = [(kind, min(samples[(kind, a.threads)])) for kind in ("disk", "s3")]
        base = rows[0][1]
        writers = [{"writers": w, "seconds": min(samples[("s3w", w)]), "mb_per_s": mb / min(samples[("s3w", w)]),
                    "samples": samples[("s3w", w)]} for w in a.writers]
    finally:
        proc.kill()
        proc.wait(10)
        tmp.cleanup()

    one = writers[0]["mb_per_s"]
    stops = None
    for prev, cur in zip(writers, writers[1:]):
        cur["speedup"] = cur["mb_per_s"] / one
        if stops is None and cur["mb_per_s"] < prev["mb_per_s"] * (1 + a.gain):
            stops = prev["writers"]
    writers[0]["speedup"] = 1.0

    n_chunks = -(-a.n // a.chunk)
    print(f"SEIGH measurement stage: {mb:.0f} MB float32 ({a.D} x {a.n}) in {n_chunks} column chunks of "
          f"{a.chunk}, {a.threads} threads; best of {a.repeats}")
    print(f"{'store':<28}{'seconds':>10}{'÷ disk':>9}{'MB/s':>9}")
    for kind, sec in rows:
        label = "local disk (baseline)" if kind == "disk" else "s3:// (local moto server)"
        print(f"{label:<28}{sec:>10.3f}{sec / base:>9.2f}{mb / sec:>9.1f}")
    print(f"\nconcurrent writers into s3:// (throughput relative to 1 writer; stops scaling at "
          f"{stops if stops is not None else '> ' + str(writers[-1]['writers'])})")
    print(f"{'writers':<10}{'seconds':>10}{'MB/s':>9}{'× 1 writer':>12}")
    for r in writers:
        print(f"{r['writers']:<10}{r['seconds']:>10.3f}{r['mb_per_s']:>9.1f}{r['speedup']:>12.2f}")
    write_report(a.out, {
        "D": a.D, "n": a.n, "chunk": a.chunk, "threads": a.threads, "size_mb": mb, "n_chunks": n_chunks,
        "repeats": a.repeats, "cpu_count": os.cpu_count(), "server": "moto (server mode, local subprocess)",
        "seconds_disk": rows[0][1], "seconds_s3": rows[1][1], "ratio_s3_to_disk": rows[1][1] / base,
        "samples_disk": samples[("disk", a.threads)], "samples_s3": samples[("s3", a.threads)],
        "writers": writers, "gain_threshold": a.gain, "stops_scaling_at_writers": stops,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
