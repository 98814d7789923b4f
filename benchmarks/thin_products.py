"""SEIGH's thin products in one pass vs the former two (issue 18.2), as same-run ratios, beside the roofline.

On a stored D × n_I sketch Y and D × n_O basis Q (float32 Zarr, the run store's
row chunks), the three products ``ΥᵀY``, ``ΥᵀQ``, ``ΩᵀQ`` of paper Alg. 2:

* **one pass** (what ``seigh`` does now): ``sk.inner_products([Υ, Ω], [Y, Q], ...)`` —
  Y and Q read once, each block of Υ and Ω drawn once inside its task;
* **two passes** (what it did before): ``sk.inner(Υ, [Y, Q])`` then ``sk.inner(Ω, Q)``
  with Υ and Ω as Dask arrays of generated tiles (``TestMatrix.to_dask``) — Q read twice.

Both run ``--repeats`` times, interleaved; medians are reported with the bytes
read, the numbers drawn, the flops and the roofline time (``_roofline.py``,
measured in the same run), and the results are checked to agree. ``--cold``
evicts Y's and Q's files from the page cache before every run
(``posix_fadvise(DONTNEED)``), as at D = 10⁷, where they do not fit in memory.

    python benchmarks/thin_products.py                 # D = 1,000,000, n_O = 512, n_I = 768
    python benchmarks/thin_products.py --quick         # D = 200,000, n_O = 64, n_I = 128
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _roofline  # noqa: E402
from _report import write_report  # noqa: E402
import sketchla as sk  # noqa: E402
from sketchla.random import TILE_ROWS  # noqa: E402


def _stored(path, D, n, row_block, seed):
    """A D × n float32 Zarr array of Gaussian noise in ``row_block`` × n chunks, written block by block."""
    import zarr

    z = zarr.create_array(store=str(path), shape=(D, n), chunks=(row_block, n), dtype="float32",
                          compressors=None, fill_value=0.0, overwrite=True)
    for i, s in enumerate(range(0, D, row_block)):
        e = min(s + row_block, D)
        z[s:e] = np.random.default_rng([seed, i]).standard_normal((e - s, n), dtype=np.float32)
    return z


def _evict(*arrays) -> None:
    """Drop the chunk files of local Zarr arrays from the page cache (they are clean: written and synced)."""
    for z in arrays:
        for f in Path(str(z.store.root)).rglob("*"):
            if f.is_file():
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fsync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--D", type=int, default=1_000_000)
    p.add_argument("--n-outer", type=int, default=512)
    p.add_argument("--n-inner", type=int, default=768)
    p.add_argument("--kind", default="gaussian", choices=["gaussian", "signs"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", default=None, help="where Y and Q go (default: a temp dir, removed)")
    p.add_argument("--roofline-bytes", type=int, default=2**30)
    p.add_argument("--cold", action="store_true", help="evict Y and Q from the page cache before every run")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "thin_products.json"))
    a = p.parse_args(argv)
    if a.quick:
        a.D, a.n_outer, a.n_inner, a.repeats, a.roofline_bytes = 200_000, 64, 128, 1, 2**27
    for name in ("D", "n_outer", "n_inner", "repeats"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    workdir = a.workdir or tempfile.mkdtemp(prefix="thin-products-")
    try:
        return _run(a, workdir)
    finally:
        if a.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(a, workdir) -> int:
    D, nO, nI = a.D, a.n_outer, a.n_inner
    plan = sk.BlockPlan().for_sketch(D, D, nI)  # the blocking seigh gives its store
    rc, br = plan.thin_blocking(D, TILE_ROWS)
    ceilings = _roofline.measure_ceilings(workdir, n=nO, disk_bytes=a.roofline_bytes, kinds=(a.kind,))
    _roofline.print_ceilings(ceilings)
    t0 = time.perf_counter()
    Y = _stored(Path(workdir) / "Y.zarr", D, nI, plan.row_block, 1)
    Q = _stored(Path(workdir) / "Q.zarr", D, nO, plan.row_block, 2)
    print(f"Y {D:,} × {nI}, Q {D:,} × {nO} float32 written in {time.perf_counter() - t0:.1f} s "
          f"({plan.row_block}-row chunks; blocks of {br} rows)", flush=True)
    ups = sk.TestMatrix((D, nI), seed=0, name="upsilon", kind=a.kind)
    omg = sk.TestMatrix((D, nI), seed=0, name="omega", kind=a.kind)

    def one_pass():
        return sk.inner_products([ups, omg], [Y, Q], [(0, 0), (0, 1), (1, 1)], block_rows=br)

    def two_passes():
        M, UQ = sk.inner(ups.to_dask(row_block=rc), [Y, Q], block_rows=br)
        return [M, UQ, sk.inner(omg.to_dask(row_block=rc), Q, block_rows=br)]

    ways = {"one pass": one_pass, "two passes": two_passes}
    # warm-up, untimed, on a tiny problem (imports, thread pools, BLAS buffers: the first call of
    # either way in a process is measured 1.5-2.5x slower)
    small = np.ones((2 * TILE_ROWS, 8), dtype=np.float32)
    tiny = sk.TestMatrix((2 * TILE_ROWS, 8), seed=0, name="warm-up")
    sk.inner_products([tiny, tiny], [small, small], [(0, 0), (0, 1), (1, 1)])
    sk.inner(tiny.to_dask(row_block=TILE_ROWS), [small, small])
    seconds = {k: [] for k in ways}
    results = {}
    for _ in range(a.repeats):
        for k, fn in ways.items():
            if a.cold:
                _evict(Y, Q)
            t0 = time.perf_counter()
            results[k] = fn()
            seconds[k].append(time.perf_counter() - t0)
            print(f"# {k}: {seconds[k][-1]:.1f} s", flush=True)
    diff = max(float(np.abs(x - y).max() / max(np.abs(y).max(), 1e-300))
               for x, y in zip(results["one pass"], results["two passes"]))
    flops = 2.0 * D * nI * (nI + 2 * nO)
    moved = {"one pass": dict(read=4 * D * (nI + nO), flops32=flops, drawn=2 * D * nI),
             "two passes": dict(read=4 * D * (nI + 2 * nO), flops32=flops, drawn=2 * D * nI)}
    rows = []
    for k in ways:
        m = _roofline.model(ceilings, kind=a.kind, **moved[k])
        rows.append({"way": k, "seconds": statistics.median(seconds[k]), "seconds_all": seconds[k], "roofline": m})
    base = rows[1]["seconds"]
    print(f"\nthin products ΥᵀY, ΥᵀQ, ΩᵀQ; D = {D:,}, n_O = {nO}, n_I = {nI}, {a.kind} test matrices, "
          f"median of {a.repeats} interleaved runs{', Y and Q evicted from the page cache before each' if a.cold else ''}; "
          f"results agree to {diff:.1e} (relative)")
    _roofline.print_ceilings(ceilings)
    print(f"{'way':<12}{'seconds':>9}{'ratio':>8}{'GB read':>9}{'G drawn':>9}{'TFLOP':>7}{'model s':>9}{'t/model':>9}")
    for r in rows:
        m = r["roofline"]
        print(f"{r['way']:<12}{r['seconds']:>9.1f}{r['seconds'] / base:>8.2f}{m['bytes_read'] / 1e9:>9.1f}"
              f"{m['drawn'] / 1e9:>9.2f}{m['flops32'] / 1e12:>7.2f}{m['seconds']:>9.1f}{r['seconds'] / m['seconds']:>9.2f}")
    report = {"D": D, "n_outer": nO, "n_inner": nI, "kind": a.kind, "repeats": a.repeats, "cold": a.cold,
              "row_block": plan.row_block,
              "block_rows": br, "ceilings": ceilings, "rows": rows, "max_rel_diff": diff,
              "one_pass_over_two_passes": rows[0]["seconds"] / base, "cpu_count": os.cpu_count()}
    write_report(a.out, report)
    return 0 if diff < 1e-5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
