"""The output folder of a run: what its parts are, the disk they use, and ``overlap-experiments clean``.

A folder written by ``run`` (and ``proxies``, which adds to it) holds:

=====================  ==============================================================  ==========================
part                   what                                                            delete it?
=====================  ==============================================================  ==========================
``seigh/``             SEIGH run stores (sketch Y, basis Q, core), one per Hessian     yes, once the run ended:
                                                                                       ``clean`` (or ``run
                                                                                       --no-keep-stores``)
``analysis/``          the analysis cache (curves, eigenvalues, kept eigenvectors)     costs a recomputation
``checkpoints/``       θ_t of the analysed steps (and the dense schedule of Fig. 15)   costs retraining
``hessian_samples/``   the stored Hessian samples                                      redrawn on the next run
``*.json``, ``*.png``  results, figures, ``report.html``                               redrawn from the json
=====================  ==============================================================  ==========================

The stores are the bulk (438 MB of the default ``run mnist16``; 140 GB for
ResNet-18's sketch at the paper's size) and nothing reads them once their
analyses are in ``analysis/``: a rerun takes the cached records, and
``sketched_*`` cache keys name a store by its parameters, not its files.
A store a run is writing (its ``_lock`` is there) is never removed.
"""
from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["PARTS", "STORES", "disk_use", "describe_use", "format_bytes", "remove_store", "clean", "add_parser"]

#: the folders of a run and what deleting them costs (the report's disk table)
PARTS = {
    "seigh": "SEIGH run stores; not read once their analyses are cached: `overlap-experiments clean DIR`",
    "analysis": "analysis cache; deleting it recomputes every Hessian",
    "checkpoints": "training checkpoints; deleting them retrains",
    "hessian_samples": "stored Hessian samples; redrawn by the next run",
}
#: the folder of the SEIGH run stores
STORES = "seigh"


def _bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def disk_use(folder) -> dict:
    """``{"total": bytes, "parts": {name: bytes}}`` of ``folder``: each folder of :data:`PARTS` that exists,
    and ``"files"`` for everything else (results, figures, reports)."""
    folder = Path(folder)
    parts = {name: _bytes(folder / name) for name in PARTS if (folder / name).is_dir()}
    parts["files"] = sum(_bytes(p) for p in folder.iterdir() if p.name not in PARTS) if folder.is_dir() else 0
    return {"total": sum(parts.values()), "parts": parts}


def format_bytes(n: float) -> str:
    """``"438 MB"``, ``"1.2 GB"``, ``"24 kB"`` (powers of 1000, as ``du --si``)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            v = n / size
            return f"{v:.1f} {unit}" if v < 10 else f"{v:.0f} {unit}"
    return f"{int(n)} B"


def describe_use(use: dict) -> str:
    """``"604 MB: seigh 438 MB, analysis 161 MB, …"``, the largest parts first."""
    parts = sorted(use["parts"].items(), key=lambda kv: -kv[1])
    return f"{format_bytes(use['total'])}: " + ", ".join(f"{n} {format_bytes(b)}" for n, b in parts if b)


def remove_store(path) -> int:
    """Delete the SEIGH run store at ``path`` unless a run holds it (its ``_lock`` is there);
    returns the bytes freed (0 when kept or absent)."""
    path = Path(path)
    if not path.is_dir():
        return 0
    if (path / "_lock").exists():
        logger.warning("kept %s: a run holds it (its _lock is there)", path)
        return 0
    n = _bytes(path)
    shutil.rmtree(path)
    return n


def clean(folder, *, dry_run: bool = False) -> dict:
    """Remove the SEIGH run stores of the run in ``folder`` (:data:`STORES`); ``dry_run``: only count.
    Returns ``{"stores": n, "bytes": freed (or to free)}``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"DIR={str(folder)!r} is not a folder")
    stores = sorted(p for p in (folder / STORES).glob("*.zarr") if p.is_dir()) if (folder / STORES).is_dir() else []
    freed, n = 0, 0
    for p in stores:
        if dry_run:
            if not (p / "_lock").exists():
                freed, n = freed + _bytes(p), n + 1
            continue
        b = remove_store(p)
        if b or not p.exists():
            freed, n = freed + b, n + 1
    return {"stores": n, "bytes": freed}


# ------------------------------------------------------------------------------------------ command line
def add_parser(subparsers) -> argparse.ArgumentParser:
    """The ``clean`` subcommand."""
    p = subparsers.add_parser("clean", help="delete the SEIGH run stores of a finished run (the bulk of its disk)",
                              description="Delete DIR/seigh/*.zarr, the SEIGH run stores, once a run has ended: "
                                          "its analyses stay cached in DIR/analysis, so rerunning the same command "
                                          "still finds every result. Stores a running job holds are kept.")
    p.add_argument("dir", metavar="DIR", help="output folder of a run")
    p.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    p.set_defaults(handler=_command)
    return p


def _command(args) -> int:
    before = disk_use(args.dir)
    done = clean(args.dir, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{args.dir}: {verb} {done['stores']} SEIGH stores, {format_bytes(done['bytes'])} "
          f"(the folder held {describe_use(before)})")
    return 0
