"""Writing a benchmark's JSON report (shared by the scripts in this folder)."""
from __future__ import annotations

import json
from pathlib import Path


def write_report(path, report: dict) -> Path:
    """Write ``report`` as indented JSON to ``path`` (parents created) and say so on stdout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return path
