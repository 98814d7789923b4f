"""JSON output of the experiments: NumPy scalars/arrays and paths converted, files replaced atomically."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

__all__ = ["json_default", "write_json"]


def json_default(o):
    """``default=`` hook of :func:`json.dumps` for NumPy integers, floats, arrays and paths."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path, obj) -> None:
    """Write ``obj`` to ``path`` through a temporary file and ``os.replace``: a crash
    never leaves a half-written JSON file behind."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=json_default, allow_nan=True))
    os.replace(tmp, path)
