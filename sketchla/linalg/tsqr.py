"""Out-of-core tall-skinny QR (TSQR) over Zarr or Dask arrays.

Implements the orthogonalisation step of the sketched decompositions (paper
Alg. 1 lines 4–5, Alg. 2 line 3: ``(Q, _) ← qr(M_O)``) without ever holding
the D×n matrix in memory (paper appendix B.2: "Out-of-core QR
orthogonalizations would greatly help"). Algorithm: Householder TSQR
(Demmel, Grigori, Hoemmen, Langou 2012):

1. *Up pass.* Each row block ``A_i`` (block_rows×n) is factorised by LAPACK
   ``geqrf`` → ``R_i``. The R factors are reduced by a tree of bounded fan-in
   (:mod:`._tree`): each node QR-factorises the stack of its children's R's
   (float64). The root gives R (diag(R) ≥ 0 by convention).
2. *Down pass.* The tree's Q factors are pushed down to one n×n factor
   ``S_i`` per block, and ``Q = [Q_1 S_1; Q_2 S_2; ...]``.

With a Zarr ``out`` the local ``Q_i`` are written into ``out`` during the up
pass and each block is then replaced by ``Q_i S_i`` (one GEMM) — the local
QR is computed once and A is read once; leaves, tree, down pass and the
rewrite are a single Dask graph. With ``out=None`` the up pass only computes
R factors, and the returned lazy Dask array recomputes ``Q_i`` from ``A_i``
when (and each time) it is computed — reading A again is cheaper than
writing and re-reading a temporary D×n array.

Memory per worker: one block, its LAPACK copy and its Q (O(block_rows·n)),
a node's stack (≤ about one block with the default fan-in) — plus the small
per-block n×n factors S_i, (D/block_rows)·n² numbers in all (16 MB for
D=2·10⁶, n=256 at the default 64 MiB blocks; held by the scheduler between
the passes, or by the caller for the lazy Q).

Speed: leaf kernels run in the block's dtype (``sgeqrf``/``sorgqr`` for
float32) with a blocked LAPACK workspace, and while Dask runs several tasks
in this process BLAS is limited to its share of the cores (see
:func:`._blocks.compute`).
"""
from __future__ import annotations

import logging
import time

import dask
import dask.array as da

from ..backend import check_float_dtype, get_array_module
from ._blocks import (
    _Source, _ZarrSlice, align_block_rows, check_block_rows, check_finite_block,
    check_out_store, compute, default_block_rows, materialize, new_prefix, prepare_out,
    row_bounds, write_block,
)
from ._kernels import like, local_qr, local_r
from ._tree import build_tree, tree_fanin

logger = logging.getLogger(__name__)


def _pad_cols(q, n):
    """Pad an m×k Q factor (k < n only for a block with fewer than n rows) to m×n."""
    if q.shape[1] == n:
        return q
    xp = get_array_module(q)
    out = xp.zeros((q.shape[0], n), dtype=q.dtype)
    out[:, : q.shape[1]] = q
    return out


def _leaf_r(ref, index, start, stop, name, check):
    block = materialize(ref)
    if check:
        check_finite_block(block, name, index, start, stop)
    return local_r(block)


def _leaf_qr_write(ref, out, index, start, stop, name, check, gpu):
    block = materialize(ref)
    if check:
        check_finite_block(block, name, index, start, stop)
    q, r = local_qr(block)
    write_block(out, start, stop, _pad_cols(q, out.shape[1]), gpu)
    return r


def _apply_write(out, start, stop, s, gpu):
    """Replace rows start:stop of ``out`` (holding Q_i) by Q_i S_i."""
    q = materialize(_ZarrSlice(out, start, stop, gpu))
    k = s.shape[0]
    write_block(out, start, stop, q[:, :k] @ like(s, q), gpu)
    return stop - start


def _q_block(ref, s, out_dtype):
    """Lazy path: recompute the block's local Q and return Q_i S_i (m_i×n)."""
    block = materialize(ref)
    q, _ = local_qr(block)
    k = q.shape[1]
    return (q @ like(s[:k], q)).astype(out_dtype, copy=False)


def tsqr(A, out=None, *, block_rows=None, client=None, fanin=None, check_finite=True,
         gpu=False, dtype=None):
    """Householder TSQR of a tall D×n array, streamed over row blocks.

    Parameters
    ----------
    A : zarr.Array or dask.array.Array, shape (D, n), D ≥ n, float32/float64
        Read one row block at a time (a Zarr chunking of (rows, col_chunk) is
        fine; a band then touches several chunks).
    out : None, str/PathLike or zarr.Array, optional
        Where Q goes. ``None`` → Q is returned as a lazy ``dask.array.Array``
        (chunks ``(block_rows, n)``; computing it re-reads A). A path → a new
        Zarr array with chunks ``(block_rows, n)`` and no compressor is created
        there (an existing one is reused only if its shape is D×n). A
        ``zarr.Array`` → written in place; it must be D×n, float, writable.
        Validated before any work starts.
    block_rows : int, optional
        Rows per block; default from a 64 MB budget per block, aligned to
        A's and ``out``'s Zarr chunks (concurrent writes never share a chunk).
    client : distributed.Client, optional
        Run on this client; else on the active Dask scheduler (threads by
        default, or the default distributed client).
    fanin : int, optional
        Reduction-tree fan-in; default ``max(2, block_rows // n)``.
    check_finite : bool
        Check every block for NaN/Inf (ValueError naming the block).
    gpu : bool
        Read Zarr blocks into CuPy (``zarr.config.enable_gpu()``) and compute
        on the GPU. Dask arrays with CuPy blocks run on the GPU regardless.
    dtype : optional
        dtype of a newly created ``out`` / of the lazy Q (default A's dtype).

    Returns
    -------
    Q : zarr.Array (``out`` given) or dask.array.Array (``out=None``), D×n,
        orthonormal columns (QᵀQ ≈ I to working precision, also for
        rank-deficient A).
    R : numpy/cupy ndarray, n×n upper triangular with diag(R) ≥ 0, in A's
        dtype (accumulated in float64), Q R ≈ A.
    """
    src = _Source(A, "A", gpu=gpu)
    D, n = src.shape
    if n < 1 or D < 1:
        raise ValueError(f"A must be non-empty, got shape {src.shape}")
    if D < n:
        raise ValueError(f"A must be tall (D >= n), got shape {src.shape}; "
                         "TSQR of a wide matrix is not supported")
    out_dtype = check_float_dtype(dtype if dtype is not None else src.dtype, "dtype")
    if block_rows is None:
        block_rows = default_block_rows(n, src.dtype.itemsize, n_rows=D, align=src.row_chunk)
    else:
        block_rows = check_block_rows(block_rows)
    out = prepare_out(out, (D, n), out_dtype, block_rows, strict_dtype=dtype is not None)
    check_out_store(out, client)
    block_rows = align_block_rows(block_rows, out)
    bounds = row_bounds(D, block_rows)
    fan = tree_fanin(n, block_rows, fanin)
    prefix = new_prefix("tsqr")
    refs = src.blocks(bounds)
    heights = [min(e - s, n) for s, e in bounds]
    logger.info("tsqr: A %s %s, %d blocks of %d rows, fan-in %d, out=%s",
                src.shape, src.dtype, len(bounds), block_rows, fan,
                "lazy" if out is None else out.store)

    t0 = time.perf_counter()
    if out is None:
        leaves = [dask.delayed(_leaf_r, pure=True)(ref, i, s, e, "A", check_finite,
                                                    dask_key_name=f"{prefix}-leaf-{i}")
                  for i, (ref, (s, e)) in enumerate(zip(refs, bounds))]
    else:
        leaves = [dask.delayed(_leaf_qr_write, pure=True)(ref, out, i, s, e, "A", check_finite, gpu,
                                                           dask_key_name=f"{prefix}-leaf-{i}")
                  for i, (ref, (s, e)) in enumerate(zip(refs, bounds))]
    root_r, factors = build_tree(leaves, heights, n, fan, prefix, want_q=True)

    if out is not None:
        # one graph: leaves (Q_i written) → tree → S_i → Q_i S_i rewritten in place;
        # the small S_i stay with the scheduler, never gathered here
        tasks = [dask.delayed(_apply_write, pure=True)(out, s, e, s_i, gpu,
                                                       dask_key_name=f"{prefix}-apply-{i}")
                 for i, (s_i, (s, e)) in enumerate(zip(factors, bounds))]
        r, _ = compute(root_r, tasks, client=client)
        logger.info("tsqr: %d blocks factorised and Q written in %.2f s",
                    len(bounds), time.perf_counter() - t0)
        return out, r.astype(src.dtype)

    r, factors = compute(root_r, factors, client=client)
    logger.info("tsqr: up pass and tree in %.2f s", time.perf_counter() - t0)
    r = r.astype(src.dtype)
    meta = src.xp().empty((0, 0), dtype=out_dtype)
    parts = [
        da.from_delayed(
            dask.delayed(_q_block, pure=True)(ref, s_i, out_dtype,
                                              dask_key_name=f"{prefix}-q-{i}"),
            shape=(e - s, n), dtype=out_dtype, meta=meta)
        for i, (ref, s_i, (s, e)) in enumerate(zip(refs, factors, bounds))
    ]
    q = da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    return q, r
