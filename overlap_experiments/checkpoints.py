"""Training checkpoints on disk: one plain state dict per step, loaded without unpickling code.

``ckpt_dir/step_XXXXXX.pt`` holds θ_t, the parameters after ``t`` SGD
updates (``torch.save(model.state_dict())``, written atomically), loaded back
with ``torch.load(..., weights_only=True)`` by :func:`load_checkpoint`, which
also checks that it is a dict of tensors fitting the model.
:func:`dense_schedule` is the checkpoint schedule of the §6.1 figures.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["dense_schedule", "checkpoint_path", "existing_checkpoints", "save_checkpoint", "load_checkpoint",
           "load_model"]


def dense_schedule(total: int = 1000, every: int = 5, dense_until: int = 250, n_log: int = 40) -> list[int]:
    """Steps to checkpoint: every ``every``-th step up to ``dense_until`` (the
    early-crystallisation plots, paper Figs. 15–16) plus ``n_log`` log-spaced
    steps in [1, total], the round steps 1, 2, 5, 10, 20, 50, …, plus 0 and
    ``total``; sorted, unique (79+ steps for total = 1000, ~30 KB each for mnist16)."""
    for name, v in (("total", total), ("every", every), ("n_log", n_log)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name}={v!r} must be a positive int")
    steps = set(range(0, min(dense_until, total) + 1, every))
    steps.update(int(round(s)) for s in np.logspace(0, np.log10(total), n_log))
    steps.update(m * 10**e for e in range(len(str(total))) for m in (1, 2, 5))  # 1-2-5 round steps
    steps.update((0, total))
    return sorted(s for s in steps if 0 <= s <= total)


def checkpoint_path(ckpt_dir, step: int) -> Path:
    """``ckpt_dir/step_XXXXXX.pt``, the file of θ_step."""
    return Path(ckpt_dir) / f"step_{int(step):06d}.pt"


def existing_checkpoints(ckpt_dir) -> list[int]:
    """Steps that have a checkpoint file in ``ckpt_dir``, sorted."""
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


def save_checkpoint(model, path) -> None:
    """Write CPU copies of ``model``'s state dict to ``path`` through a temporary file."""
    import torch  # torch: optional dependency (the experiments extra)

    path = Path(path)
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
    import torch  # optional dependency

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
    """``problem.build_model()`` with the weights of checkpoint ``path``, in ``eval()`` mode."""
    model = problem.build_model(seed=0)
    load_checkpoint(path, model)
    model.eval()
    return model
