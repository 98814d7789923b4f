"""Timing and writing a benchmark's JSON report (shared by the scripts in this folder)."""
from __future__ import annotations

import json
import time
from pathlib import Path


def best_seconds(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``fn()`` (the least disturbed by a shared machine)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def write_report(path, report: dict) -> Path:
    """Write ``report`` as indented JSON to ``path`` (parents created) and say so on stdout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return path
