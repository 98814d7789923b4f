"""Can one H100 run a full ImageNet ResNet-18 SEIGH (paper §6.2, Table 1) in ≤ 2 hours? (issue 7)

Measures on one GPU, then extrapolates the wall time of SEIGH (paper Alg. 2)
for ResNet-18 with D = 11,689,512, n_O = 1500, n_I = 2·n_O + 1 = 3001 and a
Hessian sample of N = 5000 ImageNet-sized images (224×224):

1. **per-HVP time** for each net of Table 1 at its Hessian sample size
   (3c3d N = 500, All-CNN-C N = 1000, ResNet-18 N = 5000), random images of the
   right shape, :class:`overlap_experiments.hessian.HessianOperator` on the GPU
   with vmapped blocks (``--blocks``, best one kept) and curvlinops
   mini-batches of ``--hvp-batch`` images; one block after a warm-up.
2. **QR** (Alg. 2 line 3): ``sketchla.tsqr(A, out=Q, gpu=True)`` of a D × 1500
   float32 Zarr array on local disk, blocks read into CuPy
   (``zarr.config.enable_gpu()``, the ``gpu=True`` path of
   :mod:`sketchla.linalg.tsqr`). A and Q of the full size are 70 GB each; when
   the scratch disk cannot hold both, or ``--qr-rows`` says so, the first
   ``qr_rows`` rows are factorised and the time scaled by D / qr_rows (TSQR
   is linear in D). Orthogonality ||QᵀQ − I||_max is checked.
3. **thin products** (Alg. 2 after line 3: ΥᵀY, ΥᵀQ, ΩᵀQ, host-generated
   Gaussian Υ, Ω of D × n_I): ``sketchla.linalg.inner`` over the same rows,
   scaled like the QR. Y (D × n_I) is stood in for by A (D × n_O), so the GEMM
   part is underestimated by ≈ n_I/n_O; test-matrix generation, which
   dominates, is exact.
4. **solves** (Alg. 2 lines 4–8): the float64 core ``seigh_core`` on random
   n_I × n_I and n_I × n_O inputs.

Printed and written to ``benchmarks/out/gpu_resnet18.json``:

    T_issue = n_I × per-HVP + QR + solves            (the issue's formula)
    T_full  = T_issue + thin products

against the issue's goal of 2 hours on one H100.

    python benchmarks/gpu_resnet18.py                    # on a CUDA machine with CuPy
    python benchmarks/gpu_resnet18.py --qr-rows 11689512 # the full 70 GB sketch (≥ 150 GB scratch)
    python benchmarks/gpu_resnet18.py --cpu --quick      # CPU dry run of the script, tiny sizes
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
from _nets import CONVNETS, NETS, sample  # noqa: E402
from _report import write_report  # noqa: E402

D_RESNET = 11_689_512
N_OUTER = 1500
GOAL_SECONDS = 2 * 3600


def gpu_problem() -> str | None:
    """Why this machine cannot run the GPU benchmark (``None`` if it can)."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if not torch.cuda.is_available():
        return "PyTorch sees no CUDA device"
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # ImportError or a CUDA runtime error
        return f"CuPy with a CUDA device is needed for the QR on CuPy blocks ({exc.__class__.__name__}: {exc})"
    return None


def _sync(device: str):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_hvp(name: str, n: int, blocks, hvp_batch, device: str, image_size=None) -> dict:
    """Best seconds per Hessian-vector product of net ``name`` over the vmapped block sizes ``blocks``."""
    import torch

    from overlap_experiments import models
    from overlap_experiments.hessian import HessianOperator

    arch, shape, classes, _, _ = NETS[name]
    if image_size is not None:
        shape = (3, image_size, image_size)
    model = models.build(arch, seed=0)
    X, y = sample(shape, classes, n)
    D = sum(p.numel() for p in model.parameters())
    row = {"net": name, "D": int(D), "N": n, "input": list(shape), "hvp_batch": hvp_batch, "blocks": {}}
    for b in blocks:
        V = np.random.default_rng(1).standard_normal((D, b)).astype(np.float32)
        try:
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            op = HessianOperator(model, X, y, block=b, batch_size=hvp_batch, device=device, vectorize=True)
            op.matmat(V[:, :1])
            _sync(device)
            t0 = time.perf_counter()
            op.matmat(V)
            _sync(device)
            t = (time.perf_counter() - t0) / b
            mem = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
            row["blocks"][str(b)] = {"seconds_per_hvp": t, "peak_gpu_gib": mem}
            print(f"  {name:9s} N={n:5d} block={b:3d} batch={hvp_batch}: {t:.4f} s/HVP"
                  + (f", peak {mem:.1f} GiB" if mem is not None else ""), flush=True)
        except RuntimeError as exc:  # CUDA out of memory and friends: record, try the next block size
            row["blocks"][str(b)] = {"error": str(exc).splitlines()[0][:300]}
            print(f"  {name:9s} block={b}: failed ({row['blocks'][str(b)]['error']})", flush=True)
        finally:
            op = None
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
    ok = [v["seconds_per_hvp"] for v in row["blocks"].values() if "seconds_per_hvp" in v]
    row["seconds_per_hvp"] = min(ok) if ok else None
    return row


def _fill(arr, seed: int = 0, rows_per_write: int | None = None):
    """Fill a D × n Zarr array with Gaussian float32 rows, chunk-aligned writes."""
    D, n = arr.shape
    step = rows_per_write or arr.chunks[0]
    rng = np.random.default_rng(seed)
    for s in range(0, D, step):
        e = min(s + step, D)
        arr[s:e] = rng.standard_normal((e - s, n), dtype=np.float32)


def time_qr_and_thin(rows: int, n_outer: int, n_inner: int, scratch: Path, gpu: bool) -> dict:
    """TSQR of a ``rows × n_outer`` float32 Zarr sketch (on CuPy blocks when ``gpu``), and the thin products."""
    import zarr

    from sketchla.decompositions._run import generator_rows
    from sketchla.linalg import inner, tsqr
    from sketchla.random import TestMatrix

    chunk_rows = max(n_outer, (32 * 2**20) // (4 * n_outer))
    a_path, q_path = scratch / "A.zarr", scratch / "Q.zarr"
    A = zarr.create_array(store=str(a_path), shape=(rows, n_outer), chunks=(chunk_rows, n_outer),
                          dtype="float32", compressors=None, overwrite=True)
    t0 = time.perf_counter()
    _fill(A)
    t_fill = time.perf_counter() - t0
    print(f"  sketch {rows:,} × {n_outer} float32 written in {t_fill:.1f}s", flush=True)
    t0 = time.perf_counter()
    Q, R = tsqr(A, out=str(q_path), gpu=gpu)
    t_qr = time.perf_counter() - t0
    print(f"  tsqr (gpu={gpu}): {t_qr:.2f}s", flush=True)
    t0 = time.perf_counter()
    G = inner(Q, Q, gpu=gpu)
    G = G.get() if hasattr(G, "get") else np.asarray(G)
    orth = float(np.abs(G - np.eye(n_outer)).max())
    t_orth = time.perf_counter() - t0
    ups = TestMatrix((rows, n_inner), seed=0, name="upsilon", dtype=np.float32)
    omg = TestMatrix((rows, n_inner), seed=0, name="omega", dtype=np.float32)
    rc = generator_rows(rows)
    t0 = time.perf_counter()
    inner(ups.to_dask(row_chunk=rc), [A, Q])
    inner(omg.to_dask(row_chunk=rc), Q)
    t_thin = time.perf_counter() - t0
    print(f"  ||QᵀQ − I||_max = {orth:.2e} ({t_orth:.1f}s); thin products {t_thin:.2f}s", flush=True)
    for p in (a_path, q_path):
        shutil.rmtree(p, ignore_errors=True)
    return {"rows": rows, "n_outer": n_outer, "n_inner": n_inner, "chunk_rows": chunk_rows, "gpu": gpu,
            "seconds_fill": t_fill, "seconds_qr": t_qr, "orthogonality_max": orth, "seconds_orth_check": t_orth,
            "seconds_thin_products": t_thin}


def time_solves(n_outer: int, n_inner: int) -> float:
    """Seconds of the SEIGH core (Alg. 2 lines 4–8) on random inputs of the full sizes."""
    from sketchla.decompositions._core import seigh_core

    rng = np.random.default_rng(0)
    M = rng.standard_normal((n_inner, n_inner))
    M = M + M.T
    UQ = rng.standard_normal((n_inner, n_outer))
    OQ = rng.standard_normal((n_inner, n_outer))
    t0 = time.perf_counter()
    seigh_core(M, UQ, OQ)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="run on the CPU (a dry run of the script; use with --quick)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: N = 8, 32×32 images, QR of 200,000 × 16")
    p.add_argument("--nets", nargs="+", default=list(CONVNETS), choices=list(CONVNETS))
    p.add_argument("--blocks", type=int, nargs="+", default=None, help="vmapped columns per HVP pass to try "
                   "(default 8 16 32; --quick: 2)")
    p.add_argument("--hvp-batch", type=int, default=None, help="images per curvlinops mini-batch "
                   "(default per net 250 / 100 / 16)")
    p.add_argument("--qr-rows", type=int, default=None, help="rows of the QR sketch (default: 2,000,000, or "
                   "fewer if the scratch disk is short; scaled to D = 11,689,512)")
    p.add_argument("--n-outer", type=int, default=None, help=f"n_O (default {N_OUTER}; --quick: 16)")
    p.add_argument("--scratch", default=None, help="folder for the Zarr sketch (default: a temporary folder)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "gpu_resnet18.json"))
    a = p.parse_args(argv)

    why = None if a.cpu else gpu_problem()
    if why is not None:
        print(f"gpu_resnet18.py needs a CUDA GPU: {why}. Run it on a GPU machine (with "
              "pip install cupy-cuda12x), or use --cpu --quick for a CPU dry run of the script.", file=sys.stderr)
        return 2
    import torch

    device = "cpu" if a.cpu else "cuda"
    n_outer = a.n_outer or (16 if a.quick else N_OUTER)
    n_inner = 2 * n_outer + 1
    blocks = a.blocks or ([2] if a.quick else [8, 16, 32])
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"gpu_resnet18 on {name}" + (" [quick]" if a.quick else ""), flush=True)

    print("1. per-HVP time at the Table 1 Hessian sample sizes", flush=True)
    hvps = []
    for net in a.nets:
        n = 8 if a.quick else NETS[net][3]
        hb = a.hvp_batch or NETS[net][4]
        hvps.append(time_hvp(net, n, blocks, None if hb >= n else hb, device, 32 if a.quick else None))

    scratch = Path(a.scratch) if a.scratch else Path(tempfile.mkdtemp(prefix="gpu_resnet18_"))
    scratch.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(scratch).free
    fit = int(0.8 * free // (2 * n_outer * 4))
    want = a.qr_rows or (200_000 if a.quick else 2_000_000)
    rows = max(n_outer, min(want, fit, D_RESNET))
    if rows < want:
        print(f"  scratch {scratch} has {free / 2**30:.0f} GiB free: QR on {rows:,} rows", flush=True)
    print(f"2./3. QR and thin products of a {rows:,} × {n_outer} float32 sketch", flush=True)
    try:
        qr = time_qr_and_thin(rows, n_outer, n_inner, scratch, gpu=device == "cuda")
    finally:
        if not a.scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    scale = D_RESNET / rows
    print("4. core solves", flush=True)
    t_solve = time_solves(n_outer, n_inner)
    print(f"  seigh_core n_I={n_inner}, n_O={n_outer}: {t_solve:.2f}s", flush=True)

    res18 = next((h for h in hvps if h["net"] == "resnet18"), None)
    per_hvp = res18["seconds_per_hvp"] if res18 else None
    t_qr, t_thin = qr["seconds_qr"] * scale, qr["seconds_thin_products"] * scale
    est = None
    if per_hvp is not None:
        t_meas = n_inner * per_hvp
        t_issue = t_meas + t_qr + t_solve
        est = {"n_inner": n_inner, "n_outer": n_outer, "N": res18["N"], "D": D_RESNET,
               "measurement_seconds": t_meas, "qr_seconds": t_qr, "solve_seconds": t_solve,
               "thin_products_seconds": t_thin, "T_issue_seconds": t_issue, "T_full_seconds": t_issue + t_thin,
               "goal_seconds": GOAL_SECONDS, "meets_goal": bool(t_issue + t_thin <= GOAL_SECONDS),
               "qr_scaled_from_rows": rows}
        print(f"\nResNet-18 SEIGH (n_O={n_outer}, n_I={n_inner}, N={res18['N']}) on {name}:")
        print(f"  n_I × per-HVP = {n_inner} × {per_hvp:.3f}s = {t_meas / 3600:.2f} h")
        print(f"  QR {t_qr:.0f}s (measured on {rows:,} rows × {scale:.2f}), solves {t_solve:.1f}s, "
              f"thin products {t_thin:.0f}s")
        print(f"  T_issue = {t_issue / 3600:.2f} h, T_full = {(t_issue + t_thin) / 3600:.2f} h "
              f"(goal ≤ 2 h: {'met' if est['meets_goal'] else 'NOT met'})"
              + ("  [quick: sizes are not the paper's]" if a.quick else ""))
    report = {"benchmark": "gpu_resnet18", "device": device, "device_name": name, "quick": a.quick,
              "torch": torch.__version__, "hvp": hvps, "qr": qr, "solve_seconds": t_solve, "estimate": est}
    write_report(a.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
