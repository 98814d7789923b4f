"""Row-block plumbing shared by the streaming routines of :mod:`sketchla.linalg`.

Everything here is about *where the numbers come from and go to*, not about
the numerics:

* :class:`_Source` normalises an input (``zarr.Array``, ``dask.array.Array``
  or, for right-hand sides, an in-memory NumPy/CuPy array) into a list of
  per-row-block references that a Dask task can turn into an array. Zarr
  blocks are read *inside* the consuming task (a :class:`_ZarrSlice`), so the
  scheduler never reads ahead and holds more blocks than it computes on —
  that is what keeps the peak memory at O(block_rows · n) per worker.
* :func:`default_block_rows` picks the row-block height from a byte budget.
* :func:`check_finite_block` raises a ``ValueError`` naming the row block that
  holds NaN/Inf.
* :func:`prepare_out` validates or creates a Zarr output *before* any work is
  done (unwritable, wrongly shaped, non-float or narrower-dtype outputs are
  refused); :func:`check_out_store` refuses an in-memory store that the
  tasks of a distributed client would only see as pickled copies.
* :func:`compute` runs Dask objects on the given client, or else on whatever
  scheduler is active (the threaded one by default, a distributed ``Client``
  when one is the default), with BLAS limited to one thread per task while
  several tasks share this process's cores.
"""
from __future__ import annotations

import logging
import math
import os
import uuid
from contextlib import nullcontext

import dask
import dask.array as da
import dask.local
import dask.threaded
import numpy as np
import zarr

from ..backend import asnumpy, check_float_dtype, get_array_module, is_cupy_array
from ..store import write_every_chunk
from ..store.outputs import url_output
from ._kernels import reorder

logger = logging.getLogger(__name__)

#: Default byte budget for one row block of the input (per block, per worker).
DEFAULT_BLOCK_BYTES = 64 * 2**20


# --------------------------------------------------------------------------- sizes
def default_block_rows(n_cols: int, itemsize: int, *, n_rows: int | None = None,
                       budget_bytes: int = DEFAULT_BLOCK_BYTES, align: int | None = None) -> int:
    """Row-block height for a D×n array: ``budget_bytes / (n · itemsize)`` rows.

    At least ``n_cols`` rows (so a block's R factor is square), rounded down to
    a multiple of ``align`` (a Zarr chunk height) when ``align`` is smaller,
    and at most ``n_rows``.
    """
    rows = max(int(budget_bytes) // max(int(n_cols) * int(itemsize), 1), int(n_cols), 1)
    if align and align < rows:
        rows = (rows // align) * align
    if n_rows is not None:
        rows = min(rows, max(int(n_rows), 1))
    return int(rows)


def check_block_rows(block_rows, name: str = "block_rows") -> int:
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int or None, got {block_rows!r}")
    if block_rows < 1:
        raise ValueError(f"{name} must be >= 1, got {block_rows}")
    return int(block_rows)


def row_bounds(n_rows: int, block_rows: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n_rows)``; the last block may be ragged."""
    return [(s, min(s + block_rows, n_rows)) for s in range(0, n_rows, block_rows)]


def align_block_rows(block_rows: int, out) -> int:
    """Round ``block_rows`` to a multiple of ``out``'s row chunk (or shard).

    Concurrent tasks write disjoint row blocks of ``out``; they must not
    share a Zarr chunk (a read-modify-write race), so blocks are aligned to
    whole chunks of the output.
    """
    if out is None:
        return block_rows
    unit = (out.shards or out.chunks)[0]
    return max(unit, (block_rows // unit) * unit)


def plan_output(src, out, out_shape, width: int, dtype, block_rows, client, storage_options=None):
    """Row blocking and validated output of a streamed ``D × m`` result.

    ``src`` is the :class:`_Source` read block by block, ``width`` the number
    of numbers per row held in memory at once (for the default block height),
    ``dtype`` the requested output dtype (``None``: ``src``'s). ``out`` is
    checked or created (:func:`prepare_out`, :func:`check_out_store`) and the
    block height aligned to its chunks.

    Returns ``(out, block_rows, bounds, out_dtype)``.
    """
    out_dtype = check_float_dtype(dtype if dtype is not None else src.dtype, "dtype")
    D = out_shape[0]
    if block_rows is None:
        block_rows = default_block_rows(width, max(src.dtype.itemsize, out_dtype.itemsize),
                                        n_rows=D, align=src.row_chunk)
    else:
        block_rows = check_block_rows(block_rows)
    out = prepare_out(out, out_shape, out_dtype, block_rows, strict_dtype=dtype is not None,
                      storage_options=storage_options)
    check_out_store(out, client)
    block_rows = align_block_rows(block_rows, out)
    return out, block_rows, row_bounds(D, block_rows), out_dtype


# --------------------------------------------------------------------------- sources
class _ZarrSlice:
    """A lazy reference to rows ``start:stop`` of a Zarr array, read inside a task."""

    __slots__ = ("array", "start", "stop", "gpu", "vector")

    def __init__(self, array, start, stop, gpu=False, vector=False):
        self.array, self.start, self.stop, self.gpu, self.vector = array, start, stop, gpu, vector

    def read(self):
        if self.gpu:
            block = read_rows_to_gpu(self.array, self.start, self.stop)
        else:
            block = self.array[self.start:self.stop]
        if self.vector:
            block = block.reshape(-1, 1)
        return block


def read_rows_to_gpu(array, start: int, stop: int):
    """Rows ``start:stop`` of the Zarr ``array`` decoded into a CuPy array.

    Zarr's GPU buffer prototype is passed to this one read instead of
    switching the process-wide ``zarr.config.enable_gpu()``: that setting is
    global, and concurrent Dask threads entering and leaving it restore each
    other's saved values out of order (a CPU read could then return CuPy, or
    the process could stay in GPU mode after the run). The file bytes still
    arrive in host memory (Zarr's local and object stores read there) and go
    to the device in one copy; codecs that only run on the host (CRC-32C)
    copy back and forth, which Zarr warns about per chunk; that warning is
    silenced here since it is expected.
    """
    import warnings

    from zarr.core.buffer import gpu as zarr_gpu

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*__cuda_array_interface__.*")
        return array.get_basic_selection(slice(start, stop), prototype=zarr_gpu.buffer_prototype)


def materialize(ref):
    """Turn a block reference (:class:`_ZarrSlice` or an array) into an array."""
    if isinstance(ref, _ZarrSlice):
        return ref.read()
    if ref.ndim == 1:
        return ref.reshape(-1, 1)
    return ref


def _is_dask(x) -> bool:
    return isinstance(x, da.Array)


class _Source:
    """A D×n (or length-D) input that can be cut into row blocks.

    ``kind`` is ``"zarr"``, ``"dask"`` or ``"memory"`` (NumPy/CuPy, only where
    ``allow_memory``). A 1-D input is accepted only where ``allow_vector``;
    its blocks are handed out as D_i×1 columns and ``vector`` remembers it.
    """

    def __init__(self, x, name: str, *, allow_vector=False, allow_memory=False, gpu=False):
        self.name, self.gpu = name, bool(gpu)
        if isinstance(x, zarr.Array):
            self.kind = "zarr"
        elif _is_dask(x):
            self.kind = "dask"
        elif allow_memory and (isinstance(x, np.ndarray) or is_cupy_array(x)):
            self.kind = "memory"
        else:
            allowed = "a zarr.Array or a dask.array.Array"
            if allow_memory:
                allowed += " (or a NumPy/CuPy array)"
            raise TypeError(f"{name} must be {allowed}, got {type(x).__name__}")
        if x.ndim == 1 and allow_vector:
            self.vector = True
        elif x.ndim == 2:
            self.vector = False
        else:
            want = "1-D or 2-D" if allow_vector else "2-D (D×n)"
            raise ValueError(f"{name} must be {want}, got an array with shape {tuple(x.shape)}")
        if any(isinstance(s, float) and math.isnan(s) for s in x.shape):
            raise ValueError(f"{name} has unknown shape {x.shape}; call "
                             f"{name}.compute_chunk_sizes() first")
        self.array = x
        self.dtype = check_float_dtype(x.dtype, f"{name}.dtype")
        self.n_rows = int(x.shape[0])
        self.n_cols = 1 if self.vector else int(x.shape[1])

    @property
    def shape(self):
        return (self.n_rows, self.n_cols)

    @property
    def row_chunk(self) -> int | None:
        if self.kind == "zarr":
            return (self.array.shards or self.array.chunks)[0]
        return None

    def xp(self):
        """Array module of the blocks (CuPy for GPU Zarr reads or CuPy-backed Dask)."""
        if self.gpu and self.kind == "zarr":
            import cupy

            return cupy
        return get_array_module(self.array)

    def blocks(self, bounds):
        """One block reference per ``(start, stop)`` in ``bounds`` (a Zarr slice, a
        Delayed Dask block or an in-memory view)."""
        if self.kind == "zarr":
            return [_ZarrSlice(self.array, s, e, self.gpu, self.vector) for s, e in bounds]
        if self.kind == "memory":
            return [self.array[s:e] for s, e in bounds]
        return list(self.banded(bounds).to_delayed().ravel())

    def banded(self, bounds) -> da.Array:
        """The input as a 2-D Dask array with row chunks ``bounds`` and one column chunk."""
        x = self.array
        if self.kind == "zarr":
            x = da.from_array(x, chunks=(tuple(e - s for s, e in bounds),) + x.shape[1:],
                              asarray=False, inline_array=True)
        elif self.kind == "memory":
            x = da.from_array(x, chunks=(tuple(e - s for s, e in bounds),) + x.shape[1:],
                              asarray=False)
        if self.vector:
            x = x[:, None]
        rows = tuple(e - s for s, e in bounds)
        if x.chunks != (rows, (self.n_cols,)):
            x = x.rechunk((rows, (self.n_cols,)))
        return x


def check_same_rows(a: _Source, b: _Source):
    if a.n_rows != b.n_rows:
        raise ValueError(
            f"{b.name} has {b.n_rows} rows but {a.name} has {a.n_rows}; "
            "they must have the same number of rows"
        )


# --------------------------------------------------------------------------- checks
def check_finite_block(block, name: str, index: int, start: int, stop: int):
    """Raise ``ValueError`` if ``block`` (rows ``start:stop`` of ``name``) has NaN/Inf."""
    xp = get_array_module(block)
    if not bool(xp.isfinite(block).all()):
        raise ValueError(
            f"{name} contains NaN or Inf in row block {index} (rows {start}:{stop}); "
            "the input must be finite"
        )


# --------------------------------------------------------------------------- outputs
def prepare_out(out, shape, dtype, chunk_rows: int, name: str = "out", *,
                strict_dtype: bool = False, storage_options=None):
    """Validate ``out`` (a writable ``zarr.Array`` of ``shape``) or create it at a path.

    ``out`` may be ``None`` (returned as is), a ``zarr.Array`` opened writable
    with exactly ``shape`` and a float32/float64 dtype, or a path string /
    ``os.PathLike``: a new array is created there with chunks
    ``(chunk_rows, n)`` and no compressor (noise does not compress); an
    existing Zarr array at the path is reused only if its shape matches. A
    URL (``s3://...``, with ``storage_options``) likewise, through
    :func:`sketchla.store.outputs.url_output` (issue 21).
    An existing array's dtype must be float and not narrower than ``dtype``
    (exactly ``dtype`` when ``strict_dtype``, i.e. the caller asked for one).
    Raises ``ValueError`` (naming ``name``) for anything that cannot be written,
    before any computation starts.
    """
    shape = tuple(int(s) for s in shape)
    if out is None:
        return None
    # issue 21: a URL (s3://..., with storage_options) is opened or created by sketchla.store
    out = url_output(out, shape, dtype, chunk_rows, name, storage_options)
    if isinstance(out, (str, os.PathLike)):
        path = os.fspath(out)
        exists = os.path.isfile(path) or (os.path.isdir(path) and bool(os.listdir(path)))
        if exists:
            try:
                arr = write_every_chunk(zarr.open_array(store=path, mode="r+"))
            except Exception as exc:
                raise ValueError(
                    f"{name}={path!r} exists and is not a writable Zarr array ({exc}); "
                    "give a new path or a zarr.Array"
                ) from exc
        else:
            chunks = (max(1, min(chunk_rows, shape[0])),) + shape[1:]
            try:
                arr = write_every_chunk(zarr.create_array(store=path, shape=shape, chunks=chunks, dtype=dtype,
                                                          compressors=None, fill_value=0.0))
            except Exception as exc:
                raise ValueError(f"cannot create {name} at {path!r}: {exc}") from exc
        out = arr
    if not isinstance(out, zarr.Array):
        raise TypeError(f"{name} must be None, a path or a zarr.Array, got {type(out).__name__}")
    if tuple(out.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(out.shape)}, expected {shape}")
    out_dt = check_float_dtype(out.dtype, f"{name}.dtype")
    want = np.dtype(dtype)
    if strict_dtype and out_dt != want:
        raise ValueError(f"{name}.dtype={out_dt} does not match dtype={want}")
    if out_dt.itemsize < want.itemsize:
        raise ValueError(
            f"{name}.dtype={out_dt} would lose the precision of the {want} result; "
            f"give a {want} {name} (or pass dtype='{out_dt}' to accept the rounding)"
        )
    if out.read_only:
        raise ValueError(f"{name} is opened read-only; open it with mode='r+' or 'a'")
    return out


def write_block(out, start: int, stop: int, block, gpu: bool = False):
    """Write ``block`` into rows ``start:stop`` of the Zarr array ``out``.

    Writes go through host memory (a CuPy block is copied to the host first):
    the bytes must reach the store's host-side I/O anyway, and the stored
    chunks then read back the same with or without ``gpu``.
    """
    del gpu  # reads may go straight to the GPU; writes always leave from the host
    block = asnumpy(block)
    if out.ndim == 1:
        block = block.reshape(-1)
    elif not block.flags.c_contiguous:  # e.g. LAPACK's Fortran-ordered Q
        block = reorder(block, "C")
    out[start:stop] = block


# --------------------------------------------------------------------------- running
def new_prefix(name: str) -> str:
    return f"sketchla-{name}-{uuid.uuid4().hex[:12]}"


def _active_client(client):
    """``client``, or the default ``distributed.Client`` if Dask would use one, else None."""
    if client is not None:
        return client
    scheduler = dask.base.get_scheduler()
    owner = getattr(scheduler, "__self__", None)
    if owner is not None and type(owner).__name__ == "Client":
        return owner
    return None


def _worker_threads(client) -> tuple[int, bool]:
    """``(threads, in_process)`` of the scheduler that will run the tasks."""
    c = _active_client(client)
    if c is None:
        scheduler = dask.base.get_scheduler()
        if scheduler is dask.local.get_sync:
            return 1, True
        n = dask.config.get("num_workers", None) or getattr(dask.threaded, "CPU_COUNT", None)
        return int(n or os.cpu_count() or 1), True
    workers = c.scheduler_info(n_workers=-1).get("workers", {}) if _accepts_n_workers(c) \
        else c.scheduler_info().get("workers", {})
    threads = sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
    in_process = bool(workers) and all(str(a).startswith("inproc://") for a in workers)
    return threads, in_process


def _accepts_n_workers(c) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(c.scheduler_info).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def check_out_store(out, client, name: str = "out"):
    """Refuse an in-memory Zarr ``out`` when a distributed client will run the tasks.

    The graph a ``distributed.Client`` runs is pickled, also for in-process
    workers, so a ``MemoryStore`` reaches each task as a copy: the writes
    would land in the copies and ``out`` would silently stay unwritten.
    """
    if out is None or not isinstance(out.store, zarr.storage.MemoryStore):
        return
    if _active_client(client) is not None:
        raise ValueError(
            f"{name} is a Zarr array in a MemoryStore, which the tasks of a distributed "
            "client receive as pickled copies (the writes would be lost); give a path or a "
            "Zarr array in a store the workers share (a directory, object storage)"
        )


def _blas_limit(client):
    """Context limiting BLAS threads while Dask runs several tasks in this process.

    Each task calls LAPACK/BLAS on its own block; with as many Dask threads as
    cores, multi-threaded BLAS inside each would oversubscribe the cores (and
    OpenBLAS degrades badly under oversubscription). Worker processes of a
    distributed cluster already run with one BLAS thread (Dask's
    ``distributed.nanny.pre-spawn-environ``); nothing is changed for them.
    Needs ``threadpoolctl`` (optional); the limit is process-wide while the
    computation runs.
    """
    try:
        threads, in_process = _worker_threads(client)
    except Exception:  # pragma: no cover - e.g. a client that is shutting down
        return nullcontext()
    if not in_process or threads <= 1:
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return nullcontext()
    per_task = max(1, (os.cpu_count() or 1) // threads)
    return threadpool_limits(limits=per_task, user_api="blas")


def compute(*objs, client=None):
    """``dask.compute`` on ``client`` if given, else on the active scheduler
    (with BLAS threads limited while several tasks share this process's cores)."""
    with _blas_limit(client):
        if client is not None:
            return dask.compute(*objs, scheduler=client.get)
        return dask.compute(*objs)
