"""The GPU run (issue 17): Hessian products, CuPy QR and an end-to-end SEIGH on one GPU.

Run by ``benchmarks/gpu_check.sh`` one stage per process (a stage that fails
or runs out of time leaves the others' figures intact); each stage writes
``OUT/<stage>.json`` and ``report`` merges them into ``OUT/gpu_check.json``.

Stages
------
``peaks``  the device's ceilings, measured in the same run: device-to-device
           copy (bytes read + written), host↔device copies, FP32 GEMM (CuPy,
           cuBLAS SGEMM), TF32 GEMM (PyTorch, the mode cuDNN convolutions use
           by default), FP64 GEMM, and the scratch disk's write/read rate.
``hvp``    per Hessian-vector product for each net of paper Table 1 at its
           Hessian sample size (MLP N = 500, 3c3d 1000, All-CNN-C 1000,
           ResNet-18 5000 images at 224×224; synthetic inputs, seeded
           initial weights), one vector at a time (``vectorize=False``)
           against vmapped blocks (``vectorize=True``), and the gradient over
           the same N with the same mini-batches (ratio HVP / gradient).
``qr``     the SEIGH linear algebra of the paper's ResNet-18 run (n_O = 1500,
           n_I = 3001) on CuPy blocks, on a row subset of the D = 11,689,512
           sketch written to Zarr on the scratch disk (the full sketch is 70 GB,
           more than the disk): TSQR exactly as ``seigh(gpu=True)`` calls it
           (Alg. 2 line 3), the thin products ΥᵀY, ΥᵀQ, ΩᵀQ (Y of 3000 columns
           stood in for by the sketch read twice), the eigenvector product
           Q·U, and the n_I × n_I core solve (lines 4–8) at full size. The
           in-memory kernels (leaf QR, node QR, GEMM) are timed alone for
           their TFLOP/s. Times scale linearly with the rows (TSQR and the
           thin products are linear in D).
``seigh``  an end-to-end ResNet-18 SEIGH (n_O = 32, n_I = 65, 500 images)
           through a ``dask_cuda.LocalCUDACluster`` worker building the Hessian
           on its GPU (a :class:`sketchla.operators.RecipeOperator`), with
           ``gpu=True`` linear algebra, and its top-5 eigenvalues against
           Lanczos (``scipy.sparse.linalg.eigsh``) on the same GPU products.
``report`` the extrapolated wall time of the paper's full run (n_O = 1500,
           n_I = 3001, N = 5000) on this GPU, stage by stage, against the
           goals (≤ 2 h in all, ≤ 2 s per ResNet-18 HVP, HVP / gradient ≤ 3),
           and the ``pytest -m gpu`` outcome (``OUT/pytest_gpu.xml``).

    python benchmarks/gpu_check.py peaks --out OUT       # one stage (see gpu_check.sh)
    python benchmarks/gpu_check.py all --cpu --quick --out /tmp/dry   # CPU dry run, tiny sizes
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _nets import NETS, sample, synthetic_hessian  # noqa: E402
from _report import write_report  # noqa: E402

#: the paper's ResNet-18 run (Table 1, §6.2)
D_RESNET = 11_689_512
PAPER_N_OUTER, PAPER_N_INNER, PAPER_N = 1500, 3001, 5000
GOALS = {"total_hours": 2.0, "resnet18_hvp_seconds": 2.0, "hvp_over_gradient": 3.0}
STAGES = ("peaks", "hvp", "variants", "qr", "seigh")
#: what ``all`` (and gpu_check.sh by default) runs; ``variants`` is an extra comparison
DEFAULT_STAGES = ("peaks", "hvp", "qr", "seigh")

#: net → (Table 1 N as the issue states it, per-vector mini-batch, vmapped block, vmapped mini-batch) on a GPU
HVP_PLAN = {
    "mnist_mlp": (500, None, 16, None),
    "3c3d": (1000, None, 16, 250),
    "allcnnc": (1000, 250, 8, 125),
    "resnet18": (5000, 128, 8, 32),
}
#: the same for the CPU dry run (--quick): tiny N, ResNet-18 at 32×32
HVP_PLAN_QUICK = {net: (8, None, 2, None) for net in HVP_PLAN}


# --------------------------------------------------------------------------- device helpers
class Device:
    """The array module and synchronisation of the run: CuPy + CUDA, or NumPy for a CPU dry run."""

    def __init__(self, cpu: bool):
        self.cpu = cpu
        if cpu:
            self.xp, self.torch_device, self.name = np, "cpu", platform.processor() or "CPU"
        else:
            import cupy
            import torch

            self.xp, self.torch_device = cupy, "cuda"
            self.name = torch.cuda.get_device_name()

    def sync(self):
        if self.cpu:
            return
        import torch

        self.xp.cuda.Device().synchronize()
        torch.cuda.synchronize()

    def timed(self, fn, repeats: int = 1, warmup: int = 1):
        """Median seconds of ``repeats`` calls of ``fn`` after ``warmup`` calls (device synchronised)."""
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    def random(self, shape, dtype, seed=0):
        xp = self.xp
        if xp is np:
            return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32).astype(dtype)
        return xp.random.default_rng(seed).standard_normal(shape, dtype=xp.float32).astype(dtype)


def gpu_problem() -> str | None:
    """Why this machine cannot run the GPU stages (``None`` if it can)."""
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
        return f"CuPy with a CUDA device is needed ({exc.__class__.__name__}: {exc})"
    return None


# --------------------------------------------------------------------------- peaks
def stage_peaks(a, dev: Device) -> dict:
    """The ceilings every later figure is compared with (same run, same device)."""
    xp = dev.xp
    q = a.quick
    out = {}
    n_bytes = (64 if q else 4096) * 2**20
    src = xp.ones(n_bytes // 4, dtype=xp.float32)
    dst = xp.empty_like(src)
    t = dev.timed(lambda: dst.__setitem__(slice(None), src), repeats=5)
    out["device_copy_GBps"] = 2 * n_bytes / t / 1e9  # read + write
    host = np.ones(n_bytes // 4 // 4, dtype=np.float32)  # 1 GiB pageable host buffer on the GPU
    t = dev.timed(lambda: xp.asarray(host), repeats=3)
    out["host_to_device_GBps"] = host.nbytes / t / 1e9
    d = xp.asarray(host)
    to_host = (lambda: d.get()) if xp is not np else (lambda: d.copy())
    t = dev.timed(to_host, repeats=3)
    out["device_to_host_GBps"] = host.nbytes / t / 1e9
    del src, dst, d
    m = 512 if q else 8192
    for name, dt in (("fp32", np.float32), ("fp64", np.float64)):
        A = dev.random((m, m), dt, 1)
        B = dev.random((m, m), dt, 2)
        t = dev.timed(lambda: A @ B, repeats=5)
        out[f"gemm_{name}_TFLOPs"] = 2 * m**3 / t / 1e12
    if not dev.cpu:
        import torch

        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            A = torch.randn((m, m), device="cuda")
            B = torch.randn((m, m), device="cuda")
            t = dev.timed(lambda: A @ B, repeats=5)
            out["gemm_tf32_TFLOPs"] = 2 * m**3 / t / 1e12
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old
        out["cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        free, total = torch.cuda.mem_get_info()
        out["gpu_memory_GiB"] = total / 2**30
    out.update(_disk_rates(a.scratch, (64 if q else 2048) * 2**20))
    return out


def _disk_rates(scratch: Path, n_bytes: int) -> dict:
    """Sequential write (with fsync) and read-back rate of a file on the scratch disk.

    The read comes from the page cache (nothing here may drop it), as do the
    sketch reads of the ``qr`` stage, whose sketch fits in this machine's RAM.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / "disk_rate.bin"
    buf = np.random.default_rng(0).integers(0, 255, size=n_bytes, dtype=np.uint8)
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        f.write(buf)
        f.flush()
        os.fsync(f.fileno())
    t_w = time.perf_counter() - t0
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        while f.read(64 * 2**20):
            pass
    t_r = time.perf_counter() - t0
    path.unlink()
    return {"disk_write_fsync_GBps": n_bytes / t_w / 1e9, "disk_read_cached_GBps": n_bytes / t_r / 1e9,
            "disk_free_GB": shutil.disk_usage(scratch).free / 1e9}


# --------------------------------------------------------------------------- hvp
def _grad_seconds(op, batch_size, dev: Device) -> float:
    """Seconds of one full gradient of the mean loss over the operator's sample, same mini-batches."""
    import torch

    model, X, y = op.model, op.X, op.y
    N = X.shape[0]
    bs = N if batch_size is None else batch_size
    loss_fn = torch.nn.CrossEntropyLoss(reduction="mean")

    def grad():
        for p in model.parameters():
            p.grad = None
        for i in range(0, N, bs):
            xb, yb = X[i:i + bs], y[i:i + bs]
            (loss_fn(model(xb), yb) * (xb.shape[0] / N)).backward()

    return dev.timed(grad, repeats=1 if N * X[0].numel() > 10**8 else 3)


def _hvp_run(net, n, batch, block, vectorize, V, dev, image_size, repeats):
    """Seconds per HVP (columns of ``V``) and the product ``H V[:, :1]`` for one configuration."""
    import torch

    kw = dict(image_size=image_size, batch_size=batch, device=dev.torch_device, block=block)
    warm = synthetic_hessian(net, min(n, batch or n), 0, **kw)  # cuDNN plans, allocator, AD setup
    warm.vectorize = vectorize
    warm.matmat(V[:, :block] if vectorize else V[:, :1])
    del warm
    if not dev.cpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    op = synthetic_hessian(net, n, 0, **kw)
    op.vectorize = vectorize
    cols = V[:, :block] if vectorize else V[:, :1]
    res = {}
    t = dev.timed(lambda: res.__setitem__("HV", op.matmat(cols)), repeats=repeats, warmup=0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if not dev.cpu else None
    return t / cols.shape[1], res["HV"][:, :1].copy(), peak, op


def _hvp_net(net, plan, dev: Device, a) -> dict:
    import torch

    n, batch, block, vbatch = plan
    arch, shape, classes, _, _ = NETS[net]
    image_size = 32 if (a.quick and len(shape) == 3) else None
    D = None
    row = {"net": net, "N": n, "batch_per_vector": batch, "vmapped_block": block, "batch_vmapped": vbatch,
           "input": list(shape[:1]) + [image_size] * 2 if image_size else list(shape)}
    small = net != "resnet18" or a.quick
    repeats = 3 if small else 1
    try:
        t1, hv1, peak1, op = _hvp_run(net, n, batch, 1, False, _V(net, dev, a, block), dev, image_size, repeats)
        D = op.shape[0]
        row.update(D=int(D), seconds_per_hvp_one_vector=t1, peak_gpu_GiB_one_vector=peak1)
        row["seconds_gradient"] = _grad_seconds(op, batch, dev)
        row["hvp_over_gradient"] = t1 / row["seconds_gradient"]
        del op
        if not dev.cpu:
            torch.cuda.empty_cache()
    except Exception as exc:  # record and go on: the next net may still fit
        row["error_one_vector"] = _err(exc)
        hv1 = None
    for attempt in range(2):
        try:
            tb, hvb, peakb, op = _hvp_run(net, n, vbatch, block, True, _V(net, dev, a, block), dev, image_size,
                                          repeats)
            row.update(seconds_per_hvp_vmapped=tb, peak_gpu_GiB_vmapped=peakb, batch_vmapped=vbatch)
            row["seconds_gradient_vmapped_batch"] = _grad_seconds(op, vbatch, dev)
            row["hvp_vmapped_over_gradient"] = tb / row["seconds_gradient_vmapped_batch"]
            if hv1 is not None:
                row["max_rel_diff_vmapped_vs_one"] = float(np.abs(hvb - hv1).max() / max(np.abs(hv1).max(), 1e-30))
            del op
            break
        except Exception as exc:
            row["error_vmapped"] = _err(exc)
            if "out of memory" not in str(exc) or not vbatch or vbatch < 2:
                break
            vbatch //= 2  # one retry with half the mini-batch
            if not dev.cpu:
                torch.cuda.empty_cache()
    if "seconds_per_hvp_vmapped" in row and "seconds_per_hvp_one_vector" in row:
        row["ratio_vmapped_to_one_vector"] = row["seconds_per_hvp_vmapped"] / row["seconds_per_hvp_one_vector"]
    best = [(row[k], row.get(r)) for k, r in (("seconds_per_hvp_one_vector", "hvp_over_gradient"),
                                               ("seconds_per_hvp_vmapped", "hvp_vmapped_over_gradient")) if k in row]
    row["seconds_per_hvp_best"], row["hvp_over_gradient_best"] = min(best) if best else (None, None)
    print(f"  {net:9s} D={row.get('D') or 0:>11,} N={n:5d}: 1-by-1 {row.get('seconds_per_hvp_one_vector', float('nan')):.4f} s, "
          f"vmapped×{block} {row.get('seconds_per_hvp_vmapped', float('nan')):.4f} s per HVP, gradient "
          f"{row.get('seconds_gradient', float('nan')):.4f} s, HVP/grad {row.get('hvp_over_gradient', float('nan')):.2f}",
          flush=True)
    return row


_V_CACHE = {}


def _V(net, dev, a, block):
    """Random float32 test columns for net ``net`` (host NumPy; the operator moves them)."""
    if net not in _V_CACHE:
        from overlap_experiments import models

        D = models.count_parameters(models.build(NETS[net][0], seed=0))
        _V_CACHE[net] = np.random.default_rng(1).standard_normal((D, max(block, 1)), dtype=np.float32)
    return _V_CACHE[net]


def _err(exc) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:400] if str(exc) else ''}"


def stage_hvp(a, dev: Device) -> dict:
    import torch

    plan = HVP_PLAN_QUICK if a.quick else HVP_PLAN
    rows = []
    for net in a.nets:
        rows.append(_hvp_net(net, plan[net], dev, a))
        a.save({"rows": rows})
    return {"rows": rows, "torch": torch.__version__, "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "note": "seconds per HVP: one timed product after a warm-up on one mini-batch; small nets: median "
                    "of 3. Gradient: the same N and mini-batches as the one-vector HVP."}


def _to_channels_last(op):
    """Put a HessianOperator's conv net and images in channels-last layout (NHWC, what tensor-core
    convolutions prefer); rebuilds its mini-batch list and drops the built curvlinops operator."""
    import torch

    op.model = op.model.to(memory_format=torch.channels_last)
    op.params = [p for p in op.model.parameters() if p.requires_grad]
    op.X = op.X.contiguous(memory_format=torch.channels_last)
    bs = op._data[0][0].shape[0]
    op._data = [(op.X[i:i + bs], op.y[i:i + bs]) for i in range(0, op.n_samples, bs)]
    op._op = None
    op._setup_done = False


def _hvp_rev_rev(op, V):
    """H V by reverse-over-reverse (double backward): per mini-batch one forward and one
    gradient with ``create_graph``, then one backward of ⟨g, v⟩ per column (graph reused)."""
    import torch

    model, X, y, params = op.model, op.X, op.y, op.params
    N = X.shape[0]
    bs = op._data[0][0].shape[0]
    V = torch.as_tensor(V, device=X.device, dtype=X.dtype)
    sizes = [p.numel() for p in params]
    cols = [torch.split(V[:, j], sizes) for j in range(V.shape[1])]
    cols = [[c.view_as(p) for c, p in zip(col, params)] for col in cols]
    out = torch.zeros_like(V)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="mean")
    for i in range(0, N, bs):
        xb, yb = X[i:i + bs], y[i:i + bs]
        loss = loss_fn(model(xb), yb) * (xb.shape[0] / N)
        g = torch.autograd.grad(loss, params, create_graph=True)
        for j, col in enumerate(cols):
            dot = sum((gi * vi).sum() for gi, vi in zip(g, col))
            hv = torch.autograd.grad(dot, params, retain_graph=j < len(cols) - 1)
            out[:, j] += torch.cat([h.reshape(-1) for h in hv])
    return out.cpu().numpy()


def stage_variants(a, dev: Device) -> dict:
    """HVP variants of --variant-net (ResNet-18) at N = --variant-n, same run: which way of computing H V is fastest.

    Each variant is checked against the curvlinops product of the base variant (relative
    difference of the first column); the fastest is then timed at the paper's N = 5000.
    """
    import torch

    net = a.variant_net
    n = a.variant_n
    image = len(NETS[net][1]) == 3
    image_size = 32 if a.quick and image else None
    V = _V(net, dev, a, 16)
    # name, method, block, batch, cudnn.benchmark, channels_last. Measured on an H200 (2026-11-30, N = 1000):
    # base 0.82 s/HVP, + cudnn.benchmark 0.71, + channels-last 1.18 (functorch has no batching rule for
    # as_strided_ and falls back to a loop); the stage ran out of time before the rest
    variants = [
        ("vmap8_b32_bench", "curvlinops", 8, 32, True, False),
        ("revrev8_b64_bench", "revrev", 8, 64, True, False),
        ("vmap16_b64_bench", "curvlinops", 16, 64, True, False),
        ("revrev8_b64_bench_nhwc", "revrev", 8, 64, True, True),
    ]
    if not image:  # channels-last is a layout of image batches
        variants = [v for v in variants if not v[5]]
    if a.quick:
        variants = [(nm, m, min(b, 2), None, bench, cl) for nm, m, b, _, bench, cl in variants]
    rows, ref = [], None

    def run(name, method, block, batch, bench, nhwc, N):
        torch.backends.cudnn.benchmark = bench
        kw = dict(image_size=image_size, batch_size=batch, device=dev.torch_device, block=block)
        cols = V[:, :block]
        warm = synthetic_hessian(net, min(N, batch or N), 0, **kw)
        op = synthetic_hessian(net, N, 0, **kw)
        for o in (warm, op):
            if nhwc:
                _to_channels_last(o)
        fn = (lambda o: o.matmat(cols)) if method == "curvlinops" else (lambda o: _hvp_rev_rev(o, cols))
        fn(warm)
        del warm
        if not dev.cpu:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        box = {}
        t = dev.timed(lambda: box.__setitem__("HV", fn(op)), repeats=1, warmup=0)
        peak = torch.cuda.max_memory_allocated() / 2**30 if not dev.cpu else None
        tg = _grad_seconds(op, batch, dev)
        del op
        if not dev.cpu:
            torch.cuda.empty_cache()
        return t / block, box["HV"][:, :1].copy(), peak, tg

    for name, method, block, batch, bench, nhwc in variants:
        row = {"variant": name, "method": method, "block": block, "batch": batch, "cudnn_benchmark": bench,
               "channels_last": nhwc, "N": n}
        try:
            t, hv, peak, tg = run(name, method, block, batch, bench, nhwc, n)
            if ref is None:
                ref = hv
            row.update(seconds_per_hvp=t, peak_gpu_GiB=peak, seconds_gradient=tg, hvp_over_gradient=t / tg,
                       max_rel_diff_vs_base=float(np.abs(hv - ref).max() / max(np.abs(ref).max(), 1e-30)))
        except Exception as exc:
            row["error"] = _err(exc)
        rows.append(row)
        a.save({"rows": rows, "net": net, "N": n})
        print(f"  {name:24s} N={n}: " + (f"{row['seconds_per_hvp']:.4f} s/HVP, grad {row['seconds_gradient']:.4f} s, "
              f"HVP/grad {row['hvp_over_gradient']:.2f}, rel diff {row['max_rel_diff_vs_base']:.1e}, "
              f"peak {row['peak_gpu_GiB'] or 0:.1f} GiB" if "error" not in row else row["error"]), flush=True)
    ok = [r for r in rows if "seconds_per_hvp" in r and r["max_rel_diff_vs_base"] < 1e-2]
    out = {"rows": rows, "net": net, "N": n}
    if ok:
        best = min(ok, key=lambda r: r["seconds_per_hvp"])
        N5 = a.variant_full_n
        spec = next(v for v in variants if v[0] == best["variant"])
        try:
            t, _, peak, tg = run(*spec, N5)
            out["best_at_full_N"] = {"variant": best["variant"], "N": N5, "seconds_per_hvp": t,
                                     "seconds_gradient": tg, "hvp_over_gradient": t / tg, "peak_gpu_GiB": peak}
            print(f"  best {best['variant']} at N={N5}: {t:.4f} s/HVP, grad {tg:.4f} s, HVP/grad {t / tg:.2f}",
                  flush=True)
        except Exception as exc:
            out["best_at_full_N"] = {"variant": best["variant"], "error": _err(exc)}
    torch.backends.cudnn.benchmark = False
    return out


# --------------------------------------------------------------------------- qr
def _qr_flops(m, n):
    """Householder QR (geqrf) flops of an m×n block: 2mn² − 2n³/3."""
    return 2.0 * m * n * n - 2.0 * n**3 / 3


def _kernel_rates(dev: Device, n: int, m: int) -> dict:
    """In-memory rates of the TSQR kernels on one leaf block (no I/O)."""
    # the private leaf/node kernels themselves are what this stage measures (their ceilings
    # against the streamed TSQR); no public API promises them, so this import stays private
    from sketchla.linalg import _kernels as K

    xp = dev.xp
    A = dev.random((m, n), np.float32, 3)
    out = {"leaf_rows": m, "n": n}
    t = dev.timed(lambda: K.local_r(A), repeats=3)
    out["leaf_qr_r_seconds"], out["leaf_qr_r_TFLOPs"] = t, _qr_flops(m, n) / t / 1e12
    t = dev.timed(lambda: K.local_qr(A), repeats=3)
    out["leaf_qr_reduced_seconds"], out["leaf_qr_reduced_TFLOPs"] = t, 2 * _qr_flops(m, n) / t / 1e12
    S = dev.random((n, n), np.float32, 4)
    t = dev.timed(lambda: A @ S, repeats=3)
    out["leaf_gemm_seconds"], out["leaf_gemm_TFLOPs"] = t, 2.0 * m * n * n / t / 1e12
    stack = [xp.triu(dev.random((n, n), np.float64, 5 + i)) for i in range(2)]
    t = dev.timed(lambda: K.node_qr(*stack), repeats=3)
    out["node_qr_fp64_seconds"], out["node_qr_fp64_TFLOPs"] = t, 2 * _qr_flops(2 * n, n) / t / 1e12
    return out


def _write_sketch(dev: Device, path, rows, n, row_block, chunk):
    """A rows × n float32 Gaussian sketch in Zarr with the measurement engine's chunking."""
    import zarr

    from sketchla.backend import asnumpy

    A = zarr.create_array(store=str(path), shape=(rows, n), chunks=(row_block, chunk), dtype="float32",
                          compressors=None, fill_value=0.0, overwrite=True)
    for s in range(0, rows, row_block):
        e = min(s + row_block, rows)
        A[s:e] = asnumpy(dev.random((e - s, n), np.float32, 10 + s // row_block))
    return A


def stage_qr(a, dev: Device) -> dict:
    import dask.array as da
    import zarr

    from sketchla import BlockPlan, TestMatrix, inner, matmul, seigh_core, tsqr
    from sketchla.linalg import inner_products
    from sketchla.backend import asnumpy, on_device
    from sketchla.random import TILE_ROWS

    gpu = not dev.cpu
    n_o = a.n_outer
    n_i = 2 * n_o + 1
    rows = a.qr_rows
    # the blocking seigh(chunk=...) gives its sketch: Zarr chunks of row_block × chunk
    plan = BlockPlan(chunk=a.chunk).for_sketch(rows, rows, n_i)
    row_block, chunk = plan.row_block, a.chunk
    out = {"rows": rows, "n_outer": n_o, "n_inner": n_i, "row_chunk": row_block, "col_chunk": chunk,
           "gpu": gpu, "scale_to_D": D_RESNET / rows}
    out["kernels"] = _kernel_rates(dev, n_o, 2**17 if not a.quick else 4 * n_o)
    print(f"  kernels: leaf R {out['kernels']['leaf_qr_r_TFLOPs']:.1f} TFLOP/s, "
          f"GEMM {out['kernels']['leaf_gemm_TFLOPs']:.1f}, node QR fp64 {out['kernels']['node_qr_fp64_TFLOPs']:.2f}",
          flush=True)
    scratch = Path(a.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        A = _write_sketch(dev, scratch / "Y.zarr", rows, n_o, row_block, chunk)
        out["seconds_write_sketch"] = time.perf_counter() - t0
        nbytes = rows * n_o * 4
        t0 = time.perf_counter()
        for s in range(0, rows, row_block):
            A[s:s + row_block]
        out["seconds_read_sketch_host"] = time.perf_counter() - t0
        print(f"  sketch {rows:,} × {n_o} float32 ({nbytes / 1e9:.1f} GB) written in {out['seconds_write_sketch']:.1f}s, "
              f"read in {out['seconds_read_sketch_host']:.1f}s", flush=True)

        # Alg. 2 line 3, as seigh(gpu=True) runs it: full-width row blocks of the sketch, Q in the same chunks
        Qz = zarr.create_array(store=str(scratch / "Q.zarr"), shape=(rows, n_o), chunks=(row_block, n_o),
                               dtype="float32", compressors=None, fill_value=0.0, overwrite=True)
        t0 = time.perf_counter()
        tsqr(on_device(da.from_zarr(A, chunks=(row_block, n_o)), gpu), out=Qz, block_rows=max(row_block, n_o),
             gpu=gpu)
        t_qr = time.perf_counter() - t0
        # "auto" on a Gaussian sketch is a 2-pass Cholesky QR: bytes: the sketch read twice (Gram pass,
        # then Q = A R⁻¹), Q written once; flops: a float64 syrk (mn²) and a triangular solve (mn²) per block
        out.update(seconds_tsqr=t_qr, tsqr_GBps=3 * nbytes / t_qr / 1e9,
                   tsqr_TFLOPs=2.0 * rows * n_o**2 / t_qr / 1e12)
        G = inner(Qz, Qz, gpu=gpu)
        out["orthogonality_max"] = float(np.abs(asnumpy(G) - np.eye(n_o)).max())
        print(f"  tsqr (gpu={gpu}): {t_qr:.2f}s, {out['tsqr_GBps']:.1f} GB/s, ‖QᵀQ − I‖_max = "
              f"{out['orthogonality_max']:.1e}", flush=True)

        # thin products (seigh.py): Υᵀ[Y, Q] and ΩᵀQ in one pass over Y ([A, A] stands in) and Q
        rc, br = plan.thin_blocking(rows, TILE_ROWS)
        ups = TestMatrix((rows, n_i), seed=0, name="upsilon", dtype="float32")
        omg = TestMatrix((rows, n_i), seed=0, name="omega", dtype="float32")
        t0 = time.perf_counter()
        inner_products([ups, omg], [A, A, Qz], [(0, 0), (0, 1), (0, 2), (1, 2)], block_rows=br, gpu=gpu)
        t_thin = time.perf_counter() - t0
        t0 = time.perf_counter()
        ups.to_dask(row_block=rc).sum().compute()
        t_gen = time.perf_counter() - t0
        out.update(seconds_thin_products=t_thin, seconds_generate_one_test_matrix=t_gen)
        print(f"  thin products {t_thin:.2f}s (generating one {rows:,} × {n_i} Gaussian test matrix "
              f"alone: {t_gen:.2f}s)", flush=True)

        # eigenvectors Q·U (Alg. 2 line 8 applied), streamed into Zarr
        U = np.linalg.qr(np.random.default_rng(7).standard_normal((n_o, n_o)))[0]
        Vz = zarr.create_array(store=str(scratch / "V.zarr"), shape=(rows, n_o), chunks=(row_block, n_o),
                               dtype="float32", compressors=None, fill_value=0.0, overwrite=True)
        t0 = time.perf_counter()
        matmul(Qz, U, out=Vz, gpu=gpu, block_rows=row_block)
        out["seconds_qu"] = time.perf_counter() - t0
    finally:
        for name in ("Y.zarr", "Q.zarr", "V.zarr"):
            shutil.rmtree(scratch / name, ignore_errors=True)

    # lines 4-8 at the paper's full size (host, float64)
    rng = np.random.default_rng(0)
    M = rng.standard_normal((n_i, n_i))
    t0 = time.perf_counter()
    seigh_core(M + M.T, rng.standard_normal((n_i, n_o)), rng.standard_normal((n_i, n_o)))
    out["seconds_core_solve"] = time.perf_counter() - t0
    print(f"  Q·U {out['seconds_qu']:.2f}s; core solve n_I={n_i}, n_O={n_o}: {out['seconds_core_solve']:.2f}s",
          flush=True)
    return out


# --------------------------------------------------------------------------- seigh
def stage_seigh(a, dev: Device) -> dict:
    import scipy.sparse.linalg as sla
    from distributed import Client

    import sketchla as sk

    net, N, (n_o, n_i) = a.seigh_net, a.seigh_samples, a.seigh_sizes
    image_size = 32 if a.quick and len(NETS[net][1]) == 3 else None
    kw = dict(image_size=image_size, batch_size=a.seigh_batch, block=8)
    out = {"net": net, "N": N, "n_outer": n_o, "n_inner": n_i, "image_size": image_size or NETS[net][1][-1],
           "chunk": a.chunk}
    t0 = time.perf_counter()
    if dev.cpu:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0")
    else:
        from dask_cuda import LocalCUDACluster

        cluster = LocalCUDACluster(n_workers=1, threads_per_worker=4, dashboard_address=":0")
    client = Client(cluster)
    out["seconds_cluster_start"] = time.perf_counter() - t0
    out["cluster"] = type(cluster).__name__
    scratch = Path(a.scratch) / "seigh.zarr"
    try:
        from overlap_experiments import models

        D = models.count_parameters(models.build(NETS[net][0], seed=0))
        recipe = sk.RecipeOperator(synthetic_hessian, net, N, 0, shape=(D, D), dtype="float32", symmetric=True,
                                has_adjoint=True, device="auto", **kw)
        t0 = time.perf_counter()
        res = sk.seigh(recipe, n_o, n_i, seed=0, store=str(scratch), client=client, gpu=not dev.cpu,
                       chunk=a.chunk, progress=False, n_probes=a.seigh_probes)
        out["seconds_seigh"] = time.perf_counter() - t0
        out["timings"] = res.timings
        lam = np.asarray(res.eigenvalues, dtype=np.float64)
        out["eigenvalues_seigh"] = lam[:10].tolist()
        a.save(out)
        vecs = np.asarray(res.eigenvectors[:, :min(5, n_o)].compute())
        if res.error is not None:  # the library's own a-posteriori certificate (Gaussian probes)
            out["error_estimate"] = {k: getattr(res.error, k) for k in ("frobenius", "spectral_bound", "approx_frobenius")
                                     if isinstance(getattr(res.error, k, None), float)}
        print(f"  SEIGH D={D:,} on {out['cluster']}: {out['seconds_seigh']:.1f}s {res.timings}; top |λ| "
              f"{np.array2string(lam[:5], precision=4)}; error estimate {out.get('error_estimate')}", flush=True)
    finally:
        client.close()
        cluster.close()

    op = synthetic_hessian(net, N, 0, device=dev.torch_device, **dict(kw, batch_size=a.eigsh_batch))
    count = [0]

    def mv(v):
        count[0] += 1
        return np.asarray(op.matmat(np.asarray(v, dtype=np.float32).reshape(-1, 1)), dtype=np.float64).ravel()

    L = sla.LinearOperator((D, D), matvec=mv, dtype=np.float64)
    t0 = time.perf_counter()
    k = min(5, n_o)
    # Lanczos started from the sum of SEIGH's top-k eigenvectors plus noise: fewer products when the
    # sketch is close, and the Krylov space still converges to the true eigenpairs when it is not
    v0 = np.asarray(vecs.sum(axis=1), dtype=np.float64)
    v0 /= max(np.linalg.norm(v0), 1e-30)
    v0 += 0.1 * np.random.default_rng(0).standard_normal(D) / np.sqrt(D)
    vals = sla.eigsh(L, k=k, which="LM", tol=1e-4, ncv=max(20, 2 * k + 1), return_eigenvectors=False, v0=v0)
    out["seconds_eigsh"] = time.perf_counter() - t0
    out["eigsh_matvecs"] = count[0]
    ref = vals[np.argsort(-np.abs(vals))]
    top = lam[:k]
    out["eigenvalues_eigsh"] = ref.tolist()
    out["rel_err_top5"] = (np.abs(top - ref) / np.abs(ref)).tolist()
    out["max_rel_err_top5"] = float(np.max(out["rel_err_top5"]))
    print(f"  top-5 |λ| SEIGH {np.array2string(top, precision=4)} vs eigsh {np.array2string(ref, precision=4)} "
          f"({count[0]} products, {out['seconds_eigsh']:.1f}s): max rel. error {out['max_rel_err_top5']:.2e}",
          flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- report
def _pytest_summary(path: Path) -> dict | None:
    """Counts and failures from pytest's JUnit XML."""
    if not path.exists():
        return None
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    out = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    out["seconds"] = float(suite.get("time", 0.0))
    out["passed"] = out["tests"] - out["failures"] - out["errors"] - out["skipped"]
    bad = []
    for case in suite.iter("testcase"):
        for tag in ("failure", "error"):
            el = case.find(tag)
            if el is not None:
                msg = (el.get("message") or "").splitlines()
                bad.append(f"{case.get('classname')}::{case.get('name')}: {msg[0][:300] if msg else tag}")
    out["failed"] = bad
    return out


def extrapolate(hvp: dict | None, qr: dict | None, variants: dict | None = None) -> dict | None:
    """Wall time of the paper's full ResNet-18 SEIGH on this GPU, stage by stage (seconds).

    The per-HVP time is the fastest ResNet-18 product measured at the paper's N: the ``hvp``
    stage's, or the ``variants`` stage's fastest variant timed again at that N."""
    if not hvp or not qr or "seconds_tsqr" not in qr:
        return None
    res = next((r for r in hvp.get("rows", []) if r["net"] == "resnet18"), None)
    if res is None or not res.get("seconds_per_hvp_best"):
        return None
    per_hvp, how = res["seconds_per_hvp_best"], "hvp stage"
    best = ((variants or {}).get("best_at_full_N") or {}) if (variants or {}).get("net") == "resnet18" else {}
    if best.get("seconds_per_hvp") and best.get("N") == res["N"] and best["seconds_per_hvp"] < per_hvp:
        per_hvp, how = best["seconds_per_hvp"], f"variant {best['variant']}"
    s = D_RESNET / qr["rows"]
    n_i = qr["n_inner"]
    est = {
        "measurement": n_i * per_hvp,
        "qr": qr["seconds_tsqr"] * s,
        "thin_products": qr["seconds_thin_products"] * s,
        "core_solve": qr["seconds_core_solve"],
        "eigenvectors_QU": qr["seconds_qu"] * s,
    }
    est["total"] = sum(est.values())
    k = qr["kernels"]
    blocks = D_RESNET / k["leaf_rows"]
    est["qr_compute_only"] = blocks * (k["leaf_qr_r_seconds"] + k["leaf_gemm_seconds"])
    est["hours_total"] = est["total"] / 3600
    est["assumptions"] = (f"HVP at N = {res['N']} ({how}: {per_hvp:.3f} s), times n_I = {n_i} applications; "
                          f"QR, thin products and Q·U measured on {qr['rows']:,} rows and scaled by "
                          f"{s:.2f} (linear in D); core solve measured at full size; storage (Y {D_RESNET * n_i * 4 / 1e9:.0f} GB "
                          f"+ Q {D_RESNET * qr['n_outer'] * 4 / 1e9:.0f} GB) assumed available")
    return est


def stage_report(a) -> dict:
    out_dir = Path(a.out)
    parts = {}
    for st in STAGES:
        p = out_dir / f"{st}.json"
        parts[st] = json.loads(p.read_text()) if p.exists() else None
    hvp, qr = parts["hvp"], parts["qr"]
    est = extrapolate(hvp, qr, parts["variants"])
    res18 = next((r for r in (hvp or {}).get("rows", []) if r["net"] == "resnet18"), {}) if hvp else {}
    goals = {
        "total_hours": {"goal": GOALS["total_hours"], "value": est and est["hours_total"]},
        "resnet18_hvp_seconds": {"goal": GOALS["resnet18_hvp_seconds"], "value": res18.get("seconds_per_hvp_best")},
        "hvp_over_gradient": {"goal": GOALS["hvp_over_gradient"],
                              "value": res18.get("hvp_over_gradient_best", res18.get("hvp_over_gradient"))},
    }
    for g in goals.values():
        g["met"] = None if g["value"] is None else bool(g["value"] <= g["goal"])
    report = {"benchmark": "gpu_check", "pytest_gpu": _pytest_summary(out_dir / "pytest_gpu.xml"),
              **parts, "extrapolation_seconds": est, "goals": goals}
    _print_summary(report)
    return report


def _print_summary(r):
    print("\n== gpu_check summary ==")
    pt = r.get("pytest_gpu")
    if pt:
        print(f"pytest -m gpu: {pt['passed']} passed, {pt['failures']} failed, {pt['errors']} errors, "
              f"{pt['skipped']} skipped")
        for f in pt["failed"]:
            print("   FAILED", f)
    pk = r.get("peaks")
    if pk:
        print("peaks: " + ", ".join(f"{k} {v:.1f}" for k, v in pk.items() if isinstance(v, float)))
    for row in (r.get("hvp") or {}).get("rows", []):
        print(f"hvp {row['net']}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                                                if isinstance(v, float)))
    qr = r.get("qr")
    if qr:
        print("qr: " + ", ".join(f"{k} {v:.4g}" for k, v in qr.items() if isinstance(v, float)))
    sg = r.get("seigh")
    if sg:
        print(f"seigh: {sg.get('seconds_seigh')}, max rel err top-5 {sg.get('max_rel_err_top5')}")
    est = r.get("extrapolation_seconds")
    if est:
        print("paper-size SEIGH on this GPU (s): " + ", ".join(f"{k} {v:.0f}" for k, v in est.items()
                                                               if isinstance(v, float)))
    print("goals: " + ", ".join(f"{k} {g['value']} (≤ {g['goal']}: {g['met']})" for k, g in r["goals"].items()))


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=STAGES + ("report", "all"))
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "gpu_check"),
                   help="folder of the stage JSONs and gpu_check.json")
    p.add_argument("--scratch", default=None, help="folder for the Zarr sketches (default: a temporary folder)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU: a dry run of the script (use with --quick)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (N = 8, 32×32 images, 20,000-row sketch)")
    p.add_argument("--nets", nargs="+", default=list(HVP_PLAN), choices=list(HVP_PLAN))
    p.add_argument("--qr-rows", type=int, default=None, help="rows of the QR sketch (default 2**19; --quick 20000)")
    p.add_argument("--n-outer", type=int, default=None, help=f"n_O of the QR stage (default {PAPER_N_OUTER}; "
                   "--quick 16)")
    p.add_argument("--variant-net", default="resnet18", choices=list(HVP_PLAN), help="net of the HVP-variant "
                   "comparison")
    p.add_argument("--variant-n", type=int, default=None, help="images of the HVP-variant comparison "
                   "(default 500; --quick 8)")
    p.add_argument("--variant-full-n", type=int, default=None, help="images for the fastest variant's "
                   "second timing (default 5000; --quick 8)")
    p.add_argument("--chunk", type=int, default=8, help="columns per measurement task (seigh(chunk=)) and "
                   "the column chunk of the QR stage's sketch (default 8: one vmapped HVP block; the default "
                   "chunk at D = 11.7M would be 1 column, from a CPU memory budget)")
    p.add_argument("--seigh-net", default="resnet18", choices=list(HVP_PLAN))
    p.add_argument("--seigh-samples", type=int, default=None, help="Hessian sample of the SEIGH stage (default 500; "
                   "--quick 8)")
    p.add_argument("--seigh-sizes", type=int, nargs=2, default=None, metavar=("N_O", "N_I"),
                   help="SEIGH sizes (default 32 65; --quick 4 9)")
    p.add_argument("--eigsh-batch", type=int, default=None, help="images per mini-batch of the reference "
                   "Lanczos products (default 125; --quick all)")
    p.add_argument("--seigh-probes", type=int, default=4, help="a-posteriori error probes of the SEIGH stage")
    p.add_argument("--seigh-batch", type=int, default=None, help="images per HVP mini-batch in the SEIGH stage "
                   "(default 64)")
    a = p.parse_args(argv)
    a.qr_rows = a.qr_rows or (20_000 if a.quick else 2**19)
    a.n_outer = a.n_outer or (16 if a.quick else PAPER_N_OUTER)
    a.seigh_samples = a.seigh_samples or (8 if a.quick else 500)
    a.seigh_sizes = a.seigh_sizes or ((4, 9) if a.quick else (32, 65))
    a.seigh_batch = a.seigh_batch or (None if a.quick else 64)
    a.eigsh_batch = a.eigsh_batch or (None if a.quick else 125)
    a.variant_n = a.variant_n or (8 if a.quick else 500)
    a.variant_full_n = a.variant_full_n or (8 if a.quick else PAPER_N)
    if a.qr_rows < a.n_outer:
        p.error(f"--qr-rows {a.qr_rows} must be at least --n-outer {a.n_outer}")
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if a.stage == "report":
        write_report(out_dir / "gpu_check.json", stage_report(a))
        return 0
    if not a.cpu:
        why = gpu_problem()
        if why is not None:
            print(f"gpu_check.py needs a CUDA GPU: {why}. Use --cpu --quick for a CPU dry run.", file=sys.stderr)
            return 2
    tmp = None
    if a.scratch is None:
        tmp = tempfile.mkdtemp(prefix="gpu_check_")
        a.scratch = tmp
    a.scratch = Path(a.scratch)
    dev = Device(a.cpu)
    stages = DEFAULT_STAGES if a.stage == "all" else (a.stage,)
    rc = 0
    try:
        for st in stages:
            print(f"== {st} on {dev.name}" + (" [quick]" if a.quick else ""), flush=True)
            t0 = time.perf_counter()
            # a stage killed by its time limit keeps what it had saved: long stages call a.save(partial)
            a.save = (lambda part, st=st, t0=t0: write_report(
                out_dir / f"{st}.json", {**part, "ok": False, "partial": True, "stage": st,
                                         "seconds_stage": time.perf_counter() - t0, "device": dev.name}))
            try:
                res = globals()[f"stage_{st}"](a, dev)
                res["ok"] = True
            except Exception as exc:
                traceback.print_exc()
                res, rc = {"ok": False, "error": _err(exc)}, 1
            res.update(stage=st, seconds_stage=time.perf_counter() - t0, device=dev.name, quick=a.quick)
            write_report(out_dir / f"{st}.json", res)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if a.stage == "all":
        write_report(out_dir / "gpu_check.json", stage_report(a))
    return rc


if __name__ == "__main__":
    sys.exit(main())
