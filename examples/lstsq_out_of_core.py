"""Out-of-core least squares ``min ||A x − b||`` with A in Zarr, against ``numpy.linalg.lstsq``.

A (N × p float32, a synthetic regression design with correlated columns) and
b are written to Zarr block by block. ``sketchla.lstsq`` reads each row block
of ``[A b]`` once and reduces them by TSQR (only p × p numbers stay in
memory), so N is limited by the disk, not by RAM: at ``--rows 100_000_000``
and 100 columns A is 40 GB. At the default size NumPy can solve the same
problem in memory; the script reports both solutions' agreement, their
residual norms, the times as a ratio and the peak memory of each phase
(``--no-numpy`` skips NumPy for sizes it cannot hold).

    python examples/lstsq_out_of_core.py                        # 500,000 × 100, a few seconds
    python examples/lstsq_out_of_core.py --rows 100_000_000 --no-numpy
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mib, print_table  # noqa: E402


def write_problem(workdir: Path, rows: int, p: int, seed: int, block: int = 100_000):
    """A with correlated columns (condition number ~1e3) and ``b = A x_true + noise``, in Zarr."""
    import zarr

    rng = np.random.default_rng(seed)
    mix = np.linalg.qr(rng.standard_normal((p, p)))[0] * np.logspace(0, -3, p)
    x_true = rng.standard_normal(p)
    A = zarr.create_array(store=str(workdir / "A.zarr"), shape=(rows, p), chunks=(block, p), dtype="float32",
                          compressors=None, overwrite=True)
    b = zarr.create_array(store=str(workdir / "b.zarr"), shape=(rows,), chunks=(block,), dtype="float32",
                          compressors=None, overwrite=True)
    for s in range(0, rows, block):
        e = min(s + block, rows)
        g = np.random.default_rng([seed, s])
        a = (g.standard_normal((e - s, p)) @ mix.T).astype(np.float32)
        A[s:e] = a
        b[s:e] = (a.astype(np.float64) @ x_true + 0.01 * g.standard_normal(e - s)).astype(np.float32)
    return A, b, x_true


def residual_norm(A, b, x, block: int = 100_000) -> float:
    """``||A x − b||₂`` streamed over row blocks (float64)."""
    total = 0.0
    for s in range(0, A.shape[0], block):
        r = A[s:s + block].astype(np.float64) @ x - b[s:s + block]
        total += float(r @ r)
    return total ** 0.5


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=500_000, help="rows N (default 500,000)")
    p.add_argument("--cols", type=int, default=100, help="columns p (default 100)")
    p.add_argument("--no-numpy", action="store_true", help="skip the in-memory NumPy solve (for large N)")
    p.add_argument("--workdir", default=None, help="folder for the Zarr arrays (default: a temporary one)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.rows < a.cols or a.cols < 1:
        p.error(f"need --rows ≥ --cols ≥ 1, got {a.rows} and {a.cols}")
    work = Path(a.workdir or tempfile.mkdtemp(prefix="lstsq_ooc_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        import sketchla as sk

        A, b, x_true = write_problem(work, a.rows, a.cols, a.seed)
        t0 = time.perf_counter()
        x = np.asarray(sk.lstsq(A, b), dtype=np.float64)
        t_ours = time.perf_counter() - t0
        rss_ours = peak_rss_mib()
        table = [["sketchla.lstsq (streamed)", t_ours, 1.0, residual_norm(A, b, x), rss_ours]]
        out = {"rel_err_vs_truth": float(np.linalg.norm(x - x_true) / np.linalg.norm(x_true))}
        if not a.no_numpy:
            t0 = time.perf_counter()
            A_mem, b_mem = A[...], b[...]
            x_np = np.linalg.lstsq(A_mem, b_mem, rcond=None)[0].astype(np.float64)
            t_np = time.perf_counter() - t0
            del A_mem, b_mem
            table.append(["numpy.linalg.lstsq (in memory)", t_np, t_np / t_ours, residual_norm(A, b, x_np),
                          peak_rss_mib()])
            out["rel_diff_vs_numpy"] = float(np.linalg.norm(x - x_np) / np.linalg.norm(x_np))
        print(f"least squares with A {a.rows:,} × {a.cols} float32 in Zarr ({a.rows * a.cols * 4 / 1e9:.2f} GB)")
        print_table(table, ["method", "seconds", "time / sketchla", "||A x - b||", "peak RSS MiB (so far)"])
        for key, v in out.items():
            print(f"{key}: {v:.3g}")
        # the distance to x_true is the estimator's statistical error (it shrinks like 1/sqrt(N));
        # what this script checks is that both solvers find the same least-squares solution
        return 0 if out.get("rel_diff_vs_numpy", 0.0) < 1e-3 else 1
    finally:
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
