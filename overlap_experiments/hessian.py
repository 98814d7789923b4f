"""Loss Hessians of a checkpoint on a fixed sample, as sketchla operators.

The Hessian of paper §2.1 / §6.1 is that of the mean cross-entropy over a
fixed set of N samples (500 train or 500 test images, 50 per class),

    H = (1/N) Σ_n ∇²_θ ℓ(f_θ(x_n), y_n)      (D × D, rows/columns in ``model.parameters()`` order),

applied matrix-free with curvlinops' ``HessianLinearOperator`` (forward-over-
reverse Hessian-vector products, vmapped over the columns of a block).

* :class:`HessianOperator` — a :class:`sketchla.operators.LinearOperator`
  (symmetric, float32 by default) around a model and a sample.
* :func:`hessian_recipe` — the same operator as a
  :class:`sketchla.operators.RecipeOperator`: only the recipe
  (architecture name, checkpoint path and its digest, data source, split,
  sample indices) is shipped to Dask workers, each worker builds the
  operator once (:func:`build_hessian_operator`) and reuses it for all its
  measurement tasks.
* :func:`exact_hessian` — the dense H for small D (7030 for mnist16) by
  streaming ``H @ I[:, j0:j1]`` in column blocks, symmetrised.
* :func:`exact_eigh` — all eigenvalues of H and the eigenvectors of the
  ``k_max`` largest in magnitude, sorted by descending ``|λ|`` (the order
  of paper §2.1 / Eq. 1), via LAPACK's symmetric eigensolver.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import threading
import time
from pathlib import Path

import numpy as np

from sketchla.operators import LinearOperator, RecipeOperator

logger = logging.getLogger(__name__)

__all__ = [
    "HessianOperator", "build_hessian_operator", "resolve_device", "hessian_recipe", "file_digest",
    "exact_hessian", "exact_eigh", "sort_by_magnitude", "time_hvp",
]

#: columns per vmapped Hessian-vector-product batch (memory ~ block · N · width)
DEFAULT_BLOCK = 256


class HessianOperator(LinearOperator):
    """The loss Hessian of ``model`` on ``(X, y)`` as a symmetric D × D operator.

    Parameters
    ----------
    model : torch.nn.Module (its parameters, in ``parameters()`` order, are θ);
        a private copy is kept (cast to ``dtype``).
    X, y : inputs (N, …) and integer labels (N,) of the fixed sample.
    dtype : "float32" (default, as the paper) or "float64"; the model and data
        are cast to it for the products.
    block : columns per vmapped product (bounds memory; the result does not depend on it).
    batch_size : samples per curvlinops mini-batch (default: all N at once).
    device : torch device of the products: ``"cpu"`` (default), ``"cuda"``,
        ``"cuda:1"``, … or ``"auto"`` (CUDA when available, else CPU). The
        model and the sample are moved there once; under ``dask-cuda`` every
        worker sees its own GPU as ``"cuda"``, so a recipe built with
        ``device="auto"`` lands on the worker's GPU.
    vectorize : ``True`` (default): each product of up to ``block`` columns is
        one vmapped pass (forward once, tangents batched); ``False``: one
        Hessian-vector product per column (``benchmarks/hvp_batching.py``
        compares the two).

    The model is put in ``eval()`` mode: dropout is off and BatchNorm uses its
    running statistics, so H is a fixed symmetric matrix.

    ``matmat(V)`` takes a NumPy or CuPy ``D × b`` block and returns ``H V``
    in the same module and dtype (CuPy blocks go to and from a CUDA device
    through DLPack, without a host copy). Products are serialised by a lock: the
    functional calls inside curvlinops temporarily swap the module's
    parameters and must not interleave between threads (each product uses
    every core through PyTorch's intra-op parallelism anyway).
    """

    def __init__(self, model, X, y, *, dtype="float32", block: int = DEFAULT_BLOCK, batch_size=None,
                 device="cpu", vectorize: bool = True):
        import torch

        params = [p for p in model.parameters() if p.requires_grad]
        D = int(sum(p.numel() for p in params))
        super().__init__((D, D), dtype, symmetric=True)
        if not isinstance(block, int) or isinstance(block, bool) or block < 1:
            raise ValueError(f"block={block!r} must be a positive int")
        if not isinstance(vectorize, bool):
            raise TypeError(f"vectorize={vectorize!r} must be a bool")
        X = torch.as_tensor(X)
        y = torch.as_tensor(y)
        if X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise ValueError(f"X and y must have the same non-zero number of samples, got {tuple(X.shape)} / {tuple(y.shape)}")
        tdt = torch.float64 if self.dtype == np.float64 else torch.float32
        dev = resolve_device(device)
        self.device = str(dev)
        # never change the caller's model
        self.model = copy.deepcopy(model).to(device=dev, dtype=tdt).eval()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.X = X.to(device=dev, dtype=tdt)
        self.y = y.to(device=dev, dtype=torch.int64)
        self.block = block
        self.vectorize = vectorize
        self.n_samples = int(X.shape[0])
        bs = self.n_samples if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size={batch_size!r} must be positive")
        self._data = [(self.X[i:i + bs], self.y[i:i + bs]) for i in range(0, self.n_samples, bs)]
        self._op = None
        self._lock = threading.Lock()
        self.n_products = 0  # columns multiplied so far (HVP count)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_lock", None)
        state["_op"] = None
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._lock = threading.Lock()

    def setup(self) -> None:
        from curvlinops import HessianLinearOperator
        from torch.nn import CrossEntropyLoss

        self._op = HessianLinearOperator(
            self.model, CrossEntropyLoss(reduction="mean"), self.params, self._data,
            progressbar=False, check_deterministic=False, num_data=self.n_samples,
        )

    def _matmat(self, V):
        import torch

        from sketchla.backend import get_array_module

        xp = get_array_module(V)
        tdt = self.X.dtype
        dev = torch.device(self.device)
        if xp is not np and dev.type == "cuda":
            Vt_all = torch.from_dlpack(V)  # CuPy block, no host round trip
        else:
            host = V.get() if xp is not np else np.asarray(V)
            Vt_all = torch.from_numpy(np.ascontiguousarray(host))
        b = int(Vt_all.shape[1])
        step = self.block if self.vectorize else 1
        out = torch.empty((self.shape[0], b), dtype=tdt, device=dev)
        with self._lock, torch.no_grad():
            for j0 in range(0, b, step):
                j1 = min(j0 + step, b)
                Vt = Vt_all[:, j0:j1].to(device=dev, dtype=tdt)
                out[:, j0:j1] = self._op @ Vt
            self.n_products += b
            if not bool(torch.isfinite(out).all()):
                raise FloatingPointError("Hessian-vector product returned NaN/Inf (diverged model?)")
        if xp is not np:
            return xp.from_dlpack(out) if dev.type == "cuda" else xp.asarray(out.numpy())
        return out.cpu().numpy()


def resolve_device(device="auto"):
    """``torch.device`` for ``device`` in {"auto", "cpu", "cuda", "cuda:N", torch.device}.

    ``"auto"`` is CUDA when PyTorch sees a GPU (in a ``dask-cuda`` worker: the
    worker's own GPU), else CPU. Asking for CUDA where there is none raises a
    ``ValueError`` naming the argument.
    """
    import torch

    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(f"device={device!r} is not a torch device ('auto', 'cpu', 'cuda', 'cuda:1', ...)") from exc
    else:
        raise TypeError(f"device must be a string or torch.device, got {type(device).__name__}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: PyTorch sees no CUDA device on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} must be a CPU or CUDA device")
    return dev


def file_digest(path) -> str:
    """SHA-256 of a file's bytes (checkpoints are ~30 KB for mnist16)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_hessian_operator(problem_name: str, checkpoint: str, data_root, split: str, indices,
                           *, checkpoint_digest: str | None = None, precision: str = "float32",
                           block: int = DEFAULT_BLOCK) -> HessianOperator:
    """Recipe factory: load problem, checkpoint and data, return the :class:`HessianOperator`.

    Runs once per worker process (see :class:`sketchla.operators.RecipeOperator`).
    ``precision`` is the operator's dtype. ``checkpoint_digest`` (if given) must match the file on the worker, so a
    worker never measures a different checkpoint than the one planned.
    """
    from . import data as data_mod
    from . import problems
    from .train import load_model

    if checkpoint_digest is not None and file_digest(checkpoint) != checkpoint_digest:
        raise ValueError(f"checkpoint {checkpoint!r} on this worker differs from the one the recipe was made for")
    problem = problems.get(problem_name)
    model = load_model(problem, checkpoint)
    ds = data_mod.load(data_root)
    X, y = ds.split(split)
    idx = np.asarray(indices, dtype=np.int64)
    if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= X.shape[0]:
        raise ValueError(f"indices must be a non-empty 1-D array of row indices into the {split} split "
                         f"(size {X.shape[0]})")
    import torch

    t = torch.as_tensor(idx)
    return HessianOperator(model, X[t], y[t], dtype=precision, block=block)


def hessian_recipe(problem, checkpoint, data_root, split: str, indices, *, dtype: str = "float32",
                   block: int = DEFAULT_BLOCK) -> RecipeOperator:
    """The Hessian of ``checkpoint`` on ``split[indices]`` as a :class:`RecipeOperator`.

    The recipe holds the problem name (architecture), the checkpoint's
    absolute path and SHA-256, the data root (``None`` = scikit-learn
    digits), the split and the indices; it is built once per worker.
    """
    checkpoint = str(Path(checkpoint).resolve())
    digest = file_digest(checkpoint)
    idx = tuple(int(i) for i in np.asarray(indices).ravel())
    root = None if data_root is None else str(Path(data_root).resolve())
    D = problem.n_params
    return RecipeOperator(
        build_hessian_operator, problem.name, checkpoint, root, split, idx,
        checkpoint_digest=digest, precision=dtype, block=block,
        shape=(D, D), dtype=dtype, symmetric=True, has_adjoint=True,
    )


def exact_hessian(op, *, block: int = 512, progress: bool = True, desc: str = "exact Hessian") -> np.ndarray:
    """Dense ``H`` (D × D, float64) from ``op @ I[:, j0:j1]`` column blocks.

    The product blocks are float32 (operator dtype); the result is
    symmetrised as ``(H + Hᵀ)/2`` (the raw asymmetry, a measure of the
    products' round-off, is logged). D² float64 numbers: for small D only.
    """
    from tqdm.auto import tqdm

    D = op.shape[0]
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"op must be square, got shape {op.shape}")
    H = np.empty((D, D), dtype=np.float64)
    E = np.zeros((D, min(block, D)), dtype=op.dtype)
    for j0 in tqdm(range(0, D, block), desc=desc, disable=not progress, leave=False, unit="block"):
        j1 = min(j0 + block, D)
        E[:] = 0
        E[np.arange(j0, j1), np.arange(j1 - j0)] = 1
        H[:, j0:j1] = np.asarray(op.matmat(E[:, : j1 - j0]))
    # column block by column block: no D × D temporaries just for this log line
    cols = range(0, D, block)
    asym = (max(float(np.max(np.abs(H[:, j:j + block] - H[j:j + block].T))) for j in cols)
            if D <= 20000 else float("nan"))
    scale = max(float(np.max(np.abs(H[:, j:j + block]))) for j in cols) or 1.0
    logger.info("exact Hessian D=%d: max |H - H^T| / max |H| = %.2e", D, asym / scale)
    H += H.T
    H *= 0.5
    return H


def sort_by_magnitude(eigenvalues) -> np.ndarray:
    """Indices ordering ``eigenvalues`` by descending ``|λ|`` (stable)."""
    return np.argsort(-np.abs(np.asarray(eigenvalues)), kind="stable")


def exact_eigh(H, k_max: int | None = None, *, dtype="float32", overwrite: bool = False,
               threads: int | None = 1):
    """Eigendecomposition of the symmetric ``H``, sorted by descending ``|λ|``.

    LAPACK's divide-and-conquer ``syevd`` (through ``torch.linalg.eigh``,
    i.e. the same routine as ``numpy.linalg.eigh`` in PyTorch's LAPACK).

    Parameters
    ----------
    H : (D, D) symmetric array (only its lower triangle is read).
    k_max : number of eigenvectors returned (default D).
    dtype : precision of the solve: "float32" (default; the Hessian-vector
        products that formed H are float32 too, so float64 buys no accuracy
        in the eigenspaces; about 2x faster) or "float64".
    overwrite : allow the solve to reuse ``H``'s memory when dtypes match.
    threads : PyTorch intra-op threads for the solve (default 1: on a shared
        2-core machine a single thread was 3x faster than two; ``None`` keeps
        the current setting).

    Returns
    -------
    (eigenvalues, eigenvectors): (D,) float64 sorted by descending ``|λ|``
    (signs kept), and (D, k_max) in ``dtype`` (their actual precision, so
    orthonormality checks downstream use the right tolerance) matching the
    first k_max of them.
    """
    import torch

    H = np.asarray(H)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be a square matrix, got shape {H.shape}")
    D = H.shape[0]
    k_max = D if k_max is None else int(k_max)
    if not 1 <= k_max <= D:
        raise ValueError(f"k_max={k_max} must be in [1, D={D}]")
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype!r} must be float32 or float64")
    A = H if (overwrite and H.dtype == dt) else H.astype(dt)
    if not np.all(np.isfinite(A)):
        raise ValueError("H contains NaN/Inf")
    t0 = time.perf_counter()
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        w_t, V_t = torch.linalg.eigh(torch.from_numpy(A))
    finally:
        torch.set_num_threads(old)
    w = w_t.numpy().astype(np.float64)
    order = sort_by_magnitude(w)
    vals = w[order]
    vecs = np.ascontiguousarray(V_t.numpy()[:, order[:k_max]])
    del V_t
    logger.info("eigh of D=%d (%s) in %.1fs", D, dt.name, time.perf_counter() - t0)
    return vals, vecs


def time_hvp(op, n: int = 64, seed: int = 0) -> float:
    """Seconds per Hessian-vector product, timed on one block of ``n`` random
    columns after a warm-up product (so compilation/setup is excluded)."""
    rng = np.random.default_rng(seed)
    D = op.shape[1]
    op.matmat(rng.standard_normal((D, 2)).astype(op.dtype))
    V = rng.standard_normal((D, n)).astype(op.dtype)
    t0 = time.perf_counter()
    op.matmat(V)
    return (time.perf_counter() - t0) / n
