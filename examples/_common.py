"""What the examples share: peak memory, the largest principal angle, a table."""
from __future__ import annotations

import resource
import sys


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024


def largest_angle(V1, V2) -> float:
    """Largest principal angle (radians) between the column spans of V1 and V2 (n × k, orthonormal
    columns), by :func:`sketchla.grassmann.principal_angles` (float32 bases: not checked)."""
    from sketchla import grassmann

    return float(grassmann.principal_angles(V1, V2, check=False).max())


def print_table(rows, header):
    """Print ``rows`` (lists of cells) under ``header`` in aligned columns."""
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for j, r in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(c) -> str:
    if isinstance(c, (bool, int, str)):
        return str(c)
    try:
        return f"{float(c):.4g}"  # Python and NumPy floats alike
    except (TypeError, ValueError):
        return str(c)
