"""PCA of a tall data matrix kept in Zarr, out of core, against scikit-learn on a subsample.

The data matrix ``X`` (N samples × p features, float32) is written to a Zarr
array block by block and never held in memory: at ``--rows 40_000_000`` with
the default 200 features it is 32 GB, more than this project's 24 GiB
machines. PCA needs the SVD of the centred matrix ``Xc = X − 1 μᵀ``:

1. ``μ`` in one streamed pass (Dask over the Zarr row blocks);
2. ``Xc = Q R`` by ``sketchla.tsqr`` (Q streamed into Zarr, R is p × p);
3. ``R = U_R S Vᵀ`` in memory, so ``Xc = (Q U_R) S Vᵀ`` exactly: the principal
   axes are the rows of ``Vᵀ``, the explained variances ``S² / (N − 1)`` and
   the scores ``Q U_R S`` (a lazy streamed product, ``sketchla.linalg.matmul``).

Nothing is approximated: unlike a randomized truncated SVD, this is the exact
SVD, at the price of one TSQR pass (fine while p is at most a few thousand).
The check against scikit-learn's ``PCA`` on a random subsample of rows (what a
user would do without an out-of-core tool) reports the explained-variance
ratios of both and the largest principal angle between their top-k axes;
``--exact`` (small N only) also compares with NumPy's SVD of the whole matrix.

    python examples/pca_zarr.py                         # 200,000 × 200, about 10 s
    python examples/pca_zarr.py --rows 40_000_000       # 32 GB on disk, out of core
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
from _common import largest_angle, peak_rss_mib, print_table  # noqa: E402


def write_data(path, rows: int, p: int, rank: int, seed: int, block: int = 50_000):
    """``X = Z Wᵀ diag(scales) + noise + offset``: ``rank`` strong directions with decaying
    variance over isotropic noise, written to Zarr ``block`` rows at a time."""
    import zarr

    rng = np.random.default_rng(seed)
    W, _ = np.linalg.qr(rng.standard_normal((p, rank)))
    scales = 10.0 * 0.7 ** np.arange(rank)
    offset = rng.uniform(-5, 5, size=p)
    X = zarr.create_array(store=str(path), shape=(rows, p), chunks=(block, p), dtype="float32",
                          compressors=None, overwrite=True)
    for s in range(0, rows, block):
        e = min(s + block, rows)
        g = np.random.default_rng([seed, s])  # each block a pure function of (seed, position)
        Z = g.standard_normal((e - s, rank)) * scales
        X[s:e] = (Z @ W.T + 0.5 * g.standard_normal((e - s, p)) + offset).astype(np.float32)
    return X


def pca_out_of_core(X, workdir, k: int):
    """Column means, TSQR of the centred matrix, SVD of R → (explained variance (p,), axes Vᵀ (p × p), seconds)."""
    import dask.array as da

    import sketchla as sk

    t0 = time.perf_counter()
    A = da.from_zarr(X)
    mu = A.mean(axis=0, dtype=np.float64).compute()
    Xc = (A - mu.astype(np.float32))  # lazy: centred blocks are formed inside the TSQR tasks
    _, R = sk.tsqr(Xc, out=str(Path(workdir) / "Q.zarr"))
    _, S, Vt = np.linalg.svd(np.asarray(R, dtype=np.float64))
    var = S**2 / (X.shape[0] - 1)
    return var, Vt, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000, help="samples N (default 200,000)")
    p.add_argument("--features", type=int, default=200, help="features p (default 200)")
    p.add_argument("--rank", type=int, default=10, help="strong directions in the data (default 10)")
    p.add_argument("-k", type=int, default=5, help="components compared (default 5)")
    p.add_argument("--subsample", type=int, default=20_000, help="rows given to scikit-learn (default 20,000)")
    p.add_argument("--exact", action="store_true", help="also NumPy's SVD of the whole matrix (small N only)")
    p.add_argument("--workdir", default=None, help="folder for the Zarr arrays (default: a temporary one)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.rows < a.features:
        p.error(f"--rows {a.rows} must be at least --features {a.features}")
    if not 1 <= a.k <= a.features:
        p.error(f"-k {a.k} must be in [1, --features]")
    work = Path(a.workdir or tempfile.mkdtemp(prefix="pca_zarr_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        X = write_data(work / "X.zarr", a.rows, a.features, a.rank, a.seed)
        t_write = time.perf_counter() - t0
        var, Vt, t_ours = pca_out_of_core(X, work, a.k)
        rss_ours = peak_rss_mib()
        ratio = var / var.sum()

        from sklearn.decomposition import PCA

        rows = np.sort(np.random.default_rng(a.seed + 1).choice(a.rows, size=min(a.subsample, a.rows),
                                                                replace=False))
        t0 = time.perf_counter()
        sub = X.get_orthogonal_selection((rows, slice(None)))
        pca = PCA(n_components=a.k, svd_solver="full").fit(sub)
        t_sk = time.perf_counter() - t0
        out = {"angle_vs_sklearn_subsample": largest_angle(Vt[:a.k].T, pca.components_.T)}
        table = [["sketchla tsqr (all rows)", t_ours, *ratio[:a.k]],
                 [f"sklearn PCA ({len(rows):,} rows)", t_sk, *pca.explained_variance_ratio_[:a.k]]]
        if a.exact:
            full = X[...].astype(np.float64)
            t0 = time.perf_counter()
            full -= full.mean(axis=0)
            _, S, Vt_ref = np.linalg.svd(full, full_matrices=False)
            t_np = time.perf_counter() - t0
            var_ref = S**2 / (a.rows - 1)
            out["max_rel_err_variance_vs_numpy"] = float(np.max(np.abs(var[:a.k] - var_ref[:a.k]) / var_ref[:a.k]))
            out["angle_vs_numpy"] = largest_angle(Vt[:a.k].T, Vt_ref[:a.k].T)
            table.append(["numpy SVD (all rows, in memory)", t_np, *(var_ref / var_ref.sum())[:a.k]])
        print(f"PCA of a {a.rows:,} × {a.features} float32 matrix in Zarr ({a.rows * a.features * 4 / 1e9:.2f} GB, "
              f"written in {t_write:.1f} s); peak RSS after the out-of-core PCA {rss_ours:.0f} MiB")
        print_table(table, ["method", "seconds", *[f"EVR {i + 1}" for i in range(a.k)]])
        for key, v in out.items():
            print(f"{key}: {v:.3g}")
        return 0 if out["angle_vs_sklearn_subsample"] < 0.2 else 1
    finally:
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
