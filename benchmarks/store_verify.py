"""Cost of checking a run store's completed chunks (issue 9: manifests, ``verify=``).

A sparse operator is measured into a store (``D × n`` float32, 128 MB by
default). Then, in the same run and on the same files, each timed as the best of
``--repeats``:

* baseline: reading the whole array back with Zarr (``Y[:]``);
* ``RunStore.verify_done("Y", verify="size")``: one ``stat`` per chunk file;
* ``RunStore.verify_done("Y", verify="full")``: CRC-32C of every chunk file;
* a resumed ``measure`` call with everything done, ``verify="size"`` and ``None``.

Timings are given in seconds and as ratios to the baseline read. Prints a
table and writes benchmarks/out/store_verify.json.

    python benchmarks/store_verify.py            # D = 250,000, n = 128 (128 MB)
    python benchmarks/store_verify.py --D 50000  # smaller
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import best_seconds as _best  # noqa: E402
from _report import write_report  # noqa: E402
from _synthetic import sparse_matrix  # noqa: E402

from sketchla import TestMatrix, measure  # noqa: E402
from sketchla.store import RunStore  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--D", type=int, default=250_000)
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--chunk", type=int, default=8, help="columns per measurement chunk")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "store_verify.json"))
    a = p.parse_args(argv)

    A = sparse_matrix(a.D, per_row=4, seed=0)
    om = TestMatrix((a.D, a.n), seed=0, name="Omega", dtype="float32")
    with tempfile.TemporaryDirectory(prefix="store-verify-") as d:
        path = os.path.join(d, "run")
        run = RunStore.open(path, {"seed": 0})
        t0 = time.perf_counter()
        Y = measure(A, om, run, "Y", chunk=a.chunk, client="threads", progress=False)
        t_measure = time.perf_counter() - t0
        n_chunks = len(run.done_keys("Y"))
        size_mb = a.D * a.n * 4 / 1e6
        assert run.verify_done("Y", verify="full") == {}

        def _resume(verify):
            return lambda: measure(A, om, RunStore.open(path, {"seed": 0}), "Y", chunk=a.chunk, client="threads",
                                   progress=False, verify=verify)

        base = _best(lambda: Y[:], a.repeats)
        rows_out = [
            ("baseline: read Y[:] with Zarr", base),
            ('verify_done(verify="size")', _best(lambda: run.verify_done("Y", verify="size"), a.repeats)),
            ('verify_done(verify="full")', _best(lambda: run.verify_done("Y", verify="full"), a.repeats)),
            ('resumed measure, verify="size"', _best(_resume("size"), a.repeats)),
            ("resumed measure, verify=None", _best(_resume(None), a.repeats)),
        ]
    print(f"store: {size_mb:.0f} MB float32 in {n_chunks} column chunks (measured in {t_measure:.1f} s)")
    print(f"{'operation':<34}{'seconds':>10}{'÷ read':>9}")
    for label, sec in rows_out:
        print(f"{label:<34}{sec:>10.4f}{sec / base:>9.3f}")
    write_report(a.out, {
        "D": a.D, "n": a.n, "chunk": a.chunk, "size_mb": size_mb, "n_chunks": n_chunks, "repeats": a.repeats,
        "seconds_measure": t_measure, "cpu_count": os.cpu_count(),
        "rows": [{"operation": label, "seconds": sec, "ratio_to_read": sec / base} for label, sec in rows_out],
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
