"""SEIGH at scale on a 2-core machine: D = 10,000,000, n_O = 512, n_I = 768 (issue 5).

The operator is ``benchmarks._synthetic.HouseholderDiagonal`` (known spectrum,
O(D·b) per application), so the run measures the library, not the operator.
Everything runs in this one process on Dask's threaded scheduler, so
``ru_maxrss`` of this process is the peak RSS of the whole computation.

Reports the time per stage (measure / QR / thin products / core solve / Q·U)
beside its roofline time (``benchmarks/_roofline.py``: this machine's disk
bandwidth on the store's file system, GEMM rates and Gaussian generation rate,
measured in the same run before SEIGH starts; the bytes, flops and random
numbers each stage moves, from the code: QR as the algorithm ``tsqr`` chose
(its log), thin products one pass over Y and Q drawing Υ and Ω once,
measurement Y written and Ω drawn — the operator's own cost is not modelled),
peak RSS, the relative errors of the top eigenvalues and the overlap of the
top eigenspace with the exact one; writes JSON to benchmarks/out/.

    python benchmarks/seigh_scale.py                 # the full 10M run (~30 GB of sketch on disk)
    python benchmarks/seigh_scale.py --quick         # D = 200,000, n_O = 64, n_I = 128
    python benchmarks/seigh_scale.py --D 4000000 --n-outer 64 --passes 2   # multi-pass (block Krylov)
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _roofline  # noqa: E402
from _report import write_report  # noqa: E402
import sketchla as sk  # noqa: E402

from _synthetic import HouseholderDiagonal, spectrum  # noqa: E402


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--D", type=int, default=10_000_000)
    p.add_argument("--n-outer", type=int, default=512)
    p.add_argument("--n-inner", type=int, default=768)
    p.add_argument("--chunk", type=int, default=4, help="columns per measurement task")
    p.add_argument("--passes", type=int, default=0, help="q: passes of block Krylov (n_inner is then unused)")
    p.add_argument("--method", default="krylov", choices=("krylov", "subspace"), help="basis of a multi-pass run")
    p.add_argument("--test-kind", default="gaussian", choices=("gaussian", "signs"),
                   help="kind of Ω and Υ (signs: the cheapest to draw, for cheap operators)")
    p.add_argument("--inner-sketch", default="auto", choices=("auto", "store", "accumulate"),
                   help="single pass: store Y's inner-only columns, or accumulate Υᵀ A Ω_I as measured (issue 18.4)")
    p.add_argument("--overwrite-sketch", action="store_true",
                   help="single pass: Q replaces M_O in the store (implies the accumulated inner sketch)")
    p.add_argument("--store", default=None, help="run store path (default: a temp dir, removed afterwards)")
    p.add_argument("--quick", action="store_true", help="D=200k, n_O=64, n_I=128")
    p.add_argument("--ignore-disk", action="store_true", help="start even if the disk looks too small")
    p.add_argument("--top", type=int, default=20, help="number of top eigenpairs to check")
    p.add_argument("--roofline-bytes", type=int, default=2**30,
                   help="size of the scratch file the disk bandwidth is measured with")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "seigh_scale.json"))
    a = p.parse_args(argv)
    if a.quick:
        a.D, a.n_outer, a.n_inner, a.chunk, a.top = 200_000, 64, 128, 16, 10

    tmp = None
    store = a.store
    if store is None:
        tmp = tempfile.mkdtemp(prefix="seigh-scale-", dir=os.environ.get("SKETCHLA_BENCH_DIR"))
        store = os.path.join(tmp, "run.zarr")
    # Y (D × n_I), Q and the eigenvectors (D × n_O each), float32; with passes Y_0..Y_q, V_0..V_{q-1}, Q, Q·U
    need = 4 * a.D * (a.n_inner + 2 * a.n_outer if not a.passes else (2 * a.passes + 3) * a.n_outer)
    if not a.passes and a.inner_sketch == "accumulate":  # Y_O, Q and the eigenvectors (+ UY, n_I² numbers)
        need = 4 * a.D * 3 * a.n_outer
    if not a.passes and a.overwrite_sketch:  # Q over Y_O, and the eigenvectors
        need = 4 * a.D * 2 * a.n_outer
    parent = Path(store).resolve().parent
    while not parent.exists():
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if need > free and not a.ignore_disk:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"error: the run needs about {need / 1e9:.1f} GB on disk next to {store}, only "
              f"{free / 1e9:.1f} GB are free (pass --ignore-disk to try anyway)", file=sys.stderr)
        return 2
    try:
        return _run(a, store)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _stage_models(c, a, qr_msg: str, block_rows: int) -> dict:
    """Roofline time of each stage, from the bytes, flops and numbers drawn the code moves."""
    D, nO, nI, f, kind = a.D, a.n_outer, a.n_inner, 4, a.test_kind
    method, passes, final32, product = _roofline.qr_algorithm(qr_msg)
    qr = _roofline.qr_flops_bytes(method, D, nO, f, block_rows, passes=passes, final32=final32,
                                  product_solve=product)
    if a.inner_mode == "accumulate":  # Y_O written; each inner task draws Υ and multiplies it (16-column groups)
        tasks = -(-(nI - nO) // a.chunk)
        group = 16 * -(-a.chunk // 16)
        thin = (_roofline.model(c, read=D * 2 * nO * f, flops32=2.0 * D * nI * 3 * nO, drawn=3 * D * nI, kind=kind)
                if a.overwrite_sketch else  # Υᵀ M_O before Q replaces it: Υ drawn twice
                _roofline.model(c, read=D * 2 * nO * f, flops32=2.0 * D * nI * 3 * nO, drawn=2 * D * nI, kind=kind))
        return {
            "measure": _roofline.model(c, write=D * nO * f, drawn=D * nI + tasks * D * nI, kind=kind,
                                       flops32=2.0 * D * nI * group * tasks),
            "qr": _roofline.model(c, **qr),
            "thin_products": thin,
            "Q@U": _roofline.model(c, read=D * nO * f, write=D * nO * f, flops32=2.0 * D * nO * nO),
        }
    return {
        "measure": _roofline.model(c, write=D * nI * f, drawn=D * nI, kind=kind),
        "qr": _roofline.model(c, **qr),
        "thin_products": _roofline.model(c, read=D * (nI + nO) * f, flops32=2.0 * D * nI * (nI + 2 * nO),
                                         drawn=2 * D * nI, kind=kind),
        "Q@U": _roofline.model(c, read=D * nO * f, write=D * nO * f, flops32=2.0 * D * nO * nO),
    }


def _tree_bytes(path: str) -> int:
    """Bytes of every file under ``path``; a file deleted while it is walked (a band of M_O that
    Q replaced) counts 0."""
    total = 0
    for d, _, fs in os.walk(path):
        for f in fs:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return total


def _array_bytes(store: str) -> dict:
    """Bytes on disk of each array of the run store (its files, metadata and records aside)."""
    return {name: _tree_bytes(os.path.join(store, name)) for name in sorted(os.listdir(store))
            if os.path.isdir(os.path.join(store, name)) and not name.startswith("_")}


class _PeakStore:
    """The largest size the run store reaches on disk while SEIGH runs, sampled every ``every`` seconds
    in a thread (one ``os.walk`` per sample)."""

    def __init__(self, store: str, every: float = 2.0):
        import threading

        self.store, self.every, self.peak = store, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, _tree_bytes(self.store))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_bytes(self.store))


def _footprint(res, a) -> dict:
    """The run store on disk after SEIGH (before the eigenvectors are written) against issue 18.4's
    formula D·n_O·itemsize + 8·n_I² (float64 n_I × n_I): the sketch alone (``Y`` + ``UY``), and the
    whole store (with ``Q``, which replaces ``Y`` under ``--overwrite-sketch``)."""
    store = str(res.store.path).removeprefix("file://")
    arrays = _array_bytes(store)
    total = _tree_bytes(store)
    mode = (res.store.get_stage("inner_sketch") or {}).get("mode") if not a.passes else None
    sketch = arrays.get("Y", 0) + arrays.get("UY", 0)
    formula = a.D * a.n_outer * 4 + a.n_inner ** 2 * 8
    return {"inner_sketch": mode, "overwrite_sketch": bool(a.overwrite_sketch), "store_bytes": total,
            "array_bytes": arrays, "sketch_bytes": sketch, "formula_bytes": formula,
            "sketch_over_formula": sketch / formula, "store_over_formula": total / formula}


def _run(a, store) -> int:
    ceilings = _roofline.measure_ceilings(os.path.dirname(os.path.abspath(store)), n=a.n_outer,
                                          disk_bytes=a.roofline_bytes, kinds=(a.test_kind,))
    _roofline.print_ceilings(ceilings)
    qr_log = _roofline.tsqr_log()
    op = sk.RecipeOperator(HouseholderDiagonal, a.D, 0, 1.5, "float32", shape=(a.D, a.D), dtype="float32",
                        symmetric=True)
    n_inner = None if a.passes else a.n_inner
    print(f"SEIGH D={a.D:,} n_O={a.n_outer} n_I={n_inner} passes={a.passes} chunk={a.chunk} store={store}", flush=True)
    t0 = time.perf_counter()
    with _PeakStore(store) as peak_store:
        res = sk.seigh(op, a.n_outer, n_inner, seed=0, store=store, client=False, dtype="float32", chunk=a.chunk,
                       passes=a.passes, method=a.method, test_kind=a.test_kind,
                       **({} if a.passes else {"inner_sketch": a.inner_sketch, "overwrite_sketch": a.overwrite_sketch}))
    t_seigh = time.perf_counter() - t0
    rss_after_seigh = _peak_rss_gb()
    footprint = _footprint(res, a)
    footprint["peak_store_bytes"] = peak_store.peak  # sampled every 2 s during SEIGH
    footprint["peak_store_over_formula"] = peak_store.peak / footprint["formula_bytes"]
    a.inner_mode = footprint.get("inner_sketch")
    t0 = time.perf_counter()
    V = res.write_eigenvectors()
    t_qu = time.perf_counter() - t0

    import dask.array as da

    lam_true = spectrum(a.D)
    top_true = lam_true[np.argsort(-np.abs(lam_true))][: a.top]
    # eigenvalues of nearly equal magnitude and opposite sign may swap places in the
    # |λ| order, so compare the top sets sorted by signed value (Weyl's pairing)
    est_sorted, true_sorted = np.sort(res.eigenvalues[: a.top]), np.sort(top_true)
    rel_err = np.abs(est_sorted - true_sorted) / np.abs(true_sorted)
    ovl = HouseholderDiagonal(a.D).eigenvector_overlap(da.from_zarr(V), a.top)
    timings = res.timings
    timings["Q@U"] = t_qu
    peak = _peak_rss_gb()
    sketch_gb = (footprint["sketch_bytes"] if not a.passes else a.D * (a.passes + 1) * a.n_outer * 4) / 1e9
    qr_msg = next((m for m in reversed(qr_log) if m.startswith(("tsqr: ", "cholesky_factor: "))), "")
    # the roofline models the single-pass stages; a multi-pass run reports its timings only
    models = {} if a.passes else _stage_models(ceilings, a, qr_msg,
                                               sk.BlockPlan().for_sketch(a.D, a.D, a.n_inner).row_block)
    report = {
        "D": a.D, "n_outer": a.n_outer, "n_inner": n_inner, "passes": a.passes, "method": a.method,
        "test_kind": a.test_kind, "chunk": a.chunk, "dtype": "float32", "applications": res.applications,
        "seconds_total": t_seigh + t_qu, "seconds_per_stage": timings,
        "stage_fraction_of_measure": {k: v / timings["measure"] for k, v in timings.items()},
        "qr_algorithm": qr_msg, "ceilings": ceilings, "roofline": models,
        "seconds_over_model": {k: timings[k] / m["seconds"] for k, m in models.items() if k in timings},
        "peak_rss_gb": peak, "peak_rss_gb_seigh": rss_after_seigh, "footprint": footprint,
        "sketch_on_disk_gb": sketch_gb, "in_memory_sketch_gb_avoided": sketch_gb,
        "top_eigenvalue_rel_err": rel_err.tolist(), "max_rel_err_top": float(rel_err.max()),
        f"overlap_top{a.top}": ovl, "cpu_count": os.cpu_count(),
    }
    _roofline.print_ceilings(ceilings)
    print(f"QR: {qr_msg}")
    print(f"\n{'stage':<16}{'seconds':>10}{'× measure':>12}{'model s':>10}{'t/model':>9}   model terms (s)")
    for k, v in timings.items():
        m = models.get(k)
        terms = (", ".join(f"{t} {x:.1f}" for t, x in m["terms"].items() if x) if m else
                 "in memory, n-sized" if k == "core_solve" else "")
        mod = f"{m['seconds']:>10.1f}{v / m['seconds']:>9.2f}" if m else f"{'':>10}{'':>9}"
        print(f"{k:<16}{v:>10.1f}{v / timings['measure']:>12.3f}{mod}   {terms}")
    print("(measure's model leaves the operator out: Y written and Ω drawn only)")
    f = footprint
    print(f"\nstore after SEIGH ({f['inner_sketch'] or 'passes'}{', Q over M_O' if f['overwrite_sketch'] else ''}): "
          f"{f['store_bytes'] / 1e9:.2f} GB = {f['store_over_formula']:.3f}× D·n_O·4 + 8·n_I² "
          f"({f['formula_bytes'] / 1e9:.2f} GB); sketch (Y + UY) {f['sketch_bytes'] / 1e9:.2f} GB = "
          f"{f['sketch_over_formula']:.3f}×; peak during SEIGH {f['peak_store_bytes'] / 1e9:.2f} GB = "
          f"{f['peak_store_over_formula']:.3f}× (sampled every 2 s); arrays (GB): "
          + ", ".join(f"{k} {v / 1e9:.3f}" for k, v in f["array_bytes"].items() if v > 1e6))
    print(f"\npeak RSS {peak:.2f} GiB (sketch on disk {sketch_gb:.1f} GB); "
          f"top-{a.top} max rel. eigenvalue error {rel_err.max():.2e}; top-{a.top} eigenspace overlap {ovl:.6f}")
    write_report(a.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
