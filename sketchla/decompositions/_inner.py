"""Where a single-pass SEIGH (or SSVD) keeps its inner sketch: stored, or accumulated as it is measured (issue 18.4).

The inner sketch ``M_I = Υᵀ Y`` (``n_I × n_I``, paper Alg. 2 line 2) needs
the columns ``Y[:, n_O:] = A Ω[:, n_O:]`` only through ``Υᵀ``. Two ways to
keep it:

* ``"store"``: ``Y`` (``D × n_I``) is stored; ``Υᵀ Y`` is one streamed pass
  with the other thin products. The store holds ``D · (n_I + n_O)`` numbers
  (``Y`` and ``Q``).
* ``"accumulate"``: only ``M_O = Y[:, :n_O]`` is stored (array ``Y``,
  ``D × n_O``); each measurement task of the inner-only columns stores
  ``Υᵀ A Ω[:, j0:j1]`` (array ``UY``, ``n_I × (n_I − n_O)`` float64; see
  :func:`sketchla.projection.project_columns`). The store holds
  ``2 · D · n_O`` numbers plus ``O(n_I²)``. Each such task draws all of
  ``Υ`` (``D · n_I`` numbers) and multiplies it with its columns, so the
  cost is ``(n_I − n_O) / chunk`` draws of ``Υ``: small beside an expensive
  operator (a Hessian) or with a wide ``chunk``, large beside a cheap one.

The rule of ``inner_sketch="auto"`` (:func:`resolve_inner`), decided once
per run and recorded in the store (stage ``inner_sketch``), so a resumed run
keeps it:

1. a store that already holds a single-pass measurement without a record
   (made before this choice existed) keeps ``"store"``;
2. on a local file system, ``"accumulate"`` if the free space cannot hold
   what ``"store"`` keeps (SEIGH: ``Y`` and ``Q``, ``D · (n_I + n_O) ·
   itemsize``) — the only way the run fits;
3. ``"store"`` where the inner-only columns are small
   (SEIGH: ``D · (n_I − n_O) · itemsize`` < :data:`AUTO_MIN_BYTES`): there is
   little disk to save, and no timing decides (so small runs are reproducible);
4. otherwise by cost: one operator application to one column of Ω (twice,
   the faster counts: the first call may include warm-up) and the projection
   of ``chunk`` columns timed on one tile of rows, on the measurement's
   scheduler; ``"accumulate"`` when the projection of a task costs at most
   :data:`AUTO_OVERHEAD` of the task's operator applications, else ``"store"``.

SSVD (paper Alg. 1) keeps its inner sketch ``Υ_Iᵀ A Ω_I`` the same way: its
``n_I`` inner columns of ``A [Ω_O, Ω_I]`` projected by ``Υ_I`` (``UY``,
``n_I × n_I``), ``A Ω_O`` stored as ``Y``.

The two modes compute the same ``M_I`` up to float rounding (tested), but not
bitwise: for bitwise-reproducible fresh runs, fix the mode. Within a mode,
results are bitwise independent of the chunking and the worker count.
"""
from __future__ import annotations

import logging
import shutil
import time

import numpy as np

from ..executor import run_task
from ..projection import projection_cost
from ..store import StoreMismatchError
from ..store.location import is_url

log = logging.getLogger(__name__)

MODES = ("auto", "store", "accumulate")
#: the projection cost ``"auto"`` accepts, as a fraction of a task's operator applications
AUTO_OVERHEAD = 0.1
#: below this many bytes of inner-only columns ``"auto"`` stores them without timing anything
AUTO_MIN_BYTES = 2**30
#: the run-store stage holding the decision
STAGE = "inner_sketch"


def check_inner_sketch(inner_sketch, passes: int, overwrite_sketch=False) -> str:
    """``inner_sketch=`` and ``overwrite_sketch=`` of ``seigh``: a mode of :data:`MODES` (multi-pass
    runs have no inner sketch); ``overwrite_sketch=True`` implies ``"accumulate"`` (returned)."""
    if inner_sketch not in MODES:
        raise ValueError(f"inner_sketch={inner_sketch!r} must be one of {MODES}")
    if not isinstance(overwrite_sketch, (bool, np.bool_)):
        raise TypeError(f"overwrite_sketch must be True or False, got {overwrite_sketch!r}")
    if passes and (inner_sketch != "auto" or overwrite_sketch):
        what = f"inner_sketch={inner_sketch!r}" if inner_sketch != "auto" else "overwrite_sketch=True"
        raise ValueError(f"{what} applies to single-pass runs; passes={passes} keeps no inner sketch "
                         "(leave inner_sketch='auto', overwrite_sketch=False)")
    if overwrite_sketch:
        if inner_sketch == "store":
            raise ValueError("overwrite_sketch=True keeps the inner sketch accumulated (the projected UY is "
                             "what identifies the operator once M_O is gone): use inner_sketch='accumulate' "
                             "or 'auto'")
        return "accumulate"
    return inner_sketch


def resolve_inner(run, requested: str, op, omega, upsilon, chunk: int, scheduler, itemsize: int, *,
                  inner_cols: int, store_bytes: int) -> str:
    """The mode of this run (module docstring), recorded in ``run`` (stage :data:`STAGE`).

    ``omega``: the test matrix of the measurement ``Y`` (all its columns);
    ``upsilon``: the ``D_out × m`` test matrix the inner-only columns are
    projected by; ``inner_cols``: how many of ``omega``'s columns (the last
    ones) are inner-only; ``store_bytes``: what ``"store"`` keeps on disk
    (SEIGH: ``Y`` and ``Q``); ``chunk``: the plan's columns per measurement
    task; ``scheduler``: the measurement's resolved scheduler
    (:func:`sketchla.executor.run_schedulers`).
    A recorded mode other than an explicit ``requested`` one is refused
    (:class:`~sketchla.store.StoreMismatchError`), before anything is measured.
    """
    recorded = (run.get_stage(STAGE) or {}).get("mode")
    if recorded is None and "Y" in run and int(run["Y"].shape[1]) == int(omega.shape[1]):
        recorded = "store"  # a store made before the choice existed (rule 1)
    if recorded is not None:
        if requested not in ("auto", recorded):
            raise StoreMismatchError(
                f"store {run.path!r} keeps the inner sketch as {recorded!r}; inner_sketch={requested!r} "
                f"cannot resume it (pass inner_sketch='auto' or {recorded!r}, or use another store)")
        return recorded
    info = {"mode": requested, "why": "requested"} if requested != "auto" else _auto(
        run, op, omega, upsilon, chunk, scheduler, int(upsilon.shape[0]) * inner_cols * itemsize, store_bytes)
    log.info("inner sketch of %s: %s (%s)", run.path, info["mode"], info["why"])
    run.set_stage(STAGE, info)
    return info["mode"]


def _auto(run, op, omega, upsilon, chunk, scheduler, inner_bytes, need) -> dict:
    free = _free_bytes(run.path)
    if free is not None and free < need:
        return {"mode": "accumulate", "why": f"the stored sketch and bases need {need / 1e9:.1f} GB, "
                f"{free / 1e9:.1f} GB are free", "free_bytes": free}
    if inner_bytes < AUTO_MIN_BYTES:
        return {"mode": "store", "why": f"the inner-only columns are small ({inner_bytes / 1e6:.0f} MB)"}
    t_col, t_proj = run_task(scheduler, _costs, op, omega, upsilon, chunk)
    ratio = t_proj / max(chunk * t_col, 1e-12)
    mode = "accumulate" if ratio <= AUTO_OVERHEAD else "store"
    return {"mode": mode, "why": (f"projecting a task's {chunk} columns costs {ratio:.3g}× their {chunk} operator "
                                  f"applications (accumulate at ≤ {AUTO_OVERHEAD:g}×)"),
            "seconds_per_column": t_col, "seconds_projection_per_task": t_proj}


def _costs(op, omega, upsilon, chunk):
    """One task: seconds of one operator application (best of two) and of one task's projection."""
    from ..measurement import _applied  # the measurement's own application path

    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        _applied(op, omega, None, 0, 1, False, None, omega.dtype.name, "Y")
        times.append(time.perf_counter() - t0)
    return min(times), projection_cost(upsilon, chunk)


def _free_bytes(path) -> int | None:
    """Free bytes of the local file system holding ``path``; ``None`` for a URL (unknown)."""
    if is_url(path):
        return None
    try:
        return int(shutil.disk_usage(str(path)).free)
    except OSError:
        return None
