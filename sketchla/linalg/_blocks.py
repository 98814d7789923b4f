"""Row-block plumbing shared by the streaming routines of :mod:`sketchla.linalg`.

Everything here is about *where the numbers come from and go to*, not about
the numerics:

* :class:`_Source` normalises an input (``zarr.Array``, ``dask.array.Array``,
  for right-hand sides an in-memory NumPy/CuPy array, or — where a routine
  allows it — a *generated* factor such as a :class:`sketchla.random.TestMatrix`)
  into a list of per-row-block references that a Dask task can turn into an
  array. Zarr blocks are read and generated blocks drawn *inside* the
  consuming task (a :class:`_ZarrSlice`, a :class:`_Generated`), so the
  scheduler never reads ahead and holds more blocks than it computes on —
  that is what keeps the peak memory at O(block_rows · n) per worker.
* :func:`plan_rows` picks the row-block height (``block_rows``, the
  :class:`~sketchla.blocking.BlockPlan`'s ``row_block``) from the plan.
* :func:`check_finite_block` raises a ``ValueError`` naming the row block that
  holds NaN/Inf.
* :func:`prepare_out` validates or creates a Zarr output *before* any work is
  done (unwritable, wrongly shaped, non-float or narrower-dtype outputs are
  refused); :func:`check_out_store` refuses an in-memory store that the
  tasks of a distributed client would only see as pickled copies.

Which scheduler runs the graphs is decided by :func:`sketchla.executor.compute`;
their keys are deterministic (:func:`sketchla.graph_keys.key_prefix`).
"""
from __future__ import annotations

import logging
import math
import os

import dask.array as da
import numpy as np
import zarr

from ..backend import asnumpy, check_float_dtype, get_array_module, is_cupy_array
from ..blocking import BlockPlan, check_count
from ..executor import active_client
from ..graph_keys import token
from ..store import write_every_chunk
from ..store.fastread import read_region
from ..store.outputs import url_output
from ._kernels import max_abs, reorder

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- sizes
def plan_rows(block_rows, n_cols: int, itemsize: int, *, n_rows: int, align: int | None = None) -> int:
    """Row-block height of a streamed pass over ``n_cols`` columns: ``block_rows``
    if given (checked), else :meth:`BlockPlan.stream_rows` of the default plan."""
    plan = BlockPlan(row_block=None if block_rows is None else check_count(block_rows, "block_rows", "rows per block"))
    return plan.stream_rows(n_cols, itemsize, n_rows=n_rows, align=align)


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
    block_rows = plan_rows(block_rows, width, max(src.dtype.itemsize, out_dtype.itemsize),
                           n_rows=D, align=src.row_block)
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
            block = self.array[self.start:self.stop] if self.vector else read_region(
                self.array, slice(self.start, self.stop), slice(None))
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


class _Generated:
    """Rows ``start:stop`` of a generated factor: anything with ``shape``, ``dtype`` and
    ``block(rows, cols, xp=None)`` (e.g. :class:`sketchla.random.TestMatrix`), drawn
    inside the task (on the host; moved to CuPy when ``xp`` is CuPy)."""

    __slots__ = ("gen", "start", "stop")

    def __init__(self, gen, start, stop):
        self.gen, self.start, self.stop = gen, start, stop

    def read(self, xp=None):
        return self.gen.block(slice(self.start, self.stop), slice(0, self.gen.shape[1]), xp=xp)


def is_generated(x) -> bool:
    """Whether ``x`` is a generated factor (see :class:`_Generated`)."""
    return callable(getattr(x, "block", None)) and hasattr(x, "shape") and hasattr(x, "dtype") \
        and not isinstance(x, (zarr.Array, da.Array, np.ndarray))


def materialize(ref):
    """Turn a block reference (:class:`_ZarrSlice`, :class:`_Generated` or an array) into an array."""
    if isinstance(ref, (_ZarrSlice, _Generated)):
        return ref.read()
    if ref.ndim == 1:
        return ref.reshape(-1, 1)
    return ref


def _is_dask(x) -> bool:
    return isinstance(x, da.Array)


class _Source:
    """A D×n (or length-D) input that can be cut into row blocks.

    ``kind`` is ``"zarr"``, ``"dask"``, ``"memory"`` (NumPy/CuPy, only where
    ``allow_memory``) or ``"generated"`` (only where ``allow_generated``). A
    1-D input is accepted only where ``allow_vector``; its blocks are handed
    out as D_i×1 columns and ``vector`` remembers it.
    """

    def __init__(self, x, name: str, *, allow_vector=False, allow_memory=False, allow_generated=False,
                 gpu=False):
        self.name, self.gpu = name, bool(gpu)
        if isinstance(x, zarr.Array):
            self.kind = "zarr"
        elif _is_dask(x):
            self.kind = "dask"
        elif allow_memory and (isinstance(x, np.ndarray) or is_cupy_array(x)):
            self.kind = "memory"
        elif allow_generated and is_generated(x):
            self.kind = "generated"
        else:
            allowed = "a zarr.Array or a dask.array.Array"
            if allow_memory:
                allowed += " (or a NumPy/CuPy array)"
            if allow_generated:
                allowed += " (or a generated factor with .block(rows, cols), e.g. a TestMatrix)"
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
    def row_block(self) -> int | None:
        """Rows per Zarr chunk (or shard) of a Zarr input, else ``None``."""
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
        if self.kind == "generated":
            return [_Generated(self.array, s, e) for s, e in bounds]
        return list(self._banded(bounds).to_delayed().ravel())

    def _banded(self, bounds) -> da.Array:
        """The Dask input as a 2-D Dask array with row chunks ``bounds`` and one column chunk."""
        x = self.array[:, None] if self.vector else self.array
        rows = tuple(e - s for s, e in bounds)
        if x.chunks != (rows, (self.n_cols,)):
            x = x.rechunk((rows, (self.n_cols,)))
        return x

    def __dask_tokenize__(self):
        """What the blocks hold (see :mod:`sketchla.graph_keys`) and how they are read."""
        return ("sketchla.linalg.source", self.kind, token(self.array), self.vector, self.gpu)


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
        _raise_not_finite(name, index, start, stop)


def checked_max_abs(block, name: str, index: int, start: int, stop: int, check: bool) -> float:
    """Largest |entry| of ``block`` (:func:`._kernels.max_abs`, no copy), and with ``check``
    the finiteness check of :func:`check_finite_block` from the same reduction."""
    amax = max_abs(block)
    if check and not math.isfinite(amax):
        _raise_not_finite(name, index, start, stop)
    return amax


def _raise_not_finite(name, index, start, stop):
    raise ValueError(
        f"{name} contains NaN or Inf in row block {index} (rows {start}:{stop}); "
        "the input must be finite"
    )


# --------------------------------------------------------------------------- outputs
def prepare_out(out, shape, dtype, row_block: int, name: str = "out", *,
                strict_dtype: bool = False, storage_options=None):
    """Validate ``out`` (a writable ``zarr.Array`` of ``shape``) or create it at a path.

    ``out`` may be ``None`` (returned as is), a ``zarr.Array`` opened writable
    with exactly ``shape`` and a float32/float64 dtype, or a path string /
    ``os.PathLike``: a new array is created there with chunks
    ``(row_block, n)`` and no compressor (noise does not compress); an
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
    out = url_output(out, shape, dtype, row_block, name, storage_options)
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
            chunks = (max(1, min(row_block, shape[0])),) + shape[1:]
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


def check_out_store(out, client, name: str = "out"):
    """Refuse an in-memory Zarr ``out`` when a distributed client will run the tasks.

    The graph a ``distributed.Client`` runs is pickled, also for in-process
    workers, so a ``MemoryStore`` reaches each task as a copy: the writes
    would land in the copies and ``out`` would silently stay unwritten.
    """
    if out is None or not isinstance(out.store, zarr.storage.MemoryStore):
        return
    if active_client(client) is not None:
        raise ValueError(
            f"{name} is a Zarr array in a MemoryStore, which the tasks of a distributed "
            "client receive as pickled copies (the writes would be lost); give a path or a "
            "Zarr array in a store the workers share (a directory, object storage)"
        )
