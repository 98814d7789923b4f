"""Batched (vmapped) vs one-at-a-time Hessian-vector products for the paper's nets (issue 7).

For each net of paper Table 1 — the 16×16 MNIST tanh MLP (D = 7030), CIFAR-10
3c3d (895,210), CIFAR-100 All-CNN-C (1,387,108) and ImageNet ResNet-18
(11,689,512), all at their paper sizes — the loss Hessian on N random images of
the right shape (:class:`overlap_experiments.hessian.HessianOperator`) is
applied to one block of ``--block`` random columns

* ``vectorize=False``: one forward-over-reverse HVP per column (the baseline),
* ``vectorize=True``: the columns in vmapped passes of ``--block`` (torch.func),

after a one-column warm-up each. Both give the same H V (the largest relative
difference is reported). The table and ``benchmarks/out/hvp_batching.json``
give seconds per column, and the vectorised time as a ratio to the per-column
baseline of the same net in the same run (< 1: batching wins).

    python benchmarks/hvp_batching.py --quick           # N = 8, block 4, ResNet-18 at 32×32 (CPU: ~1 min)
    python benchmarks/hvp_batching.py --device cuda     # Table 1 N (500/500/1000/5000), block 16
    python benchmarks/hvp_batching.py --nets resnet18 --n 5000 --block 32 --hvp-batch 16
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _nets import NETS  # noqa: E402
from _nets import sample as _sample  # noqa: E402
from _report import best_seconds, write_report  # noqa: E402


def _model(arch: str):
    from overlap_experiments import models

    return models.build(arch, seed=0)


def _time_block(op, V, repeats: int) -> float:
    op.matmat(V[:, :1])  # warm-up: curvlinops setup, kernels, allocator
    return best_seconds(lambda: op.matmat(V), repeats)


def bench_net(name: str, n: int, block: int, hvp_batch, device: str, image_size, repeats: int) -> dict:
    """Seconds per column for vectorize False/True on net ``name``; ratio = vectorised / per-column."""
    from overlap_experiments.hessian import HessianOperator

    arch, shape, classes, _, _ = NETS[name]
    if image_size is not None and len(shape) == 3 and name == "resnet18":
        shape = (3, image_size, image_size)
    model = _model(arch)
    X, y = _sample(shape, classes, n)
    D = sum(p.numel() for p in model.parameters())
    V = np.random.default_rng(1).standard_normal((D, block)).astype(np.float32)
    row = {"net": name, "D": int(D), "N": n, "input": list(shape), "block": block, "hvp_batch": hvp_batch}
    outs = {}
    for vec in (False, True):
        op = HessianOperator(model, X, y, block=block, batch_size=hvp_batch, device=device, vectorize=vec)
        row["device"] = op.device
        t = _time_block(op, V, repeats)
        outs[vec] = op.matmat(V[:, :2])
        row["seconds_per_column_" + ("vectorized" if vec else "per_column")] = t / block
        del op
    row["ratio_vectorized_to_per_column"] = row["seconds_per_column_vectorized"] / row["seconds_per_column_per_column"]
    a, b = outs[False], outs[True]
    row["max_rel_diff"] = float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    p.add_argument("--n", type=int, default=None, help="Hessian sample size N (default paper Table 1; --quick: 8)")
    p.add_argument("--block", type=int, default=None, help="columns per block (default 16; --quick: 4)")
    p.add_argument("--hvp-batch", type=int, default=None, help="images per curvlinops mini-batch "
                   "(default per net: all / 250 / 100 / 16)")
    p.add_argument("--image-size", type=int, default=None, help="ResNet-18 input side (default 224; --quick: 32)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="N = 8, block 4, ResNet-18 at 32×32")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "hvp_batching.json"))
    a = p.parse_args(argv)
    import torch

    from overlap_experiments.hessian import resolve_device

    if a.threads:
        torch.set_num_threads(a.threads)
    device = str(resolve_device(a.device))
    block = a.block or (4 if a.quick else 16)
    image = a.image_size or (32 if a.quick else None)
    rows = []
    print(f"HVP batching on {device} (torch {torch.__version__}, {torch.get_num_threads()} threads)"
          + (" [quick]" if a.quick else ""))
    print(f"{'net':9s} {'D':>11s} {'N':>5s} {'block':>5s} {'s/col 1-by-1':>13s} {'s/col vmapped':>14s} "
          f"{'ratio':>6s} {'rel diff':>9s}")
    for name in a.nets:
        n = a.n or (8 if a.quick else NETS[name][3])
        hb = a.hvp_batch or NETS[name][4]
        hb = None if hb is not None and hb >= n else hb
        r = bench_net(name, n, block, hb, device, image, a.repeats)
        rows.append(r)
        print(f"{name:9s} {r['D']:11,d} {n:5d} {block:5d} {r['seconds_per_column_per_column']:13.4f} "
              f"{r['seconds_per_column_vectorized']:14.4f} {r['ratio_vectorized_to_per_column']:6.2f} "
              f"{r['max_rel_diff']:9.1e}", flush=True)
    report = {"benchmark": "hvp_batching", "quick": a.quick, "device": device,
              "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor(),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows,
              "note": "seconds are wall time of one block after warm-up (best of --repeats); "
                      "ratio = vectorized / per-column seconds per column, same run"}
    write_report(a.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
