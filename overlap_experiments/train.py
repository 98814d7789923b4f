"""SGD training with checkpoints: deterministic under a seed, resumable.

Step ``t`` denotes the parameters θ_t after ``t`` SGD updates (θ_0 is the
initialisation). Update ``t → t+1`` uses mini-batch ``t``:

    θ_{t+1} = θ_t − η ∇_θ L_{B_t}(θ_t),     L_B = mean cross-entropy over the B samples of B_t,

and ``losses[t] = L_{B_t}(θ_t)`` is recorded (paper Fig. 15, top). Mini-batch
``t`` is element ``t mod T`` of epoch ``e = t // T`` (``T = N // B``, the
last incomplete batch of an epoch is dropped); epoch ``e`` visits the
training set in the order of a permutation that is a pure function of
``(seed, e)``. Hence the trajectory only depends on the seed, the data and
the hyperparameters — and a run interrupted at any point and resumed from
its last checkpoint continues exactly as if it had not stopped.

Data: an :class:`overlap_experiments.data.Dataset` (tensors ``X_train``,
``y_train``) or an :class:`overlap_experiments.image_data.ImageData`
(``train`` is a ``torch`` dataset of ``(image, label)`` pairs, read per
sample, possibly with random augmentation). Every update runs under torch's
RNG seeded from ``(seed, t)`` (:func:`_step_seed`), so random augmentation
and dropout are a pure function of the seed and the step as well, and a
resumed run matches an uninterrupted one.

Checkpoints are plain state dicts (``torch.save(model.state_dict())``),
one file per step ``ckpt_dir/step_XXXXXX.pt``, loaded back with
``torch.load(..., weights_only=True)`` by :func:`load_checkpoint`. The
folder also holds ``train_config.json`` (a checkpoint folder made with other
settings is refused) and ``train_log.json`` (losses so far).
"""
from __future__ import annotations

import functools
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from .jsonio import write_json

logger = logging.getLogger(__name__)

__all__ = [
    "default_checkpoint_steps", "train", "load_checkpoint", "load_model",
    "checkpoint_path", "existing_checkpoints", "evaluate", "TrainResult",
]


def default_checkpoint_steps(total: int = 1000, every: int = 5, dense_until: int = 250,
                             n_log: int = 40) -> list[int]:
    """Steps to checkpoint: every ``every``-th step up to ``dense_until`` (the
    early-crystallisation plots, paper Figs. 15–16) plus ``n_log`` log-spaced
    steps in [1, total], the round steps 1, 2, 5, 10, 20, 50, …, plus 0 and
    ``total``; sorted, unique (79+ steps for total = 1000, ~30 KB each)."""
    for name, v in (("total", total), ("every", every), ("n_log", n_log)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name}={v!r} must be a positive int")
    steps = set(range(0, min(dense_until, total) + 1, every))
    steps.update(int(round(s)) for s in np.logspace(0, np.log10(total), n_log))
    steps.update(m * 10**e for e in range(len(str(total))) for m in (1, 2, 5))  # 1-2-5 round steps
    steps.update((0, total))
    return sorted(s for s in steps if 0 <= s <= total)


def checkpoint_path(ckpt_dir, step: int) -> Path:
    return Path(ckpt_dir) / f"step_{int(step):06d}.pt"


def existing_checkpoints(ckpt_dir) -> list[int]:
    """Steps that have a checkpoint file in ``ckpt_dir``."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    out = []
    for p in d.glob("step_*.pt"):
        try:
            out.append(int(p.stem.split("_", 1)[1]))
        except ValueError:
            continue
    return sorted(out)


def _save_state(model, path: Path) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, model=None) -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)`` and check it is
    a plain state dict of tensors (matching ``model``'s keys and shapes when a
    model is given, which is then updated in place).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a
    file that is not a state dict (or does not fit ``model``).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling error, truncated file, non-tensor objects
        raise ValueError(f"checkpoint {str(path)!r} is not a plain state dict loadable with "
                         f"weights_only=True: {exc}") from exc
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"checkpoint {str(path)!r} is not a state dict (a dict of parameter "
                         f"name -> tensor); got {type(state).__name__}")
    if model is not None:
        ref = model.state_dict()
        if set(ref) != set(state):
            raise ValueError(f"checkpoint {str(path)!r} has keys {sorted(state)} but the model "
                             f"expects {sorted(ref)}")
        bad = [k for k in ref if tuple(ref[k].shape) != tuple(state[k].shape)]
        if bad:
            raise ValueError(f"checkpoint {str(path)!r}: shape mismatch for {bad}")
        model.load_state_dict(state)
    return state


def load_model(problem, path):
    """``problem.build_model()`` with the weights of checkpoint ``path``."""
    model = problem.build_model(seed=0)
    load_checkpoint(path, model)
    model.eval()
    return model


@functools.lru_cache(maxsize=2)
def _epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The epoch's permutation of the n training samples (cached: every step of
    the epoch slices the same one; read-only, callers get copies)."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1, int(epoch))))
    order = rng.permutation(n)
    order.flags.writeable = False
    return order


def _batch_indices(seed: int, step: int, n: int, batch_size: int) -> np.ndarray:
    spe = n // batch_size
    epoch, pos = divmod(int(step), spe)
    return _epoch_order(int(seed), int(epoch), int(n))[pos * batch_size:(pos + 1) * batch_size].copy()


def _step_seed(seed: int, step: int) -> int:
    """Seed of torch's RNG during update ``step`` (augmentation, dropout)."""
    return int(np.random.SeedSequence(int(seed), spawn_key=(2, int(step))).generate_state(1)[0])


def _n_train(dataset) -> int:
    if hasattr(dataset, "X_train"):
        return int(dataset.X_train.shape[0])
    return len(dataset.train)


def _fetch_batch(dataset, idx):
    """Mini-batch ``(X (B, …), y (B,))`` of training samples ``idx``."""
    import torch

    if hasattr(dataset, "X_train"):
        t = torch.as_tensor(idx)
        return dataset.X_train[t], dataset.y_train[t]
    items = [dataset.train[int(i)] for i in idx]
    return (torch.stack([torch.as_tensor(x) for x, _ in items]),
            torch.as_tensor([int(c) for _, c in items], dtype=torch.int64))


class TrainResult(dict):
    """``dict`` with keys ``losses`` (list, length = steps), ``checkpoints``
    (step → path), ``config``, ``resumed_from`` (step or None),
    ``trained_steps`` (updates done in this call), ``seconds``."""


def train(problem, dataset, ckpt_dir, *, steps: int | None = None, seed: int = 0,
          checkpoint_steps=None, lr: float | None = None, batch_size: int | None = None,
          progress: bool = True, device=None, threads: int | None = 1) -> TrainResult:
    """Train ``problem``'s model with plain SGD on the training split of ``dataset``.

    Parameters
    ----------
    problem : :class:`overlap_experiments.problems.Problem` (η, B and the model).
    dataset : :class:`overlap_experiments.data.Dataset` or
        :class:`overlap_experiments.image_data.ImageData` (see module docstring).
    ckpt_dir : checkpoint folder (created; resumed if it holds a run with the same settings).
    steps : number of SGD updates (default ``problem.total_steps``).
    seed : initialisation and mini-batch order.
    checkpoint_steps : steps to save (default :func:`default_checkpoint_steps`);
        values outside ``[0, steps]`` are an error.
    lr, batch_size : override η and B.
    progress : tqdm progress bar.
    device : torch device of the updates (``None`` = CPU; "auto", "cuda", … as
        :func:`overlap_experiments.hessian.resolve_device`). Checkpoints are
        always saved from CPU copies.
    threads : torch intra-op threads during training (default 1, best for the
        tiny mnist16 MLP; ``None`` keeps torch's setting, for the convnets).
    """
    import torch
    from tqdm.auto import tqdm

    steps = problem.total_steps if steps is None else steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps={steps!r} must be a non-negative int")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    lr = float(problem.lr if lr is None else lr)
    B = int(problem.batch_size if batch_size is None else batch_size)
    if not lr > 0:
        raise ValueError(f"lr={lr!r} must be positive")
    n = _n_train(dataset)
    if B < 1 or B > n:
        raise ValueError(f"batch_size={B} must be in [1, {n}] (the training set has {n} samples)")
    if checkpoint_steps is None:
        checkpoint_steps = default_checkpoint_steps(steps) if steps >= 1 else [0]
    ck = sorted({int(s) for s in checkpoint_steps})
    if ck and (ck[0] < 0 or ck[-1] > steps):
        raise ValueError(f"checkpoint_steps must lie in [0, steps={steps}], got {ck[0]}..{ck[-1]}")
    ck = sorted(set(ck) | {steps})  # the final parameters are always kept (resume point)

    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    config = {"problem": problem.name, "seed": seed, "lr": lr, "batch_size": B,
              "data": dataset.source.get("name"), "n_train": n}
    if dataset.source.get("augment") or getattr(getattr(dataset, "train", None), "augment", False):
        config["augment"] = True
    cfg_path = ckpt_dir / "train_config.json"
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        if old != config:
            raise ValueError(f"checkpoint folder {str(ckpt_dir)!r} holds a run with other settings "
                             f"{old}; this run has {config}. Use another --out folder or remove it.")
    else:
        write_json(cfg_path, config)

    log_path = ckpt_dir / "train_log.json"
    losses: list[float] = json.loads(log_path.read_text())["losses"] if log_path.exists() else []

    # resume from the latest checkpoint whose losses are all logged
    have = [s for s in existing_checkpoints(ckpt_dir) if s <= steps and s <= len(losses)]
    model = problem.build_model(seed=seed)
    start = 0
    resumed = None
    if have:
        start = have[-1]
        load_checkpoint(checkpoint_path(ckpt_dir, start), model)
        resumed = start
        logger.info("resuming training from step %d (%s)", start, ckpt_dir)
    losses = losses[:start]
    from .hessian import resolve_device

    dev = resolve_device("cpu" if device is None else device)
    model.to(dev)
    rng_devices = [dev] if dev.type == "cuda" else []
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    # the mnist16 model is tiny: one thread is fastest (and immune to
    # oversubscription stalls of OpenMP thread teams on a busy machine)
    n_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    if start in ck and not checkpoint_path(ckpt_dir, start).exists():
        _save_state(model, checkpoint_path(ckpt_dir, start))
    model.train()
    ck_set = set(ck)
    end = steps
    try:
        bar = tqdm(range(start, end), desc=f"train {problem.name}", disable=not progress,
                   initial=0, total=end - start, unit="step", leave=False)
        for t in bar:
            with torch.random.fork_rng(devices=rng_devices):
                torch.manual_seed(_step_seed(seed, t))
                xb, yb = _fetch_batch(dataset, _batch_indices(seed, t, n, B))
                xb, yb = xb.to(dev), yb.to(dev)
                model.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
            losses.append(float(loss.detach()))
            if (t + 1) in ck_set:
                _save_state(model, checkpoint_path(ckpt_dir, t + 1))
                write_json(log_path, {"losses": losses})
            if progress and t % 20 == 0:
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
        bar.close()
    finally:
        torch.set_num_threads(n_threads)
    seconds = time.perf_counter() - t0
    if end > start:
        logger.info("trained steps %d..%d in %.1fs", start, end, seconds)
    return TrainResult(
        losses=losses[:steps], config=config, resumed_from=resumed, trained_steps=end - start,
        seconds=seconds, checkpoints={s: str(checkpoint_path(ckpt_dir, s)) for s in ck},
    )


def evaluate(model, X, y, *, batch: int = 10000) -> tuple[float, float]:
    """``(mean cross-entropy, accuracy)`` of ``model`` on ``(X, y)``."""
    import torch

    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, X.shape[0], batch):
            out = model(X[i:i + batch])
            total_loss += float(torch.nn.functional.cross_entropy(out, y[i:i + batch], reduction="sum"))
            correct += int((out.argmax(1) == y[i:i + batch]).sum())
    n = max(int(X.shape[0]), 1)
    return total_loss / n, correct / n
