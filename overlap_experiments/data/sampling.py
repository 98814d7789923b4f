"""Class-balanced Hessian samples (paper §6.1: "a fixed set of 500 random samples (50 per
class)"; Table 1: N_train / N_test of every problem)."""
from __future__ import annotations

import numpy as np

__all__ = ["balanced_sample"]


def balanced_sample(labels, n: int, num_classes: int, seed: int, *, stream) -> np.ndarray:
    """``n`` distinct indices balanced over the classes, sorted.

    Every class gets ``n // num_classes`` samples; the ``n mod num_classes``
    remaining ones go to distinct classes drawn at random among those with
    an extra sample to spare (so N = 8 works for 1000 ImageNet classes).

    Parameters
    ----------
    labels : (N,) integer labels in 0..num_classes-1 (NumPy or torch).
    n : sample size (≤ N).
    num_classes : number of classes C.
    seed : non-negative int.
    stream : the ``spawn_key`` of the draw, ``SeedSequence(seed, spawn_key=stream)``
        (a problem's :attr:`~overlap_experiments.problems.Problem.sample_stream`).

    Returns
    -------
    (n,) int64 array, sorted ascending. Raises ``ValueError`` when a class has
    too few samples.
    """
    y = np.asarray(labels, dtype=np.int64)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n={n!r} must be a positive int")
    n = int(n)
    if n > y.size:
        raise ValueError(f"a Hessian sample of {n} needs at least {n} images, the split has {y.size}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(stream)))
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
