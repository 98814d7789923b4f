"""``overlap-experiments run {cifar10_3c3d, cifar100_allcnnc, imagenet_resnet18}``: paper §6.2.

The three larger problems of paper Table 1 end to end, on Dask (GPU workers
through dask-cuda in real use), every stage resumable inside ``--out``:

1. data (:mod:`.image_data`): CIFAR-10/100 from torchvision's folders,
   ImageNet in ImageFolder layout, or a **synthetic** set of the right shapes
   (``--synthetic``; then ``results.json["synthetic"]`` is true and every
   figure title and log line says "SYNTHETIC"). The networks always have the
   paper's parameter counts (895,210 / 1,387,108 / 11,689,512, asserted).
2. SGD training (η, B of Table 1; DeepOBS-style random crop + flip for
   CIFAR-100 and ImageNet) with checkpoints at steps {2000, 4000, 8000}
   (configurable) plus step 0 (:mod:`.train`).
3. Fixed, class-balanced Hessian samples (Table 1: CIFAR-10 500 train /
   500 test, CIFAR-100 1000 test, ImageNet 5000 test; ``hessian_samples``
   overrides N), written once to ``out/hessian_samples/`` so that every Dask
   worker reads exactly the same images (no JPEG decoding, no data folder
   needed on the workers).
4. At every checkpoint and split: SEIGH (paper Alg. 2, ``sketchla.seigh``)
   of the sample's loss Hessian with n_O of Table 1 and n_I = 2·n_O + 1,
   the Hessian being a :class:`sketchla.operators.RecipeOperator`
   (:func:`hessian_recipe`) that each worker builds once
   (:func:`build_large_hessian_operator`: checkpoint + sample → a
   :class:`.hessian.HessianOperator` on the worker's device), measured into
   the Zarr run store ``out/seigh/{split}_step{step}_{id}.zarr`` (``id``: a hash of
   checkpoint, sample and sketch parameters, so a changed Hessian never reuses
   a store).
5. The sketched overlap (paper Eq. 3) between the top-k magnitude mask of the
   checkpoint's parameters and the top-k |λ| eigenvectors for every
   k ≤ n_O (:func:`sketchla.grassmann.overlap_curve`, which gathers only
   the n_O mask rows of the lazy eigenvectors), chance k/D and the ratio.
6. ``results.json`` and Figs. 3 and 4 (:mod:`.plots_large`).

Rerunning with the same settings skips finished work: training resumes from
its last checkpoint, Hessian samples and finished SEIGH stores are reused
(an interrupted SEIGH resumes inside its store), overlap curves are cached in
``out/analysis/``.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import overlap as ov
from . import problems
from .jsonio import write_json, write_results

logger = logging.getLogger(__name__)

__all__ = [
    "LARGE_PROBLEMS", "DEFAULT_CHECKPOINTS", "LargeConfig", "make_large_config", "run_large",
    "balanced_sample", "hessian_recipe", "build_large_hessian_operator", "ensure_cluster_tools",
]

#: problem → data set, Hessian splits of Table 1, augmentation (DeepOBS), default HVP mini-batch
#: (samples per curvlinops pass; a memory guess for ~80 GB GPUs at hvp_block=16, to be tuned with
#: benchmarks/hvp_batching.py and benchmarks/gpu_resnet18.py)
LARGE_PROBLEMS = {
    "cifar10_3c3d": {"dataset": "cifar10", "splits": ("train", "test"), "augment": False, "hvp_batch": 250},
    "cifar100_allcnnc": {"dataset": "cifar100", "splits": ("test",), "augment": True, "hvp_batch": 100},
    "imagenet_resnet18": {"dataset": "imagenet", "splits": ("test",), "augment": True, "hvp_batch": 16},
}
#: checkpoint steps of the issue / paper Figs. 3–4 (step 0 is always added)
DEFAULT_CHECKPOINTS = (2000, 4000, 8000)
#: version of the cached overlap entries in out/analysis
_CACHE_VERSION = 1


@dataclass
class LargeConfig:
    """Everything that determines a large-problem run (written to results.json).

    ``hessian_samples`` maps split → N; ``batch_size``/``lr`` ``None`` mean
    Table 1. ``hvp_block`` is the number of columns per vmapped
    Hessian-vector-product pass, ``hvp_batch`` the samples per curvlinops
    mini-batch (memory ∝ hvp_block · hvp_batch); neither changes H.
    ``chunk`` (columns per Dask measurement task) defaults to ``hvp_block``.
    ``sketch_steps`` are the checkpoints analysed (default: all of them).
    """

    problem: str
    seed: int = 0
    steps: int = 8000
    checkpoints: list = field(default_factory=list)
    sketch_steps: list = field(default_factory=list)
    n_outer: int = 1000
    n_inner: int = 2001
    splits: tuple = ("test",)
    hessian_samples: dict = field(default_factory=dict)
    synthetic: bool = False
    image_size: int | None = None
    synthetic_train: int = 256
    synthetic_test: int = 128
    data_root: str | None = None
    augment: bool = False
    batch_size: int | None = None
    lr: float | None = None
    device: str = "auto"
    vectorize: bool = True
    hvp_block: int = 16
    hvp_batch: int | None = None
    chunk: int | None = None
    scheduler: str | None = None
    workers: int | None = None
    gpu: bool = False
    train_threads: int | None = None
    quick: bool = False


def _pos_int(name, v, allow_none=False):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}={v!r} must be a positive int")
    return int(v)


def make_large_config(problem: str, *, seed: int = 0, steps: int | None = None, checkpoints=None,
                      sketch_steps=None,
                      n_outer: int | None = None, n_inner: int | None = None, splits=None,
                      hessian_samples: int | None = None, synthetic: bool = False, image_size: int | None = None,
                      synthetic_train: int | None = None, synthetic_test: int | None = None, data_root=None,
                      batch_size: int | None = None, lr: float | None = None, device: str = "auto",
                      vectorize: bool = True, hvp_block: int | None = None, hvp_batch: int | None = None,
                      chunk: int | None = None, scheduler: str | None = None, workers: int | None = None,
                      gpu: bool = False, train_threads: int | None = None, quick: bool = False) -> LargeConfig:
    """Resolve the defaults (Table 1, ``quick`` preset) and validate everything before any work.

    ``checkpoints`` default :data:`DEFAULT_CHECKPOINTS` (those ≤ ``steps`` plus
    ``steps`` when ``steps`` is given); ``steps`` defaults to the last
    checkpoint. ``quick``: 4 SGD steps (checkpoints 0, 2, 4), N = 32 per
    split, n_O = 8, n_I = 17, and with ``synthetic`` 32×32 images (a smoke
    run of minutes even for ResNet-18 on a CPU).
    """
    if problem not in LARGE_PROBLEMS:
        problems.get(problem)  # unknown names: the registry's error lists them
        raise ValueError(f"problem {problem!r} is not one of the large problems {', '.join(LARGE_PROBLEMS)}")
    prob = problems.get(problem)
    spec = LARGE_PROBLEMS[problem]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    if quick:
        steps = 4 if steps is None else steps
        checkpoints = [2, 4] if checkpoints is None else checkpoints
        n_outer = 8 if n_outer is None else n_outer
        hessian_samples = 32 if hessian_samples is None else hessian_samples
        if synthetic and image_size is None:
            image_size = 32
    if checkpoints is None:
        if steps is None:
            checkpoints = list(DEFAULT_CHECKPOINTS)
        else:
            checkpoints = [c for c in DEFAULT_CHECKPOINTS if c <= steps] + [steps]
    ck = sorted({0, *(int(c) for c in checkpoints)})
    if steps is None:
        steps = ck[-1]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps={steps!r} must be a non-negative int")
    bad = [c for c in ck if c < 0 or c > steps]
    if bad:
        raise ValueError(f"checkpoints must lie in [0, steps={steps}], got {bad}")
    sk_steps = ck if sketch_steps is None else sorted({int(c) for c in sketch_steps})
    bad = [c for c in sk_steps if c not in ck]
    if bad or not sk_steps:
        raise ValueError(f"sketch_steps must be a non-empty subset of the checkpoints {ck}, got {sk_steps}")
    n_outer = prob.n_outer if n_outer is None else _pos_int("n_outer", n_outer)
    n_inner = problems.tropp_n_inner(n_outer) if n_inner is None else _pos_int("n_inner", n_inner)
    if not n_outer <= n_inner <= prob.n_params:
        raise ValueError(f"n_inner={n_inner} must satisfy n_outer={n_outer} <= n_inner <= D={prob.n_params}")
    splits = spec["splits"] if splits is None else tuple(dict.fromkeys(splits))
    if not splits or any(s not in ("train", "test") for s in splits):
        raise ValueError(f"splits={splits!r} must be a non-empty subset of ('train', 'test')")
    table = {"train": prob.n_hessian_train, "test": prob.n_hessian_test}
    N = {}
    for s in splits:
        n = table[s] if hessian_samples is None else _pos_int("hessian_samples", hessian_samples)
        if n is None:
            raise ValueError(f"{problem} has no {s} Hessian sample in paper Table 1 (n.a.); give hessian_samples "
                             "to analyse it anyway")
        N[s] = n
    if image_size is not None:
        _pos_int("image_size", image_size)
        if not synthetic:
            raise ValueError("image_size applies to synthetic data only (real images keep their size)")
        if problem == "cifar10_3c3d" and image_size != 32:
            raise ValueError("cifar10_3c3d needs 32×32 images (its first dense layer has 3·3·128 inputs)")
        if image_size < 8:
            raise ValueError(f"image_size={image_size} is too small for the networks (≥ 8)")
    syn_train = 256 if synthetic_train is None else _pos_int("synthetic_train", synthetic_train)
    syn_test = 128 if synthetic_test is None else _pos_int("synthetic_test", synthetic_test)
    if synthetic_train is not None and not synthetic or synthetic_test is not None and not synthetic:
        raise ValueError("synthetic_train/synthetic_test apply to synthetic data only")
    if not synthetic and data_root is None:
        from .image_data import DataNotFoundError

        raise DataNotFoundError(f"{problem} needs --data-root with {spec['dataset']} in the layout of "
                                "overlap_experiments.image_data, or --synthetic for a labelled synthetic dry run")
    if synthetic and data_root is not None:
        raise ValueError("give either data_root (real data) or synthetic, not both")
    B = prob.batch_size if batch_size is None else _pos_int("batch_size", batch_size)
    if synthetic and B > syn_train:
        raise ValueError(f"batch_size={B} exceeds the synthetic training set ({syn_train}); give batch_size "
                         "or synthetic_train")
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr={lr!r} must be positive")
    if not isinstance(vectorize, bool):
        raise TypeError(f"vectorize={vectorize!r} must be a bool")
    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"device={device!r} must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not (gpu or scheduler):  # on a cluster the device is the workers' business
        from .hessian import resolve_device

        resolve_device(device)
    hvp_block = 16 if hvp_block is None else _pos_int("hvp_block", hvp_block)
    hvp_batch = spec["hvp_batch"] if hvp_batch is None else _pos_int("hvp_batch", hvp_batch)
    chunk = hvp_block if chunk is None else _pos_int("chunk", chunk)
    workers = _pos_int("workers", workers, allow_none=True)
    if scheduler is not None:
        if workers is not None or gpu:
            raise ValueError("give either scheduler (an existing cluster) or workers/gpu (a local cluster), not both")
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise ValueError(f"scheduler={scheduler!r} must be an address like tcp://host:8786")
    train_threads = _pos_int("train_threads", train_threads, allow_none=True)
    return LargeConfig(
        problem=problem, seed=seed, steps=steps, checkpoints=ck, sketch_steps=sk_steps, n_outer=n_outer, n_inner=n_inner,
        splits=splits, hessian_samples=N, synthetic=bool(synthetic), image_size=image_size,
        synthetic_train=syn_train, synthetic_test=syn_test,
        data_root=None if data_root is None else str(Path(data_root).expanduser()),
        augment=spec["augment"], batch_size=B, lr=prob.lr if lr is None else float(lr), device=device,
        vectorize=vectorize, hvp_block=hvp_block, hvp_batch=hvp_batch, chunk=chunk, scheduler=scheduler,
        workers=workers, gpu=bool(gpu), train_threads=train_threads, quick=bool(quick),
    )


def ensure_cluster_tools(gpu: bool) -> None:
    """Raise a clear ``ImportError`` when ``--gpu`` is asked for without dask-cuda / CuPy."""
    if not gpu:
        return
    missing = []
    for mod, pip in (("dask_cuda", "dask-cuda"), ("cupy", "cupy-cuda12x")):
        try:
            __import__(mod)
        except ImportError:
            missing.append(pip)
    if missing:
        raise ImportError(f"--gpu needs {' and '.join(missing)} (pip install {' '.join(missing)}), "
                          "or start 'dask scheduler' + 'dask-cuda-worker' and pass --scheduler tcp://…")


# --------------------------------------------------------------------------- data
def _label(cfg: LargeConfig) -> str:
    return "SYNTHETIC data" if cfg.synthetic else "real data"


def load_data(cfg: LargeConfig, *, augment: bool | None = None):
    """The :class:`.image_data.ImageData` of the run (training split augmented per ``cfg.augment``).

    Synthetic data gets the same geometric augmentation switched on as the
    real CIFAR-100/ImageNet loaders, so dry runs exercise that code path.
    """
    from . import image_data

    dataset = LARGE_PROBLEMS[cfg.problem]["dataset"]
    aug = cfg.augment if augment is None else augment
    if cfg.synthetic:
        kw = {"n_train": cfg.synthetic_train, "n_test": cfg.synthetic_test}
        if cfg.image_size is not None:
            kw["image_size"] = cfg.image_size
        data = image_data.load(dataset, synthetic_data=True, seed=cfg.seed, **kw)
        data.train.augment = bool(aug)
        data.source = dict(data.source, augment=bool(aug))
        return data
    return image_data.load(dataset, cfg.data_root, augment=aug)


def balanced_sample(labels, n: int, num_classes: int, seed: int) -> np.ndarray:
    """``n`` distinct indices balanced over the classes (paper Table 1 Hessian samples), sorted.

    Every class gets ``n // num_classes`` samples; the ``n mod num_classes``
    remaining ones go to distinct classes drawn at random among those with
    an extra sample to spare (so N = 8 works for 1000 ImageNet classes).
    Raises ``ValueError`` when a class has too few samples.
    """
    y = np.asarray(labels, dtype=np.int64)
    n = _pos_int("n", n)
    if n > y.size:
        raise ValueError(f"a Hessian sample of {n} needs at least {n} images, the split has {y.size}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7, num_classes)))
    base, extra = divmod(n, num_classes)
    by_class = [np.flatnonzero(y == c) for c in range(num_classes)]
    short = [c for c in range(num_classes) if by_class[c].size < base]
    if short:
        raise ValueError(f"class {short[0]} has only {by_class[short[0]].size} samples, {base} per class needed "
                         f"for a balanced Hessian sample of {n}")
    spare = [c for c in range(num_classes) if by_class[c].size > base]
    if len(spare) < extra:
        raise ValueError(f"only {len(spare)} classes have more than {base} samples; a balanced sample of {n} "
                         f"needs {extra}")
    plus = set(rng.choice(spare, size=extra, replace=False).tolist()) if extra else set()
    picks = [rng.choice(by_class[c], size=base + (c in plus), replace=False) for c in range(num_classes)]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def _write_sample(data, split: str, idx: np.ndarray, folder: Path) -> dict:
    """Write images/labels of ``split[idx]`` as ``{split}_X.npy`` (float32, N × 3 × H × W) and
    ``{split}_y.npy``; reuse files made from the same indices. Returns paths and digests."""
    from .hessian import file_digest

    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / f"{split}.json"
    fx, fy = folder / f"{split}_X.npy", folder / f"{split}_y.npy"
    if meta_path.exists() and fx.exists() and fy.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("indices") == [int(i) for i in idx] and meta.get("source") == data.source.get("name"):
            if file_digest(fx) == meta["digest_X"] and file_digest(fy) == meta["digest_y"]:
                return meta
            logger.warning("Hessian sample %s changed on disk: rewriting it", fx)
    ds = data.train if split == "train" else data.test
    X0, _ = ds[int(idx[0])]
    X = np.lib.format.open_memmap(fx.with_suffix(".tmp.npy"), mode="w+", dtype=np.float32,
                                  shape=(len(idx), *tuple(X0.shape)))
    y = np.empty(len(idx), dtype=np.int64)
    for j, i in enumerate(idx):
        xi, yi = ds[int(i)]
        X[j] = np.asarray(xi, dtype=np.float32)
        y[j] = int(yi)
    X.flush()
    del X
    os.replace(fx.with_suffix(".tmp.npy"), fx)
    np.save(fy, y)
    meta = {"split": split, "n": int(len(idx)), "indices": [int(i) for i in idx],
            "source": data.source.get("name"), "X": str(fx.resolve()), "y": str(fy.resolve()),
            "digest_X": file_digest(fx), "digest_y": file_digest(fy)}
    write_json(meta_path, meta)
    return meta


# --------------------------------------------------------------------------- the Hessian
def build_large_hessian_operator(problem_name: str, checkpoint: str, sample_X: str, sample_y: str, *,
                                 checkpoint_digest: str, sample_digest: str, device: str = "auto",
                                 vectorize: bool = True, block: int = 16, batch_size: int | None = None,
                                 precision: str = "float32"):
    """Recipe factory (runs once per worker process): checkpoint + stored sample → :class:`.hessian.HessianOperator`.

    The files must be visible to the worker (shared file system, as the Zarr
    store) and match the digests the driver planned with. ``device="auto"``
    puts the model and the N images on the worker's GPU when it has one.
    Shape of the operator: D × D, D of paper Table 1.
    """
    import torch

    from .hessian import HessianOperator, file_digest
    from .train import load_model

    if file_digest(checkpoint) != checkpoint_digest:
        raise ValueError(f"checkpoint {checkpoint!r} on this worker differs from the one the recipe was made for")
    if file_digest(sample_X) != sample_digest:
        raise ValueError(f"Hessian sample {sample_X!r} on this worker differs from the one the recipe was made for")
    model = load_model(problems.get(problem_name), checkpoint)
    X = torch.from_numpy(np.load(sample_X))
    y = torch.from_numpy(np.load(sample_y))
    return HessianOperator(model, X, y, dtype=precision, block=block, batch_size=batch_size, device=device,
                           vectorize=vectorize)


def hessian_recipe(cfg: LargeConfig, checkpoint, sample: dict, checkpoint_digest: str | None = None):
    """The Hessian of ``checkpoint`` on a stored sample as a :class:`sketchla.operators.RecipeOperator`.

    ``checkpoint_digest``: the checkpoint's :func:`~overlap_experiments.hessian.file_digest`
    where the caller has it already (else it is computed here).
    """
    from sketchla.operators import RecipeOperator

    from .hessian import file_digest

    checkpoint = str(Path(checkpoint).resolve())
    D = problems.get(cfg.problem).n_params
    return RecipeOperator(
        build_large_hessian_operator, cfg.problem, checkpoint, sample["X"], sample["y"],
        checkpoint_digest=checkpoint_digest or file_digest(checkpoint), sample_digest=sample["digest_X"],
        device=cfg.device,
        vectorize=cfg.vectorize, block=cfg.hvp_block, batch_size=cfg.hvp_batch,
        shape=(D, D), dtype="float32", symmetric=True, has_adjoint=True, thread_safe=False,
    )


def _client(cfg: LargeConfig):
    """``(client for seigh, close callback or None)``: tcp scheduler, LocalCUDACluster, LocalCluster or threads."""
    from sketchla.cluster import get_client

    if cfg.scheduler is not None:
        return get_client(address=cfg.scheduler)
    if cfg.gpu:
        ensure_cluster_tools(True)
        return get_client(gpu=True, n_workers=cfg.workers, threads_per_worker=1)
    if cfg.workers is not None:
        return get_client(n_workers=cfg.workers, threads_per_worker=1)
    return False, None


# --------------------------------------------------------------------------- helpers


def _evaluate_sample(model, sample: dict, device, batch: int = 100) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on a stored Hessian sample."""
    import torch

    X = np.load(sample["X"], mmap_mode="r")
    y = torch.from_numpy(np.load(sample["y"]))
    model.eval().to(device)
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            xb = torch.from_numpy(np.array(X[i:i + batch])).to(device)
            out = model(xb).cpu()
            loss += float(torch.nn.functional.cross_entropy(out, y[i:i + batch], reduction="sum"))
            correct += int((out.argmax(1) == y[i:i + batch]).sum())
    return loss / len(y), correct / len(y)


# --------------------------------------------------------------------------- main entry
def run_large(out, cfg: LargeConfig, *, progress: bool = True, figures: bool = True) -> dict:
    """Run the whole §6.2 experiment for ``cfg.problem`` into folder ``out``.

    Returns the results dict, also written to ``out/results.json``; its
    ``overlap[split][step]`` entries hold ``eigenvalues`` (n_O, by descending
    |λ|), ``overlap`` (n_O values, k = 1..n_O), ``chance`` (k/D), ``ratio``
    and ``timings`` (``per_hvp``, ``measurement``, ``rest`` seconds).
    """
    import torch

    from sketchla.operators import clear_recipe_cache

    from .hessian import resolve_device
    from .models import flat_parameters
    from .train import checkpoint_path, load_model, train

    t_start = time.perf_counter()
    prob = problems.get(cfg.problem)
    label = _label(cfg)
    timings: dict = {}
    logger.info("%s (%s): %s, D=%d", prob.name, prob.title, label, prob.n_params)
    ensure_cluster_tools(cfg.gpu)

    # 1. data (first, so a bad data path fails before anything is written); the
    # model's parameter count is checked by build_model when train() builds it
    t0 = time.perf_counter()
    data = load_data(cfg)
    timings["data"] = time.perf_counter() - t0
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    D = prob.n_params
    device = resolve_device(cfg.device)

    # 2. training
    t0 = time.perf_counter()
    tr = train(prob, data, out / "checkpoints", steps=cfg.steps, seed=cfg.seed, checkpoint_steps=cfg.checkpoints,
               lr=cfg.lr, batch_size=cfg.batch_size, progress=progress, device=device, threads=cfg.train_threads)
    timings["train"] = time.perf_counter() - t0
    logger.info("%s: %d SGD steps trained (%s), %.1fs", prob.name, tr["trained_steps"], label, timings["train"])

    # 3. Hessian samples (never augmented)
    t0 = time.perf_counter()
    plain = data if not (cfg.augment and "train" in cfg.splits) else load_data(cfg, augment=False)
    samples = {}
    for split in cfg.splits:
        idx = balanced_sample(plain.labels(split), cfg.hessian_samples[split], plain.num_classes, cfg.seed)
        samples[split] = _write_sample(plain, split, idx, out / "hessian_samples")
    timings["hessian_samples"] = time.perf_counter() - t0

    # 4./5. SEIGH and overlap at every checkpoint
    analysis = {split: {} for split in cfg.splits}
    checkpoints = {}
    cache = out / "analysis"
    cache.mkdir(exist_ok=True)
    client, close = _client(cfg)
    timings["seigh"] = 0.0
    try:
        for step in cfg.sketch_steps:
            ck = checkpoint_path(out / "checkpoints", step)
            model = load_model(prob, ck)
            order = ov.magnitude_order(flat_parameters(model))
            checkpoints[str(step)] = {}
            for split in cfg.splits:
                loss, acc = _evaluate_sample(model, samples[split], device)
                checkpoints[str(step)][f"{split}_sample_loss"] = loss
                checkpoints[str(step)][f"{split}_sample_acc"] = acc
            del model
            for split in cfg.splits:
                analysis[split][str(step)] = _analyse(cfg, prob, ck, samples[split], order, split, step, out,
                                                      cache, client, progress, label)
                timings["seigh"] += analysis[split][str(step)]["timings"]["this_call"]
            clear_recipe_cache()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    finally:
        if close is not None:
            close()

    # 6. results
    results = {
        "problem": prob.as_dict(),
        "synthetic": cfg.synthetic,
        "label": label,
        "data_source": data.source,
        "n_params": int(D),
        "seeds": {"init": cfg.seed, "minibatches": cfg.seed, "augmentation": cfg.seed,
                  "hessian_samples": cfg.seed, "sketch": cfg.seed},
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "parameters": {"lr": cfg.lr, "batch_size": cfg.batch_size, "steps": cfg.steps,
                       "checkpoints": cfg.checkpoints, "sketch_steps": cfg.sketch_steps, "n_outer": cfg.n_outer, "n_inner": cfg.n_inner,
                       "hessian_samples": cfg.hessian_samples, "augment": cfg.augment, "device": str(device),
                       "vectorize": cfg.vectorize, "hvp_block": cfg.hvp_block, "hvp_batch": cfg.hvp_batch},
        "hessian_samples": {s: {"n": m["n"], "indices": m["indices"], "digest_X": m["digest_X"]}
                            for s, m in samples.items()},
        "training": {"losses": [float(v) for v in tr["losses"]], "resumed_from": tr["resumed_from"],
                     "trained_steps": tr["trained_steps"], "seconds": tr["seconds"]},
        "checkpoints": checkpoints,
        "overlap": analysis,
    }
    per_hvp = [e["timings"]["per_hvp"] for sp in analysis.values() for e in sp.values()
               if e["timings"].get("per_hvp")]
    timings["per_hvp_median"] = float(np.median(per_hvp)) if per_hvp else None
    path = write_results(out, results, timings, t_start, _figures if figures else None)
    logger.info("%s (%s): wrote %s in %.1fs", prob.name, label, path, timings["total"])
    return results


def _figures(results, out):
    from . import plots_large  # matplotlib only when figures are drawn

    return plots_large.make_large_figures(results, out)


def _analyse(cfg, prob, ck, sample, order, split, step, out, cache, client, progress, label) -> dict:
    """SEIGH of H_split at ``step`` and its sketched overlap curve (cached in ``cache``)."""
    import sketchla as sk

    from .hessian import file_digest

    key = {"version": _CACHE_VERSION, "problem": cfg.problem, "checkpoint": file_digest(ck),
           "sample": sample["digest_X"], "n_outer": cfg.n_outer, "n_inner": cfg.n_inner, "seed": cfg.seed}
    path = cache / f"{split}_step{step:06d}.json"
    if path.exists():
        try:
            old = json.loads(path.read_text())
            if old.get("key") == key:
                logger.info("H_%s step %d: analysis reused from %s", split, step, path)
                entry = old["entry"]
                entry["timings"]["this_call"] = 0.0
                return entry
        except (ValueError, KeyError) as exc:
            logger.warning("ignoring damaged cache %s (%s)", path, exc)
    # the store's name carries the operator's identity: sketchla resumes a store by its sketch parameters
    # only, so a Hessian of another checkpoint or sample must never find this one
    import hashlib

    ident = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    store = out / "seigh" / f"{split}_step{step:06d}_{ident}.zarr"
    store.parent.mkdir(exist_ok=True)
    op = hessian_recipe(cfg, ck, sample, checkpoint_digest=key["checkpoint"])
    logger.info("H_%s step %d (%s): SEIGH n_O=%d n_I=%d, N=%d, D=%d", split, step, label, cfg.n_outer,
                cfg.n_inner, sample["n"], prob.n_params)
    t0 = time.perf_counter()
    r = sk.seigh(op, cfg.n_outer, cfg.n_inner, seed=cfg.seed, store=str(store), client=client, dtype="float32",
                 chunk=cfg.chunk, progress=progress, gpu=cfg.gpu)  # --gpu: QR and thin products on CuPy too
    t_seigh = time.perf_counter() - t0
    t0 = time.perf_counter()
    curve = ov.overlap_curve(order, r.eigenvectors, cfg.n_outer)
    t_overlap = time.perf_counter() - t0
    D = prob.n_params
    chance = ov.chance_curve(cfg.n_outer, D)
    st = r.timings
    meas = st.get("measure")
    rest = sum(v for k, v in st.items() if k != "measure") + t_overlap
    entry = {
        "k": list(range(1, cfg.n_outer + 1)),
        "eigenvalues": [float(v) for v in np.asarray(r.eigenvalues)],
        "overlap": [float(v) for v in curve],
        "chance": [float(v) for v in chance],
        "ratio": [float(v) for v in curve / chance],
        "n_samples": sample["n"],
        "store": str(store),
        "timings": {"per_hvp": (meas / cfg.n_inner) if meas else None, "measurement": meas, "rest": rest,
                    "stages": st, "overlap": t_overlap, "seigh_call": t_seigh,
                    "this_call": t_seigh + t_overlap},
    }
    write_json(path, {"key": key, "entry": entry})
    logger.info("H_%s step %d (%s): top |λ| %.3g, overlap k=%d %.4f (chance %.2e), %.1fs", split, step, label,
                abs(entry["eigenvalues"][0]), cfg.n_outer, curve[-1], chance[-1], t_seigh + t_overlap)
    return entry
