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

Data: the ``"train"`` split of an :class:`overlap_experiments.data.Dataset`
(mini-batches through ``split.batch(indices)``, whatever the data set).
Every update runs under torch's RNG seeded from ``(seed, t)``
(:func:`_step_seed`), so random augmentation and dropout are a pure function
of the seed and the step as well, and a resumed run matches an uninterrupted one.

Checkpoints are the files of :mod:`overlap_experiments.checkpoints`. The
folder also holds ``train_config.json`` (a checkpoint folder made with other
settings is refused) and ``train_log.json`` (losses so far).

:func:`evaluate` gives the mean loss and the accuracy of a model on samples.
"""
from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path

import numpy as np

from .checkpoints import checkpoint_path, dense_schedule, existing_checkpoints, load_checkpoint, save_checkpoint
from .devices import resolve_device
from .fileio import write_json
from .progress import track

logger = logging.getLogger(__name__)

__all__ = ["train", "evaluate", "TrainResult"]


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
    dataset : :class:`overlap_experiments.data.Dataset` (its ``"train"`` split is used).
    ckpt_dir : checkpoint folder (created; resumed if it holds a run with the same settings).
    steps : number of SGD updates (default ``problem.total_steps``).
    seed : initialisation and mini-batch order.
    checkpoint_steps : steps to save (default :func:`~overlap_experiments.checkpoints.dense_schedule`);
        values outside ``[0, steps]`` are an error.
    lr, batch_size : override η and B.
    progress : show progress (:func:`overlap_experiments.progress.track`: a bar on a terminal, log lines elsewhere).
    device : torch device of the updates (``None`` = CPU; "auto", "cuda", … as
        :func:`overlap_experiments.devices.resolve_device`). Checkpoints are
        always saved from CPU copies.
    threads : torch intra-op threads during training (default 1, best for the
        tiny mnist16 MLP; ``None`` keeps torch's setting, for the convnets).
    """
    import torch  # optional dependency (the experiments extra)

    steps = problem.total_steps if steps is None else steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps={steps!r} must be a non-negative int")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    lr = float(problem.lr if lr is None else lr)
    B = int(problem.batch_size if batch_size is None else batch_size)
    if not lr > 0:
        raise ValueError(f"lr={lr!r} must be positive")
    train_split = dataset.split("train")
    n = len(train_split)
    if B < 1 or B > n:
        raise ValueError(f"batch_size={B} must be in [1, {n}] (the training set has {n} samples)")
    if checkpoint_steps is None:
        checkpoint_steps = dense_schedule(steps) if steps >= 1 else [0]
    ck = sorted({int(s) for s in checkpoint_steps})
    if ck and (ck[0] < 0 or ck[-1] > steps):
        raise ValueError(f"checkpoint_steps must lie in [0, steps={steps}], got {ck[0]}..{ck[-1]}")
    ck = sorted(set(ck) | {steps})  # the final parameters are always kept (resume point)

    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    config = {"problem": problem.name, "seed": seed, "lr": lr, "batch_size": B,
              "data": dataset.source.get("name"), "n_train": n}
    if dataset.augment:
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
        save_checkpoint(model, checkpoint_path(ckpt_dir, start))
    model.train()
    ck_set = set(ck)
    end = steps
    try:
        bar = track(range(start, end), desc=f"train {problem.name} (steps {start}..{end})", total=end - start,
                    unit="steps", enabled=progress and end > start)
        for t in bar:
            with torch.random.fork_rng(devices=rng_devices):
                torch.manual_seed(_step_seed(seed, t))
                xb, yb = train_split.batch(_batch_indices(seed, t, n, B))
                xb, yb = xb.to(dev), yb.to(dev)
                model.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
            losses.append(float(loss.detach()))
            if (t + 1) in ck_set:
                save_checkpoint(model, checkpoint_path(ckpt_dir, t + 1))
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


def evaluate(model, X, y, *, batch: int = 10000, device=None) -> tuple[float, float]:
    """``(mean cross-entropy, accuracy)`` of ``model`` on samples ``X`` (N, …) and labels ``y`` (N,).

    ``X``, ``y``: torch tensors or NumPy arrays (a memory-mapped stored
    Hessian sample is read ``batch`` samples at a time). ``device``: where the
    forward passes run (default: where the model is).
    """
    import torch  # optional dependency

    model.eval()
    if device is not None:
        model.to(device)
    y = torch.as_tensor(np.asarray(y)) if not isinstance(y, torch.Tensor) else y
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, X.shape[0], batch):
            xb = X[i:i + batch]
            xb = xb if isinstance(xb, torch.Tensor) else torch.from_numpy(np.array(xb))
            out = model(xb if device is None else xb.to(device))
            out = out if device is None else out.cpu()
            total_loss += float(torch.nn.functional.cross_entropy(out, y[i:i + batch], reduction="sum"))
            correct += int((out.argmax(1) == y[i:i + batch]).sum())
    n = max(int(X.shape[0]), 1)
    return total_loss / n, correct / n
