"""The Hessian of a checkpoint on a stored sample as a recipe that each Dask worker builds once.

:func:`hessian_recipe` gives a :class:`sketchla.RecipeOperator`: only the
recipe — problem name (architecture), the checkpoint's absolute path and
SHA-256, the stored sample's files and digest, and the product settings —
is shipped to workers; each builds the D × D :class:`~.operator.HessianOperator`
once (:func:`build_hessian_operator`) and reuses it for all its measurement
tasks. The files must be visible to the workers (a shared file system, as
the Zarr store).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import sketchla as sk

from .. import problems
from ..checkpoints import load_model
from ..fileio import file_digest
from .operator import DEFAULT_BLOCK, HessianOperator

__all__ = ["hessian_recipe", "build_hessian_operator"]


def build_hessian_operator(problem_name: str, checkpoint: str, sample_X: str, sample_y: str, *,
                           checkpoint_digest: str, sample_digest: str, device: str = "auto",
                           vectorize: bool = True, block: int = DEFAULT_BLOCK, batch_size: int | None = None,
                           precision: str = "float32") -> HessianOperator:
    """Recipe factory (runs once per worker process): checkpoint + stored sample → :class:`HessianOperator`.

    The files must match the digests the driver planned with, so a worker
    never measures another checkpoint or sample than the one planned.
    ``device="auto"`` puts the model and the N samples on the worker's GPU
    when it has one. ``precision`` is the operator's dtype.
    """
    import torch  # torch: optional dependency (the experiments extra)

    if file_digest(checkpoint) != checkpoint_digest:
        raise ValueError(f"checkpoint {checkpoint!r} on this worker differs from the one the recipe was made for")
    if file_digest(sample_X) != sample_digest:
        raise ValueError(f"Hessian sample {sample_X!r} on this worker differs from the one the recipe was made for")
    model = load_model(problems.get(problem_name), checkpoint)
    X = torch.from_numpy(np.load(sample_X))
    y = torch.from_numpy(np.load(sample_y))
    return HessianOperator(model, X, y, dtype=precision, block=block, batch_size=batch_size, device=device,
                           vectorize=vectorize)


def hessian_recipe(problem, checkpoint, sample: dict, *, checkpoint_digest: str | None = None,
                   device: str = "auto", vectorize: bool = True, block: int = DEFAULT_BLOCK,
                   batch_size: int | None = None, dtype: str = "float32") -> sk.RecipeOperator:
    """The Hessian (D × D, symmetric) of ``checkpoint`` on a stored ``sample``
    (:func:`~.samples.store_sample`'s record) as a :class:`sketchla.RecipeOperator`.

    ``checkpoint_digest``: the checkpoint's :func:`~overlap_experiments.fileio.file_digest`
    where the caller has it already (else it is computed here). ``block``:
    columns per vmapped product; ``batch_size``: samples per curvlinops
    mini-batch (``None``: all N at once); neither changes H.
    """
    checkpoint = str(Path(checkpoint).resolve())
    D = problem.n_params
    return sk.RecipeOperator(
        build_hessian_operator, problem.name, checkpoint, sample["X"], sample["y"],
        checkpoint_digest=checkpoint_digest or file_digest(checkpoint), sample_digest=sample["digest_X"],
        device=device, vectorize=vectorize, block=block, batch_size=batch_size, precision=dtype,
        shape=(D, D), dtype=dtype, symmetric=True,
    )
