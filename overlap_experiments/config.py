"""Everything that determines a run (:class:`RunConfig`): the problem's defaults, presets, validation.

:func:`make_config` starts from the problem's entry (:mod:`.problems`: Table 1
and how the problem runs), fills in the ``quick`` or ``paper`` preset where
options are not given, and checks every value before any work starts (a
``ValueError`` naming the option). :func:`add_arguments` / :func:`from_args`
are the same options on the command line (``overlap-experiments run
PROBLEM``): every problem has the pipeline's options; problems with exact
Hessians add the exact analysis's, data sets with a generated stand-in add
``--synthetic`` and ``--image-size``.

Steps
-----
A problem's default step lists (``sketch_steps``, ``exact_steps``,
``checkpoints``, and those of a preset) are written for its default run
length; a run of ``steps`` SGD updates keeps the listed steps it reaches and
adds its last step. Steps given explicitly are taken as they are (and must
lie in [0, steps]). Checkpoints are saved at step 0, at every analysed step
and at the listed checkpoints; ``steps`` defaults to the problem's
``total_steps``, or to the last given checkpoint. SEIGH analyses, by default,
the problem's ``sketch_steps`` — or every checkpoint where checkpoints are
given.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import data, problems, progress
from .devices import resolve_device
from .overlap import k_for
from .paper_values import METRIC_RHOS

__all__ = ["RunConfig", "make_config", "add_arguments", "from_args"]

SPLITS = ("train", "test")


@dataclass
class RunConfig:
    """Everything that determines a run (written to results.json as ``config``).

    Steps: ``checkpoint_steps`` (saved), ``sketch_steps`` (SEIGH),
    ``exact_steps`` (dense Hessians; empty for problems without them).
    ``hessian_samples`` maps split → N. ``hvp_block`` is the number of
    columns per vmapped Hessian-vector-product pass, ``hvp_batch`` the
    samples per curvlinops mini-batch (memory ∝ hvp_block · hvp_batch);
    neither changes H. ``chunk``: columns per Dask measurement task.
    ``blas_threads``/``train_threads`` ``None``: the libraries' settings.
    """

    problem: str
    seed: int = 0
    steps: int = 0
    n_outer: int = 1
    n_inner: int | None = 3
    passes: int = 0
    hessian_samples: dict = field(default_factory=dict)
    splits: tuple = ("test",)
    exact_splits: tuple = ()
    checkpoint_steps: list = field(default_factory=list)
    exact_steps: list = field(default_factory=list)
    sketch_steps: list = field(default_factory=list)
    k_max_exact: int | None = None
    exact_method: str | None = None   # "lapack" (all eigenvalues) or "lanczos" (top k_max only; quick runs)
    exact_dtype: str = "float32"
    n_random_masks: int = 10
    data_root: str | None = None
    quick: bool = False
    scheduler: str | None = None
    workers: int | None = None
    chunk: int = 16
    blas_threads: int | None = None
    dense_fig16_until: int = 250
    synthetic: bool = False
    image_size: int | None = None
    synthetic_train: int = 256
    synthetic_test: int = 128
    augment: bool = False
    lr: float = 0.0
    batch_size: int = 1
    device: str = "auto"
    train_threads: int | None = None
    vectorize: bool = True
    hvp_block: int = 16
    hvp_batch: int | None = None
    gpu: bool = False

    @property
    def hvps(self) -> int:
        """Hessian-vector products of one SEIGH run: ``n_inner`` single-pass, ``(passes + 1)·n_outer``
        with ``passes`` of block Krylov (the certificate's 10 probes not counted)."""
        return seigh_hvps(self.n_outer, self.n_inner, self.passes)

    @property
    def label(self) -> str:
        """``"SYNTHETIC data"`` or ``"real data"``: said in logs, results and figure titles."""
        return "SYNTHETIC data" if self.synthetic else "real data"


def seigh_hvps(n_outer: int, n_inner: int | None, passes: int) -> int:
    """Hessian-vector products of a SEIGH run with these sizes (:func:`sketchla.seigh`)."""
    return n_inner if not passes else (passes + 1) * n_outer


def _pos_int(name, v, allow_none=False):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}={v!r} must be a positive int")
    return int(v)


def _given_steps(values, steps: int, name: str) -> list[int]:
    out = sorted({int(v) for v in values})
    bad = [v for v in out if v < 0 or v > steps]
    if bad:
        raise ValueError(f"{name} must lie in [0, steps={steps}], got {bad}")
    return out


def _fit(defaults, steps: int) -> list[int]:
    """A default step list, written for the default run length, fitted to a run of ``steps`` updates."""
    return sorted({int(s) for s in defaults if s <= steps} | {steps})


def make_config(problem: str = "mnist16", *, seed: int = 0, steps: int | None = None, checkpoints=None,
                sketch_steps=None, exact_steps=None, n_outer: int | None = None, n_inner: int | None = None,
                passes: int | None = None,
                splits=None, exact_splits=None, hessian_samples: int | None = None, data_root=None,
                synthetic: bool = False, image_size: int | None = None, synthetic_train: int | None = None,
                synthetic_test: int | None = None, batch_size: int | None = None, lr: float | None = None,
                device: str | None = None, vectorize: bool = True, hvp_block: int | None = None,
                hvp_batch: int | None = None, chunk: int | None = None, scheduler: str | None = None,
                workers: int | None = None, gpu: bool = False, train_threads: int | None = None,
                blas_threads: int | None = None, exact_dtype: str | None = None, quick: bool = False,
                paper: bool = False) -> RunConfig:
    """Resolve the defaults (the problem's entry, the ``quick`` / ``paper`` presets) and validate.

    ``None`` means "the problem's default" throughout; ``train_threads=0`` /
    ``blas_threads=0`` mean "the library's own setting". ``quick``: the
    problem's smoke preset (mnist16: 100 steps, 5 samples per class, n_O = 20,
    one exact Hessian by Lanczos; the §6.2 problems: 4 steps, N = 32, n_O = 8,
    32×32 synthetic images). ``paper``: exact and sketched analysis at every
    checkpoint of both splits (problems with exact Hessians; hours for mnist16).
    ``hessian_samples``: N of every split (default paper Table 1).
    ``passes``: SEIGH's passes q (:func:`sketchla.seigh`); 0 (default) is the
    paper's single pass with ``n_inner`` HVPs, q ≥ 1 is block Krylov with an
    exact Rayleigh–Ritz step and ``(q + 1)·n_outer`` HVPs (``n_inner`` unused).
    """
    prob = problems.get(problem)
    if not prob.exact_steps:
        given = [n for n, v in (("exact_steps", exact_steps), ("exact_splits", exact_splits),
                                ("exact_dtype", exact_dtype)) if v is not None] + (["paper"] if paper else [])
        if given:
            raise ValueError(f"{given[0]} applies to problems with exact Hessians (small D), not to {problem}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    if quick and paper:
        raise ValueError("quick and paper presets are mutually exclusive")
    preset = dict(prob.quick) if quick else {}
    step_lists = _steps(prob, preset, steps, checkpoints, sketch_steps, exact_steps, paper)
    n_outer = preset.get("n_outer", prob.n_outer) if n_outer is None else n_outer
    if isinstance(n_outer, bool) or not isinstance(n_outer, int) or not 1 <= n_outer <= prob.n_params:
        raise ValueError(f"n_outer={n_outer!r} must be an int in [1, D={prob.n_params}]")
    passes = 0 if passes is None else passes
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 0:
        raise ValueError(f"passes={passes!r} must be a non-negative int")
    if passes:
        if n_inner is not None:
            raise ValueError(f"n_inner={n_inner} applies to a single-pass sketch; with passes={passes} SEIGH makes "
                             f"(passes + 1)·n_outer HVPs: choose n_outer (e.g. n_outer = n_inner // {passes + 1} for "
                             "the same number of HVPs)")
        if seigh_hvps(n_outer, None, passes) > prob.n_params:
            raise ValueError(f"(passes + 1)·n_outer = {seigh_hvps(n_outer, None, passes)} exceeds D = {prob.n_params}")
    else:
        n_inner = problems.tropp_n_inner(n_outer) if n_inner is None else n_inner
        if isinstance(n_inner, bool) or not isinstance(n_inner, int) or not n_outer <= n_inner <= prob.n_params:
            raise ValueError(f"n_inner={n_inner!r} must be an int with n_outer={n_outer} <= n_inner <= "
                             f"D={prob.n_params}")
    samples = _samples(prob, preset, splits, hessian_samples)
    exact = _exact(prob, preset, samples["splits"], exact_splits, exact_dtype, n_outer, paper)
    data_options = _data(prob, preset, data_root, synthetic, image_size, synthetic_train, synthetic_test)
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr={lr!r} must be positive")
    B = prob.batch_size if batch_size is None else _pos_int("batch_size", batch_size)
    if synthetic and B > data_options["synthetic_train"]:
        raise ValueError(f"batch_size={B} exceeds the synthetic training set ({data_options['synthetic_train']}); "
                         "give batch_size or synthetic_train")
    products = _products(prob, seigh_hvps(n_outer, n_inner, passes), device, vectorize, hvp_block, hvp_batch, chunk,
                         scheduler, workers, gpu)
    return RunConfig(
        problem=problem, seed=seed, n_outer=n_outer, n_inner=n_inner, passes=passes, quick=bool(quick),
        lr=prob.lr if lr is None else float(lr), batch_size=B, augment=prob.augment,
        train_threads=_threads(prob.train_threads, train_threads, "train_threads"),
        blas_threads=_threads(prob.blas_threads, blas_threads, "blas_threads"),
        **step_lists, **samples, **exact, **data_options, **products,
    )


def _steps(prob, preset, steps, checkpoints, sketch_steps, exact_steps, paper) -> dict:
    """``steps`` and the step lists (module docstring, "Steps")."""
    steps = preset.get("steps") if steps is None else steps
    if steps is None:
        steps = max(checkpoints) if checkpoints else prob.total_steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps={steps!r} must be a non-negative int")
    if checkpoints is not None:
        ck = {0, *_given_steps(checkpoints, steps, "checkpoints")}
    else:
        ck = {0, *_fit(preset.get("checkpoints", prob.checkpoints), steps)}
    if sketch_steps is not None:
        sk_steps = _given_steps(sketch_steps, steps, "sketch_steps")
    elif "sketch_steps" in preset:
        sk_steps = _fit(preset["sketch_steps"], steps)
    elif checkpoints is not None or "checkpoints" in preset or paper:
        sk_steps = sorted(ck)
    else:
        sk_steps = _fit(prob.sketch_steps, steps)
    if not sk_steps:
        raise ValueError("sketch_steps must not be empty")
    if not prob.exact_steps:
        ex_steps = []
    elif exact_steps is not None:
        ex_steps = _given_steps(exact_steps, steps, "exact_steps")
    elif paper:
        ex_steps = sorted(ck)
    else:
        ex_steps = _fit(preset.get("exact_steps", prob.exact_steps), steps)
    return {"steps": steps, "checkpoint_steps": sorted(ck | set(sk_steps) | set(ex_steps)),
            "sketch_steps": sk_steps, "exact_steps": ex_steps}


def _samples(prob, preset, splits, hessian_samples) -> dict:
    """The Hessian splits and N per split (default paper Table 1)."""
    splits = tuple(prob.hessian_samples) if splits is None else tuple(dict.fromkeys(splits))
    if not splits or any(s not in SPLITS for s in splits):
        raise ValueError(f"splits={splits!r} must be a non-empty subset of {SPLITS}")
    hessian_samples = preset.get("hessian_samples") if hessian_samples is None else hessian_samples
    N = {}
    for s in splits:
        n = prob.hessian_samples.get(s) if hessian_samples is None else _pos_int("hessian_samples", hessian_samples)
        if n is None:
            raise ValueError(f"{prob.name} has no {s} Hessian sample in paper Table 1 (n.a.); give hessian_samples "
                             "to analyse it anyway")
        N[s] = n
    return {"splits": splits, "hessian_samples": N}


def _exact(prob, preset, splits, exact_splits, exact_dtype, n_outer, paper) -> dict:
    """Settings of the exact analysis (none for problems without exact Hessians)."""
    if not prob.exact_steps:
        return {"exact_splits": (), "exact_method": None, "k_max_exact": None, "exact_dtype": "float32"}
    if exact_splits is None:
        exact_splits = splits if paper else splits[:1]
    exact_splits = tuple(dict.fromkeys(exact_splits))
    if any(s not in splits for s in exact_splits):
        raise ValueError(f"exact_splits={exact_splits!r} must be a subset of splits={splits!r}")
    method = preset.get("exact_method", "lapack")
    D = prob.n_params
    # a full eigendecomposition keeps the eigenvectors Fig. 17 needs (up to ρ = 20 %); Lanczos 2·n_O
    k_max = min(2 * n_outer, D) if method == "lanczos" else min(max(k_for(D, max(METRIC_RHOS)), n_outer), D)
    exact_dtype = "float32" if exact_dtype is None else exact_dtype
    if exact_dtype not in ("float32", "float64"):
        raise ValueError(f"exact_dtype={exact_dtype!r} must be 'float32' or 'float64'")
    return {"exact_splits": exact_splits, "exact_method": method, "k_max_exact": k_max, "exact_dtype": exact_dtype}


def _data(prob, preset, data_root, synthetic, image_size, synthetic_train, synthetic_test) -> dict:
    """Where the data comes from: real files, the bundled data, or generated images of a given size."""
    src = data.SOURCES[prob.dataset]
    if image_size is None and synthetic:
        image_size = preset.get("image_size")
    if image_size is not None:
        _pos_int("image_size", image_size)
        if not synthetic:
            raise ValueError("image_size applies to synthetic data only (real images keep their size)")
        if prob.fixed_input_size and image_size != src.image_size:
            raise ValueError(f"{prob.name} needs {src.image_size}×{src.image_size} images (its first dense layer "
                             "has a fixed number of inputs)")
        if image_size < 8:
            raise ValueError(f"image_size={image_size} is too small for the networks (≥ 8)")
    if synthetic and not src.generated:
        raise ValueError(f"{prob.name} has no synthetic data (its data, {src.name}, is bundled)")
    if (synthetic_train is not None or synthetic_test is not None) and not synthetic:
        raise ValueError("synthetic_train/synthetic_test apply to synthetic data only")
    if not synthetic and data_root is None and not src.bundled:
        raise data.DataNotFoundError(f"{prob.name} needs --data-root with {src.layout}, or --synthetic for a "
                                     "labelled synthetic dry run")
    if synthetic and data_root is not None:
        raise ValueError("give either data_root (real data) or synthetic, not both")
    return {"data_root": None if data_root is None else str(Path(data_root).expanduser()),
            "synthetic": bool(synthetic), "image_size": image_size,
            "synthetic_train": 256 if synthetic_train is None else _pos_int("synthetic_train", synthetic_train),
            "synthetic_test": 128 if synthetic_test is None else _pos_int("synthetic_test", synthetic_test)}


def _products(prob, n_inner, device, vectorize, hvp_block, hvp_batch, chunk, scheduler, workers, gpu) -> dict:
    """How and where the Hessian-vector products run."""
    if not isinstance(vectorize, bool):
        raise TypeError(f"vectorize={vectorize!r} must be a bool")
    device = prob.device if device is None else device
    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"device={device!r} must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not (gpu or scheduler):  # on a cluster the device is the workers' business
        resolve_device(device)
    hvp_block = prob.hvp_block if hvp_block is None else _pos_int("hvp_block", hvp_block)
    hvp_batch = prob.hvp_batch if hvp_batch is None else _pos_int("hvp_batch", hvp_batch)
    workers = _pos_int("workers", workers, allow_none=True)
    if chunk is None:
        # one vmapped block per measurement task, or fewer columns so that every
        # local worker process gets at least two tasks (but ≥ 16 columns)
        chunk = hvp_block if workers is None else min(hvp_block, max(16, math.ceil(n_inner / (2 * workers))))
    if scheduler is not None:
        if workers is not None or gpu:
            raise ValueError("give either scheduler (an existing cluster) or workers/gpu (a local cluster), not both")
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise ValueError(f"scheduler={scheduler!r} must be an address like tcp://host:8786")
    return {"device": device, "vectorize": vectorize, "hvp_block": hvp_block, "hvp_batch": hvp_batch,
            "chunk": _pos_int("chunk", chunk), "scheduler": scheduler, "workers": workers, "gpu": bool(gpu)}


def _threads(default, given, name):
    """A thread count: ``None`` → the problem's ``default``, 0 → the library's own setting (``None``)."""
    if given is None:
        return default
    return None if given == 0 else _pos_int(name, given)


# ------------------------------------------------------------------------------------------ command line
def add_arguments(p: argparse.ArgumentParser, problem) -> argparse.ArgumentParser:
    """The options of ``overlap-experiments run PROBLEM`` for ``problem`` (a :class:`~.problems.Problem`)."""
    src = data.SOURCES[problem.dataset]
    n = problem.hessian_samples
    p.add_argument("--out", required=True, help="output folder (created; an existing run there is resumed)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, mini-batches, augmentation, Hessian "
                   "samples and sketches (default 0)")
    p.add_argument("--data-root", default=None, help=src.layout)
    st = p.add_argument_group("steps")
    st.add_argument("--steps", type=int, default=None, help=f"SGD steps (default {problem.total_steps}, or the "
                    "last of --checkpoints)")
    st.add_argument("--checkpoints", type=int, nargs="+", default=None, help="checkpoint steps, all analysed by "
                    "SEIGH unless --sketch-steps says otherwise (step 0 is always added)")
    st.add_argument("--sketch-steps", type=int, nargs="+", default=None, help="steps with SEIGH (default "
                    f"{' '.join(map(str, problem.sketch_steps))}, those the run reaches, plus its last step)")
    sk = p.add_argument_group("Hessians and sketches")
    sk.add_argument("--splits", nargs="+", default=None, choices=list(SPLITS),
                    help=f"Hessian samples to analyse (default {' '.join(n)}, as paper Table 1)")
    sk.add_argument("--hessian-samples", type=int, default=None, help="N per Hessian split, balanced over classes "
                    f"(default paper Table 1: {', '.join(f'{s} {v}' for s, v in n.items())})")
    sk.add_argument("--n-outer", type=int, default=None, help=f"SEIGH outer sketch size n_O (default {problem.n_outer},"
                    " paper Table 1)")
    sk.add_argument("--n-inner", type=int, default=None, help="SEIGH inner sketch size n_I = number of HVPs "
                    "(default 2·n_O + 1, Tropp et al. 2019)")
    sk.add_argument("--passes", type=int, default=None, help="SEIGH passes q: 0 (default) the paper's single "
                    "pass of n_I HVPs; q >= 1 block Krylov with an exact Rayleigh-Ritz step, (q + 1)·n_O HVPs, "
                    "sequential rounds (n_I unused; --passes 1 --n-outer 355 spends mnist16's default 711 HVPs)")
    tr = p.add_argument_group("training and Hessian-vector products")
    tr.add_argument("--batch-size", type=int, default=None, help=f"SGD mini-batch B (default {problem.batch_size}, "
                    "paper Table 1)")
    tr.add_argument("--device", default=None, help="torch device of training and HVPs: auto (CUDA if available), "
                    f"cpu, cuda, cuda:N (default {problem.device})")
    tr.add_argument("--train-threads", type=int, default=None, help="torch threads while training (default "
                    f"{problem.train_threads or 'torch’s'}; 0 = torch's)")
    tr.add_argument("--hvp-block", type=int, default=None, help=f"columns per vmapped HVP pass (default "
                    f"{problem.hvp_block})")
    tr.add_argument("--hvp-batch", type=int, default=None, help="samples per curvlinops mini-batch in an HVP "
                    f"(default {problem.hvp_batch or 'all N'}; memory ∝ hvp-block × hvp-batch)")
    tr.add_argument("--no-vectorize", action="store_true", help="one HVP per column instead of vmapped blocks")
    cl = p.add_argument_group("where the SEIGH measurements run (default: threads in this process)")
    where = cl.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:port; "
                       "its workers need --out on a shared file system)")
    where.add_argument("--workers", type=int, default=None, help="start a local Dask cluster with N worker "
                       "processes (with --gpu: at most N GPU workers)")
    cl.add_argument("--gpu", action="store_true", help="start a dask_cuda.LocalCUDACluster (one worker per GPU, "
                    "each building model + sample once on its GPU; QR and thin products on CuPy)")
    cl.add_argument("--blas-threads", type=int, default=None, help="OpenBLAS threads for NumPy/SciPy (default "
                    f"{problem.blas_threads or 'the library’s'}; 0 = the library's default)")
    presets = p.add_mutually_exclusive_group()
    presets.add_argument("--quick", action="store_true", help=f"smoke run: {_describe(problem.quick)}")
    if problem.exact_steps:
        ex = p.add_argument_group("exact Hessians (small D: the exact analysis of paper §6.1, App. B.1)")
        ex.add_argument("--exact-steps", type=int, nargs="+", default=None, help="steps with exact Hessian "
                        f"eigendecompositions (default {' '.join(map(str, problem.exact_steps))})")
        ex.add_argument("--exact-splits", nargs="+", default=None, choices=list(SPLITS),
                        help="splits with exact Hessians (default: the first of --splits; each costs D HVPs and "
                             "a dense eigendecomposition)")
        ex.add_argument("--exact-dtype", default=None, choices=["float32", "float64"],
                        help="precision of the dense eigendecomposition (default float32, like the HVPs)")
        presets.add_argument("--paper", action="store_true", help="the paper's full sweep: exact and sketched "
                             "analysis at every checkpoint of both splits (hours on 2 cores)")
    if src.generated:
        sy = p.add_argument_group("synthetic data (dry runs)")
        sy.add_argument("--synthetic", action="store_true", help="labelled synthetic images instead of "
                        "--data-root (the network keeps its paper size)")
        sy.add_argument("--image-size", type=int, default=None, help=f"synthetic image side (default "
                        f"{src.image_size})")
    out = p.add_argument_group("output")
    out.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    out.add_argument("--keep-stores", action=argparse.BooleanOptionalAction, default=True,
                     help="keep each SEIGH run store (out/seigh/, the bulk of the disk) once its analysis is cached "
                          "(default: keep; 'overlap-experiments clean OUT' deletes them later)")
    progress.add_argument(out)
    return p


def _describe(preset: dict) -> str:
    """A ``--quick`` preset in words."""
    words = {"steps": "{} SGD steps", "n_outer": "n_O = {}", "hessian_samples": "N = {} per split",
             "image_size": "{0}×{0} synthetic images", "exact_method": "exact eigenpairs by {}"}
    return ", ".join(words[k].format(v) for k, v in preset.items() if k in words)


#: make_config's options taken as they are from the parsed command line (absent ones: None)
_OPTIONS = ("seed", "steps", "checkpoints", "sketch_steps", "exact_steps", "n_outer", "n_inner", "passes",
            "splits", "exact_splits", "hessian_samples", "data_root", "image_size", "batch_size", "device", "hvp_block",
            "hvp_batch", "scheduler", "workers", "train_threads", "blas_threads", "exact_dtype")
_FLAGS = ("synthetic", "gpu", "quick", "paper")


def from_args(args: argparse.Namespace) -> RunConfig:
    """The :class:`RunConfig` of a parsed ``run PROBLEM`` command line."""
    return make_config(args.problem, vectorize=not args.no_vectorize,
                       **{k: getattr(args, k, None) for k in _OPTIONS},
                       **{k: bool(getattr(args, k, False)) for k in _FLAGS})
