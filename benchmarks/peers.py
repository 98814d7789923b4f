"""sketchla's SEIGH/SSVD with q = 0/1/2 passes against the peers, on problems written outside the library (issue 15).

Problems (``benchmarks/_peer_problems.py``): ``sym`` a 1,000,000 × 1,000,000
symmetric indefinite ``LinearOperator`` (20 outliers over a heavy bulk),
``heavy`` / ``fast`` sparse 200,000 × 50,000 matrices with power-law /
geometric column scales, ``mlp`` the Hessian of a small tanh MLP (D = 7,010).
Top 20 pairs everywhere.

Methods, all in one run, alternating (round-robin over the methods, each
run in a fresh process so its peak RSS is its own), medians of ``--repeats``:

* ``sketchla q=0`` — ``seigh``/``ssvd(rank=20)``: single pass, sizes by the
  rule (n_O = 81, n_I = 163);
* ``sketchla q=1``, ``q=2`` — block Krylov passes with block ``n_O = 40``
  (SEIGH: ``(q+1)·40`` products, 120 at q = 2 — a symmetric range finder with 2
  power iterations and block 30 makes 4·30 = 120) and ``n_O = 36`` (SSVD:
  ``(2q+1)·36``, 180 at q = 2 — sklearn's ``randomized_svd`` with n_iter=2 and
  30 columns makes 6·30 = 180); ``q=2 subspace`` the same with subspace
  iteration (the Krylov-vs-subspace comparison);
* ``ARPACK`` — ``scipy.sparse.linalg.eigsh`` / ``svds`` (k = 20, defaults):
  the time baseline (ratios are to its median);
* ``sklearn it=2`` / ``sklearn auto`` — ``sklearn.utils.extmath.randomized_svd``
  (20 components, 10 oversamples, ``n_iter=2`` or ``"auto"`` = 7): on the sparse
  matrices sklearn itself; it refuses a ``LinearOperator``, so on ``sym`` and
  ``mlp`` the same algorithm (Halko et al. 2011, Alg. 4.4, QR after every
  application) in NumPy on the operator (``range_finder_svd``);
* ``dask`` — ``dask.array.linalg.svd_compressed`` (k = 20, 2 power iterations),
  on the sparse matrices only (it needs a Dask array).

sketchla runs on Dask's threaded scheduler with 2 workers (``chunk = n_O/2``:
two tasks per pass), float32 sketches, the default error certificate (10 probes:
counted in its products and time; its share of the time is the ``cert``
column). Columns: time ratio to ARPACK, operator products (columns applied,
adjoint included; counted, ``dask``'s from its algorithm), max / median relative
error of the top-20 values, sine of the largest principal angle between the
top-20 subspaces (left vectors for SVDs), peak RSS of the method's process
(and, in JSON, before the method ran). Reference values: exact for ``sym``,
ARPACK at ``tol=1e-10`` otherwise.

    python benchmarks/peers.py                   # everything, ~1 h on 2 cores
    python benchmarks/peers.py --quick           # tiny sizes, one round, in-process
    python benchmarks/peers.py --problems sym --methods "sketchla q=2" ARPACK
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _peer_problems as pp  # noqa: E402
from _report import write_report  # noqa: E402

PROBLEMS = ("sym", "heavy", "fast", "mlp")
METHODS = ("sketchla q=0", "sketchla q=1", "sketchla q=2", "sketchla q=2 subspace", "ARPACK", "sklearn it=2",
           "sklearn auto", "dask")
BLOCK = {"eig": 40, "svd": 36}  # sketchla's block with passes (module docstring)


def Counted(A):
    """``A`` as a SciPy ``LinearOperator`` that counts the columns it is applied to (thread-safe);
    the count is ``op.count[0]``."""
    import scipy.sparse.linalg as sla

    lock, count = threading.Lock(), [0]

    def tally(n):
        with lock:
            count[0] += n

    def mm(X):
        tally(X.shape[1])
        return A @ X

    def rmm(X):
        tally(X.shape[1])
        return A.rmatmat(X) if isinstance(A, sla.LinearOperator) else A.T @ X

    op = sla.LinearOperator(A.shape, matvec=lambda x: mm(x.reshape(-1, 1))[:, 0],
                            rmatvec=lambda x: rmm(x.reshape(-1, 1))[:, 0], matmat=mm, rmatmat=rmm,
                            dtype=np.float64)
    op.count = count
    return op


def run_method(method: str, A, kind: str, quick: bool):
    """Run one method; returns ``(values, vectors D_L × K, products, extra)``."""
    K = pp.K
    if method.startswith("sketchla"):
        import sketchla as sk

        passes = int(method.split("q=")[1][0])
        kw = dict(rank=K, passes=passes, client="threads", progress=False)
        if passes:
            kw["n_outer"] = min(BLOCK[kind], min(A.shape) // (passes + 1))
            kw["method"] = "subspace" if method.endswith("subspace") else "krylov"
        op = Counted(A)
        n_o = kw.get("n_outer") or min(4 * K + 1, (min(A.shape) - 1) // 2)
        kw["chunk"] = max(1, n_o // 2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if kind == "eig":
                res = sk.seigh(sk.aslinearoperator(op, symmetric=True), **kw)
                values, vectors = res.eigenvalues, res.eigenvectors
            else:
                res = sk.ssvd(op, **kw)
                values, vectors = res.S, res.U
        t = res.timings
        extra = {"certificate_seconds": t.get("certificate", 0.0), "stage_seconds": t,
                 "decomposition_seconds": sum(v for k, v in t.items() if k not in ("certificate", "residuals")),
                 "tail_dominated_warning": any(w.category is sk.TailDominatedWarning for w in caught),
                 "estimated_rel_frobenius_error": res.error.relative_frobenius, "applications": res.applications,
                 "params": {k: v for k, v in res.params.items() if k in ("n_outer", "n_inner", "passes", "method")}}
        return values, vectors, op.count[0], extra, res
    if method == "ARPACK":
        import scipy.sparse.linalg as sla

        op = Counted(A)
        if kind == "eig":
            w, V = sla.eigsh(op, k=K, which="LM")
            order = np.argsort(-np.abs(w))
            return w[order], V[:, order], op.count[0], {}, None
        U, s, _ = sla.svds(op, k=K, random_state=0)
        order = np.argsort(-s)
        return s[order], U[:, order], op.count[0], {}, None
    if method.startswith("sklearn"):
        import scipy.sparse as sp

        n_iter = 2 if method.endswith("it=2") else (7 if K < 0.1 * min(A.shape) else 4)  # sklearn's "auto"
        if sp.issparse(A):
            from sklearn.utils.extmath import randomized_svd

            U, s, _ = randomized_svd(A, n_components=K, n_oversamples=10, n_iter=n_iter, random_state=0)
            # sklearn's range finder: A Ω, n_iter × (Aᵀ, A), then B = Qᵀ A, on K + 10 columns
            return s, U, (2 * n_iter + 2) * (K + 10), {"n_iter": n_iter, "products_from_algorithm": True}, None
        op = Counted(A)  # randomized_svd refuses a LinearOperator: the same algorithm on the operator
        s, U = range_finder_svd(op, K, 10, n_iter)
        return s, U, op.count[0], {"n_iter": n_iter, "implementation": "numpy (sklearn's algorithm)"}, None
    if method == "dask":
        import dask.array as da

        rows = max(1, A.shape[0] // 10)
        x = da.from_array(A, chunks=(rows, A.shape[1]), asarray=False)
        U, s, _ = da.linalg.svd_compressed(x, K, n_power_iter=2, n_oversamples=10, seed=0)
        U, s = da.compute(U, s, scheduler="threads")
        # range finder: A Ω, 2 × (Aᵀ, A), then B = Qᵀ A: 6 applications of K + 10 columns
        return s, U, 6 * (K + 10), {"products_from_algorithm": True}, None
    raise ValueError(method)


def range_finder_svd(op, k: int, p: int, n_iter: int):
    """Halko, Martinsson & Tropp (2011) Alg. 4.4 + 5.1 — what ``randomized_svd`` does — on an operator:
    ``Q = orth((A Aᵀ)^n_iter A Ω)`` with a QR after every application, ``B = Qᵀ A``, SVD of ``B``."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(op.matmat(rng.standard_normal((op.shape[1], k + p))))
    for _ in range(n_iter):
        Q, _ = np.linalg.qr(op.rmatmat(Q))
        Q, _ = np.linalg.qr(op.matmat(Q))
    Ub, s, _ = np.linalg.svd(op.rmatmat(Q).T, full_matrices=False)
    return s[:k], Q @ Ub[:, :k]


def applicable(method: str, name: str) -> bool:
    return method != "dask" or name in ("heavy", "fast")  # svd_compressed needs a Dask array


def _rss_mib() -> float:
    """Peak RSS of this process image, MiB: ``VmHWM`` (Linux; ``ru_maxrss`` would carry over the parent's
    peak into a forked-and-exec'd child), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_one(name: str, size: dict, method: str, vec_path: str, quick: bool) -> dict:
    """Build the problem, run the method (timed), save its top-K vectors to ``vec_path``."""
    A, kind = pp.build(name, size)
    rss_before = _rss_mib()
    t0 = time.perf_counter()
    values, vectors, products, extra, keep = run_method(method, A, kind, quick)
    if hasattr(vectors, "compute"):  # sketchla's lazy Q U: streamed out of its store after the clock
        seconds = time.perf_counter() - t0
        rss_peak = _rss_mib()
        vectors = vectors.compute()
    else:
        seconds = time.perf_counter() - t0
        rss_peak = _rss_mib()
    np.save(vec_path, np.asarray(vectors[:, :pp.K], dtype=np.float64))
    del keep
    return {"seconds": seconds, "products": int(products), "values": np.asarray(values[:pp.K], float).tolist(),
            "rss_peak_mib": rss_peak, "rss_before_mib": rss_before, **extra}


def errors(values, vectors, ref_values, ref_vectors, signed: bool) -> dict:
    v, r = np.asarray(values, float), np.asarray(ref_values, float)
    if signed:  # equal |λ| of opposite sign may swap in the |λ| order: compare the top sets by value
        v, r = np.sort(v), np.sort(r)
    else:
        v, r = np.sort(np.abs(v))[::-1], np.sort(np.abs(r))[::-1]
    rel = np.abs(v - r) / np.abs(r)
    Qc, _ = np.linalg.qr(vectors)
    cos = np.linalg.svd(ref_vectors.T @ Qc, compute_uv=False)
    return {"max_rel_err": float(rel.max()), "median_rel_err": float(np.median(rel)),
            "sin_max_angle": float(np.sqrt(max(0.0, 1.0 - cos.min() ** 2)))}


def _child(argv) -> int:
    name, method, size_json, vec_path, out_json = argv
    res = measure_one(name, json.loads(size_json), method, vec_path, quick=False)
    Path(out_json).write_text(json.dumps(res))
    return 0


def _in_child(name, size, method, tmp) -> dict:
    vec, out = os.path.join(tmp, "vectors.npy"), os.path.join(tmp, "result.json")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, method, json.dumps(size), vec, out]
    # the checkout's sketchla, installed or not (the benchmarks run from a checkout)
    path = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": path})
    if proc.returncode != 0:
        raise RuntimeError(f"{name}/{method} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    res = json.loads(Path(out).read_text())
    res["vectors_path"] = vec
    return res


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round, in this process")
    p.add_argument("--repeats", type=int, default=None, help="rounds (default 3; 1 with --quick)")
    p.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                   help="each run in a fresh process (default: yes, no with --quick)")
    p.add_argument("--out", default=str(HERE / "out" / "peers.json"))
    a = p.parse_args(argv)
    repeats = a.repeats if a.repeats is not None else (1 if a.quick else 3)
    if repeats < 1:
        p.error("--repeats must be at least 1")
    isolate = (not a.quick) if a.isolate is None else a.isolate
    methods = [m for m in METHODS if m in a.methods]
    report = {"quick": a.quick, "repeats": repeats, "isolated_processes": isolate, "cpu_count": os.cpu_count(),
              "problems": {}}
    for name in a.problems:
        size = pp.SIZES[name]["quick" if a.quick else "full"]
        A, kind = pp.build(name, size)
        ref_values, ref_vectors = pp.reference(name, size, A, kind, Path(a.out).parent)
        del A
        runs = {m: [] for m in methods if applicable(m, name)}
        for r in range(repeats):
            for m in runs:  # round-robin: every method once per round
                with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
                    if isolate:
                        res = _in_child(name, size, m, tmp)
                    else:
                        res = measure_one(name, size, m, os.path.join(tmp, "v.npy"), a.quick)
                        res["vectors_path"] = os.path.join(tmp, "v.npy")
                    vec = np.load(res.pop("vectors_path"))
                    res.update(errors(res["values"], vec, ref_values, ref_vectors,
                                      signed=False))
                runs[m].append(res)
                print(f"{name:6s} round {r + 1}/{repeats} {m:22s} {res['seconds']:8.2f} s  "
                      f"products {res['products']:5d}  max rel err {res['max_rel_err']:.2e}", flush=True)
        report["problems"][name] = _summarise(name, size, kind, runs, ref_values)
    _print_table(report)
    write_report(a.out, report)
    return 0


def _summarise(name, size, kind, runs, ref_values) -> dict:
    rows = {}
    for m, rs in runs.items():
        med = {k: float(np.median([r[k] for r in rs])) for k in
               ("seconds", "products", "max_rel_err", "median_rel_err", "sin_max_angle", "rss_peak_mib",
                "rss_before_mib")}
        row = {**med, "runs": rs}
        if m.startswith("sketchla"):
            row["certificate_share"] = float(np.median([r["certificate_seconds"] / r["decomposition_seconds"]
                                                        for r in rs]))
            row["tail_dominated_warning"] = any(r["tail_dominated_warning"] for r in rs)
            row["params"] = rs[0]["params"]
        rows[m] = row
    base = rows.get("ARPACK", {}).get("seconds")
    for row in rows.values():
        row["time_ratio_to_arpack"] = row["seconds"] / base if base else None
    return {"size": size, "kind": kind, "reference_values": np.asarray(ref_values).tolist(), "methods": rows}


def _print_table(report) -> None:
    for name, prob in report["problems"].items():
        print(f"\n{name} {prob['size']}")
        print(f"{'method':24s}{'time':>8s}{'ratio':>7s}{'prod':>6s}{'max err':>10s}{'med err':>10s}"
              f"{'sin θ':>9s}{'RSS MiB':>9s}{'cert':>6s}")
        for m, row in prob["methods"].items():
            ratio = f"{row['time_ratio_to_arpack']:.2f}" if row["time_ratio_to_arpack"] else "-"
            cert = f"{row['certificate_share']:.2f}" if "certificate_share" in row else ""
            flag = " tail!" if row.get("tail_dominated_warning") else ""
            print(f"{m:24s}{row['seconds']:8.2f}{ratio:>7s}{row['products']:6.0f}{row['max_rel_err']:10.1e}"
                  f"{row['median_rel_err']:10.1e}{row['sin_max_angle']:9.1e}{row['rss_peak_mib']:9.0f}{cert:>6s}{flag}")


if __name__ == "__main__":
    raise SystemExit(main())
