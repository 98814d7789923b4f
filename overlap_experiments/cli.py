"""Command line entry point ``overlap-experiments``.

Subcommands:

* ``run PROBLEM --out DIR`` — train, compute exact and sketched Hessian
  eigenspaces and their overlap with parameter-magnitude masks, write
  ``results.json`` and the figures (``mnist16``: :mod:`overlap_experiments.run_mnist`;
  ``cifar10_3c3d``, ``cifar100_allcnnc``, ``imagenet_resnet18``:
  :mod:`overlap_experiments.run_large`, SEIGH only, on Dask / dask-cuda);
* ``synthetic --out DIR`` — the synthetic Grassmannian study of paper
  Alg. 3 / Table 2 (:mod:`overlap_experiments.synthetic`);
* ``proxies --out DIR`` — the overlap proxies of appendix A.2, Figs 6–7
  (:mod:`overlap_experiments.run_proxies`).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    from . import problems

    p.add_argument("problem", help=f"problem name ({', '.join(problems.names())})")
    p.add_argument("--out", required=True, help="output folder (created; an existing run there is resumed)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, mini-batches, Hessian samples "
                   "and sketches (default 0)")
    p.add_argument("--steps", type=int, default=None, help="SGD steps (default: the problem's, 1000 for mnist16; "
                   "the last checkpoint for the large problems)")
    p.add_argument("--n-outer", type=int, default=None, help="SEIGH outer sketch size n_O (default: paper Table 1, "
                   "355 / 1000 / 1000 / 1500)")
    p.add_argument("--n-inner", type=int, default=None, help="SEIGH inner sketch size n_I = number of HVPs "
                   "(default 2·n_O + 1, Tropp et al. 2019)")
    p.add_argument("--data-root", default=None, help="mnist16: folder with MNIST in torchvision's layout "
                   "(ROOT/MNIST/raw/*-ubyte), default scikit-learn's bundled digits upsampled to 16x16; large "
                   "problems: CIFAR-10/100 in torchvision's layout (ROOT/cifar-10-batches-py, "
                   "ROOT/cifar-100-python) or ImageNet as ROOT/{train,val}/<class>/*.JPEG")
    p.add_argument("--exact-steps", type=int, nargs="+", default=None,
                   help="steps with exact Hessian eigendecompositions (default 0 100 1000)")
    p.add_argument("--sketch-steps", type=int, nargs="+", default=None,
                   help="steps with SEIGH (mnist16 default 0 10 50 100 250 500 1000; large problems: every "
                        "checkpoint)")
    p.add_argument("--splits", nargs="+", default=None, choices=["train", "test"],
                   help="Hessian samples to analyse (default: train test for mnist16 and cifar10_3c3d, "
                        "test for cifar100_allcnnc and imagenet_resnet18, as paper Table 1)")
    p.add_argument("--exact-splits", nargs="+", default=None, choices=["train", "test"],
                   help="splits with exact Hessians (default: the first of --splits, i.e. train; "
                        "each exact Hessian costs 7030 HVPs and a dense eigendecomposition)")
    p.add_argument("--exact-dtype", default="float32", choices=["float32", "float64"],
                   help="precision of the dense eigendecomposition (default float32, like the HVPs)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="half-minute smoke run (100 steps, 50 Hessian samples, n_O=20)")
    mode.add_argument("--paper", action="store_true", help="the paper's full sweep: exact and sketched analysis "
                      "at every checkpoint (every 5th step to 250, log-spaced to 1000); hours on 2 cores")
    cl = p.add_mutually_exclusive_group()
    cl.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://host:port) for the SEIGH "
                    "measurements; default: threads in this process")
    cl.add_argument("--workers", type=int, default=None, help="start a local Dask cluster with N worker processes "
                    "for the SEIGH measurements")
    p.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS threads for NumPy/SciPy (default 1: the "
                   "BLAS work is small and thread teams stall on busy machines; 0 = library default)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    lg = p.add_argument_group("large problems (cifar10_3c3d, cifar100_allcnnc, imagenet_resnet18; paper §6.2)")
    lg.add_argument("--synthetic", action="store_true", help="labelled synthetic images instead of --data-root "
                    "(dry runs; the networks keep their paper sizes)")
    lg.add_argument("--checkpoints", type=int, nargs="+", default=None, help="checkpoint steps (default 2000 4000 "
                    "8000; step 0 is always added)")
    lg.add_argument("--hessian-samples", type=int, default=None, help="N per Hessian split (default paper Table 1: "
                    "500 / 1000 / 5000), balanced over classes")
    lg.add_argument("--gpu", action="store_true", help="start a dask_cuda.LocalCUDACluster (one worker per GPU, "
                    "--workers to limit) for the Hessian measurements")
    lg.add_argument("--device", default="auto", help="torch device of training and HVPs: auto (CUDA if "
                    "available), cpu, cuda, cuda:N (default auto)")
    lg.add_argument("--no-vectorize", action="store_true", help="one HVP per column instead of vmapped blocks")
    lg.add_argument("--hvp-block", type=int, default=None, help="columns per vmapped HVP pass (default 16)")
    lg.add_argument("--hvp-batch", type=int, default=None, help="images per curvlinops mini-batch in an HVP "
                    "(default 250 / 100 / 16; memory ∝ hvp-block × hvp-batch)")
    lg.add_argument("--batch-size", type=int, default=None, help="SGD mini-batch B (default paper Table 1)")
    lg.add_argument("--image-size", type=int, default=None, help="synthetic image side (default 32 / 32 / 224)")
    lg.add_argument("--train-threads", type=int, default=None, help="torch threads while training (default: torch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="overlap-experiments",
        description="Parameter-magnitude masks vs Hessian eigenspaces (Fernandez et al.), on sketchla.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="train a problem and measure exact/sketched overlap (paper §6)",
                         description="Train PROBLEM with SGD, compute exact (small D) and SEIGH Hessian "
                                     "eigenspaces at checkpoints, and their overlap with parameter-magnitude "
                                     "masks; writes results.json and figures to --out.")
    _add_run_arguments(run)
    syn = sub.add_parser("synthetic", help="Grassmannian metrics on random subspaces (paper Alg. 3, Table 2)",
                         description="Synthetic study of Grassmannian metrics (paper Alg. 3, Appendix A.4, Table 2).")
    from . import synthetic

    synthetic.add_arguments(syn)
    prx = sub.add_parser("proxies", help="cheaper overlap proxies on 16×16 MNIST (paper App. A.2, Figs 6-7)",
                         description="GGN and H² subtraces (Eq. 7) and the SAM measure (Eq. 8) vs overlap and k/D.")
    from . import run_proxies

    run_proxies.add_arguments(prx)
    return p


def _print_summary(res: dict) -> None:
    D = res["n_params"]
    print(f"\n{res['problem']['title']}: D = {D} parameters, data = {res['data_source']['name']}")
    print(f"{'split':5s} {'step':>5s} {'test acc':>8s} {'k':>4s} {'exact':>8s} {'sketched':>8s} "
          f"{'chance':>8s} {'exact/chance':>12s}")
    for split, by in res["summary"].items():
        for s in sorted(by, key=int):
            acc = res["checkpoints"][s]["test_acc"]
            for k, r in sorted(by[s].items(), key=lambda kv: int(kv[0])):
                ex = f"{r['exact']:.4f}" if "exact" in r else "-"
                skd = f"{r['sketched']:.4f}" if "sketched" in r else "-"
                ratio = f"{r['ratio_exact']:.1f}" if "ratio_exact" in r else (
                    f"{r['ratio_sketched']:.1f}*" if "ratio_sketched" in r else "-")
                print(f"{split:5s} {s:>5s} {acc:8.2%} {k:>4s} {ex:>8s} {skd:>8s} {r['chance']:8.4f} {ratio:>12s}")
    t = res["timings"]
    print(f"(* = sketched/chance)  total {t['total']:.0f}s: training {t['train']:.0f}s, exact Hessians "
          f"{t['exact_hessian']:.0f}s + eigh {t['exact_eigh']:.0f}s, SEIGH {t['seigh']:.0f}s")


_LARGE_ONLY = ("synthetic", "checkpoints", "hessian_samples", "gpu", "no_vectorize", "hvp_block", "hvp_batch",
               "batch_size", "image_size", "train_threads")


def _print_large_summary(res: dict) -> None:
    D = res["n_params"]
    print(f"\n{res['problem']['title']} {res['problem']['model_name']}: D = {D:,}, {res['label']} "
          f"({res['data_source']['name']})")
    print(f"{'split':5s} {'step':>6s} {'k':>5s} {'overlap':>10s} {'chance':>10s} {'ratio':>8s} {'top |λ|':>10s} "
          f"{'s/HVP':>7s}")
    for split, by in res["overlap"].items():
        for s in sorted(by, key=int):
            e = by[s]
            n = len(e["overlap"])
            for k in sorted({k for k in (1, 10, 100, 1000) if k <= n} | {n}):
                hv = e["timings"]["per_hvp"]
                print(f"{split:5s} {s:>6s} {k:5d} {e['overlap'][k - 1]:10.3e} {e['chance'][k - 1]:10.3e} "
                      f"{e['ratio'][k - 1]:8.1f} {abs(e['eigenvalues'][0]):10.3e} "
                      f"{hv if hv is None else round(hv, 3)!s:>7s}")
    t = res["timings"]
    print(f"total {t['total']:.0f}s: training {t['train']:.0f}s, SEIGH and overlap {t['seigh']:.0f}s")


def _cmd_run_large(args) -> int:
    from . import run_large

    if args.paper or args.exact_steps or args.exact_splits or args.exact_dtype != "float32":
        raise ValueError("--paper, --exact-steps, --exact-splits and --exact-dtype are for mnist16 only (the large "
                         "problems have no exact Hessians)")
    cfg = run_large.make_large_config(
        args.problem, seed=args.seed, steps=args.steps, checkpoints=args.checkpoints, sketch_steps=args.sketch_steps,
        n_outer=args.n_outer, n_inner=args.n_inner, splits=args.splits, hessian_samples=args.hessian_samples,
        synthetic=args.synthetic, image_size=args.image_size, data_root=args.data_root,
        batch_size=args.batch_size, device=args.device, vectorize=not args.no_vectorize,
        hvp_block=args.hvp_block, hvp_batch=args.hvp_batch, scheduler=args.scheduler, workers=args.workers,
        gpu=args.gpu, train_threads=args.train_threads, quick=args.quick,
    )
    res = run_large.run_large(args.out, cfg, progress=not args.no_progress, figures=not args.no_figures)
    _print_large_summary(res)
    print(f"wrote {args.out}/results.json ({res['label']})"
          + (f" and {len(res.get('figures', []))} figures" if not args.no_figures else ""))
    return 0


def _cmd_run(args) -> int:
    from . import run_large, run_mnist

    if args.problem in run_large.LARGE_PROBLEMS:
        return _cmd_run_large(args)
    given = [n for n in _LARGE_ONLY if getattr(args, n) not in (None, False)] + (
        ["device"] if args.device != "auto" else [])
    if given:
        raise ValueError(f"--{given[0].replace('_', '-')} is an option of the large problems "
                         f"({', '.join(run_large.LARGE_PROBLEMS)}), not of {args.problem}")

    cfg = run_mnist.make_config(
        args.problem, seed=args.seed, steps=args.steps, n_outer=args.n_outer, n_inner=args.n_inner,
        data_root=args.data_root, quick=args.quick, paper=args.paper, scheduler=args.scheduler,
        workers=args.workers, exact_steps=args.exact_steps, sketch_steps=args.sketch_steps,
        splits=args.splits or ("train", "test"), exact_splits=args.exact_splits, exact_dtype=args.exact_dtype,
    )
    if args.blas_threads < 0:
        raise ValueError(f"--blas-threads={args.blas_threads} must be >= 0")
    cfg.blas_threads = args.blas_threads or None
    res = run_mnist.run_problem(args.out, cfg, progress=not args.no_progress, figures=not args.no_figures)
    _print_summary(res)
    print(f"wrote {args.out}/results.json" + (f" and {len(res.get('figures', []))} figures" if not args.no_figures else ""))
    return 0


def main(argv=None) -> int:
    # OpenMP thread teams that spin while waiting stall badly when the cores are
    # shared (measured: 10x slower SGD steps on a loaded 2-core machine); a
    # passive wait costs nothing otherwise. Only effective before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("distributed", "numexpr", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "synthetic":
        from . import synthetic

        return synthetic.run(args)
    try:
        if args.command == "proxies":
            from . import run_proxies

            return run_proxies.run(args)
        return _cmd_run(args)
    except (NotImplementedError, ImportError) as exc:
        print(f"overlap-experiments: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError) as exc:
        if args.verbose:
            raise
        print(f"overlap-experiments: error: {exc}", file=sys.stderr)
        return 2
