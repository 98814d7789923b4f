"""The run's analysis cache: one ``.npz`` per analysed Hessian, keyed by what determines it.

An entry ``FOLDER/{kind}_{split}_step{step:06d}.npz`` (``kind`` = ``"exact"``
or ``"sketched"``) holds a record — a flat dict of NumPy arrays (curves,
eigenvalues, kept eigenvectors) and JSON values (timings, flags, the SEIGH
store's path) — and the key it was computed for. The key names the
Hessian by content (SHA-256 of the checkpoint and of the stored sample) and
every setting of the analysis, so an entry is only reused for the very same
computation; another key, or a damaged file, means: compute again and
overwrite. Files are written through a temporary file and ``os.replace``
and read with ``allow_pickle=False``.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from .fileio import json_default

logger = logging.getLogger(__name__)

__all__ = ["AnalysisCache"]


class AnalysisCache:
    """Records of analysed Hessians in ``folder`` (created on first write)."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def path(self, kind: str, split: str, step: int) -> Path:
        return self.folder / f"{kind}_{split}_step{int(step):06d}.npz"

    def load(self, kind: str, split: str, step: int, key: dict) -> dict | None:
        """The record stored for ``key``, or ``None`` (absent, other key, damaged)."""
        path = self.path(kind, split, step)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta["key"] != json.loads(json.dumps(key, default=json_default)):
                    return None
                record = dict(meta["record"])
                record.update({k: z[k] for k in z.files if k != "meta"})
                return record
        except Exception as exc:  # damaged cache: recompute
            logger.warning("ignoring damaged cache %s (%s)", path, exc)
            return None

    def save(self, kind: str, split: str, step: int, key: dict, record: dict) -> None:
        """Store ``record`` (arrays as arrays, the rest as JSON) under ``key``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(kind, split, step)
        arrays = {k: v for k, v in record.items() if isinstance(v, np.ndarray)}
        rest = {k: v for k, v in record.items() if not isinstance(v, np.ndarray)}
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, meta=json.dumps({"key": key, "record": rest}, default=json_default), **arrays)
        os.replace(tmp, path)

    def fetch(self, kind: str, split: str, step: int, key: dict, compute) -> tuple[dict, bool]:
        """``(record, reused)``: the stored record for ``key``, else ``compute()``'s, stored."""
        record = self.load(kind, split, step, key)
        if record is not None:
            return record, True
        record = compute()
        self.save(kind, split, step, key, record)
        return record, False
