"""Stage ``Q`` written over the sketch it comes from, band by band (``seigh(..., overwrite_sketch=True)``, issue 18.4).

``Q = qr(M_O)`` (paper Alg. 2 line 3) normally goes to its own array next to
``M_O``, so the store holds both. Where the caller allows, Q replaces M_O
instead: the store then never holds much more than ``D · n_O`` numbers of
thin matrices (plus the bands in flight).

1. Stage ``Q_factor``: the Gram passes of Cholesky QR
   (:func:`sketchla.linalg.cholesky_factor`) over ``M_O``; the factor
   (O(n_O²) numbers) is saved. Nothing is deleted yet, so a numerically
   rank-deficient ``M_O`` (``ValueError``) leaves the run as it was and the
   caller falls back to :func:`._stages.orthonormalize`.
2. The completion records of ``M_O``'s measurement are dropped (they would
   describe files about to go), then one task per row band ``i`` (a Zarr row
   chunk): read the band of ``M_O``, write ``Q``'s band, write its completion
   record, *then* delete the band's chunk files of ``M_O``. A crash between
   any two steps leaves each band either still in ``M_O`` or recorded in
   ``Q``: a resumed run redoes only the bands without a record, from the
   saved factor.
3. Stage ``Q`` (with ``replaced``), and what is left of ``M_O`` is removed.

A resumed run must not measure ``M_O`` again once step 1 is saved
(:func:`started`).
"""
from __future__ import annotations

import logging

import dask

from ..executor import compute
from ..graph_keys import key_prefix
from ..linalg import CholeskyFactor, cholesky_factor
from ..store import chunk_manifest, open_array, write_done_record, write_every_chunk
from ..store.fastread import read_region
from ..store.location import as_location
from ._stages import load_small, save_small, sketch_rows

log = logging.getLogger(__name__)


def started(run, name: str = "Q") -> bool:
    """Whether the replacement of the sketch by ``name`` has begun (its factor is saved)."""
    return run.get_stage(f"{name}_factor", verify=False) is not None or run.get_stage(name, verify=False) is not None


def orthonormalize_replacing(run, source: str, n: int, name: str, row_block: int, client=None, verify="size"):
    """Stage ``name``: Q of the first ``n`` columns of ``run[source]``, written over it (module docstring).

    ``row_block``: the source's Zarr row chunk (Q's bands). Returns ``run[name]``.
    Raises ``ValueError`` (before anything is deleted) where Cholesky QR does not apply.
    """
    if run.get_stage(name, verify=verify) is not None:
        return run.group[name]
    factor = _load_factor(run, name)
    if factor is None:
        src = run.group[source]
        factor = cholesky_factor(sketch_rows(src, row_block, slice(0, n)), block_rows=row_block, client=client)
        _save_factor(run, name, factor)
    run.forget_all_done(source)  # its measurement records go first: the files are about to go
    D = int(run.group[source].shape[0]) if source in run else None
    if D is None:
        raise RuntimeError(f"store {run.path!r}: stage {name!r} is unfinished but its source {source!r} is gone")
    src = run.group[source]
    out = run.array(name, (D, n), chunks=(row_block, n), dtype=src.dtype)
    bands = [(i, s, min(D, s + row_block)) for i, s in enumerate(range(0, D, row_block))]
    done = {k for k in run.done_keys(name) if k.isdigit()}
    for key, why in run.verify_done(name, done, verify=verify).items():
        raise RuntimeError(f"store {run.path!r}: band {key} of {name!r} is damaged ({why}) and the sketch it "
                           "came from was deleted (overwrite_sketch=True); run again with a new store")
    todo = [b for b in bands if str(b[0]) not in done]
    log.info("writing %s over %s: %d of %d bands", name, source, len(todo), len(bands))
    prefix = key_prefix(f"replace-{name}", str(run.path), source, n, row_block, factor.r, factor.e)
    f = dask.delayed(factor, name=f"{prefix}-factor")  # one key: shipped once per worker, not per band
    tasks = [dask.delayed(_replace_band, pure=False)(run.path, source, name, n, i, s, e, f,
                                                     dask_key_name=f"{prefix}-{i}") for i, s, e in todo]
    compute(tasks, client=client)
    run.set_stage(name, {"shape": [D, n], "replaced": source}, arrays=[name])
    run.drop_array(source)
    return out


def _replace_band(store_path, source, name, n, i, start, stop, factor):
    """One band: Q's rows ``[start, stop)`` written and recorded, then the source's band deleted."""
    src = open_array(store_path, source, mode="r")
    out = write_every_chunk(open_array(store_path, name))
    q = factor.q_block(read_region(src, slice(start, stop), slice(0, n)), i, out.dtype)
    out[start:stop] = q
    files = chunk_manifest(store_path, name, out, [(i, j) for j in range(out.cdata_shape[1])])
    write_done_record(store_path, name, i, files)
    loc = as_location(store_path)
    for j in range(src.cdata_shape[1]):
        loc.delete(f"{source}/{src.metadata.encode_chunk_key((i, j))}")
    return i


def _save_factor(run, name, f) -> None:
    arrays, info = f.state()
    save_small(run, f"{name}_factor", {f"{name}_{k}": v for k, v in arrays.items()}, info=info)


def _load_factor(run, name) -> CholeskyFactor | None:
    info = run.get_stage(f"{name}_factor")
    if info is None:
        return None
    keys = ["r_last", "r"] + [f"chain{k}" for k in range(int(info["n_chain"]))]
    return CholeskyFactor.from_state(dict(zip(keys, load_small(run, [f"{name}_{k}" for k in keys]))), info)
