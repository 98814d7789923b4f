"""JSON output of the experiments: NumPy values and paths converted, files replaced atomically."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["json_default", "write_json", "write_results"]


def json_default(o):
    """``default=`` hook of :func:`json.dumps`: paths as strings, NumPy values as
    :func:`sketchla.store.json_default` converts them for run stores."""
    if isinstance(o, Path):
        return str(o)
    from sketchla.store import json_default as store_json_default  # Zarr only when NumPy values occur

    return store_json_default(o)


def write_json(path, obj) -> None:
    """Write ``obj`` to ``path`` through a temporary file and ``os.replace``: a crash
    never leaves a half-written JSON file behind."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=json_default, allow_nan=True))
    os.replace(tmp, path)


def write_results(out, results: dict, timings: dict, t_start: float, make_figures=None) -> Path:
    """Finish a run: draw its figures (``make_figures(results, out)`` → paths, timed),
    stamp ``timings["total"]`` since ``t_start`` and write ``out/results.json``."""
    out = Path(out)
    results["timings"] = timings
    if make_figures is not None:
        t0 = time.perf_counter()
        results["figures"] = make_figures(results, out)
        timings["figures"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    path = out / "results.json"
    write_json(path, results)
    return path
