"""The fixed Hessian samples of a run, stored once so that every worker reads the same samples.

A sample is the images and labels ``split[indices]`` of a
:class:`~overlap_experiments.data.Dataset`, written under the run folder as

* ``{split}_X.npy`` — float32 (N, …) inputs exactly as the network sees them
  (normalised, never augmented);
* ``{split}_y.npy`` — int64 (N,) labels;
* ``{split}.json`` — its record: ``split``, ``n``, ``indices``, ``source``
  (data set name), absolute paths ``X`` and ``y``, SHA-256 ``digest_X`` and
  ``digest_y``.

The record is what recipes, caches and SEIGH store names refer to (by
digest): no worker needs the data folder or decodes a JPEG. A sample made
from the same indices of the same source is reused; one changed on disk is
rewritten.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from ..fileio import file_digest, write_json

logger = logging.getLogger(__name__)

__all__ = ["store_sample", "load_sample"]

#: samples decoded and written at a time (bounds memory for 224×224 images)
_CHUNK = 256


def store_sample(dataset, split: str, indices, folder) -> dict:
    """Write ``dataset.split(split)[indices]`` into ``folder`` (or reuse the files already there) and
    return its record (see module docstring)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    idx = np.asarray(indices, dtype=np.int64)
    meta_path = folder / f"{split}.json"
    fx, fy = folder / f"{split}_X.npy", folder / f"{split}_y.npy"
    if meta_path.exists() and fx.exists() and fy.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("indices") == [int(i) for i in idx] and meta.get("source") == dataset.source.get("name"):
            if file_digest(fx) == meta["digest_X"] and file_digest(fy) == meta["digest_y"]:
                return meta
            logger.warning("Hessian sample %s changed on disk: rewriting it", fx)
    data = dataset.split(split)
    X0, _ = data.batch(idx[:1])
    X = np.lib.format.open_memmap(fx.with_suffix(".tmp.npy"), mode="w+", dtype=np.float32,
                                  shape=(len(idx), *tuple(X0.shape[1:])))
    y = np.empty(len(idx), dtype=np.int64)
    for j0 in range(0, len(idx), _CHUNK):
        xb, yb = data.batch(idx[j0:j0 + _CHUNK])
        X[j0:j0 + len(yb)] = np.asarray(xb, dtype=np.float32)
        y[j0:j0 + len(yb)] = np.asarray(yb, dtype=np.int64)
    X.flush()
    del X
    os.replace(fx.with_suffix(".tmp.npy"), fx)
    np.save(fy, y)
    meta = {"split": split, "n": int(len(idx)), "indices": [int(i) for i in idx],
            "source": dataset.source.get("name"), "X": str(fx.resolve()), "y": str(fy.resolve()),
            "digest_X": file_digest(fx), "digest_y": file_digest(fy)}
    write_json(meta_path, meta)
    return meta


def load_sample(sample: dict, *, mmap: bool = False):
    """``(X, y)`` of a stored sample record: torch tensors, or NumPy arrays with ``X`` memory-mapped
    (``mmap=True``, for reading a large sample in batches)."""
    if mmap:
        return np.load(sample["X"], mmap_mode="r"), np.load(sample["y"])
    import torch  # torch: optional dependency (the experiments extra)

    return torch.from_numpy(np.load(sample["X"])), torch.from_numpy(np.load(sample["y"]))
