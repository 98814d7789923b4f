"""Thin streamed products the sketched decompositions need.

* :func:`inner` — ``Aᵀ B`` for two tall arrays with the same D (e.g.
  ``Υᵀ Q`` and ``Ωᵀ Q`` in paper Alg. 2 lines 5–6, ``Υᵀ[AΩ_I, M_O]`` in
  line 2), small and in memory; ``Aᵀ [B1, B2, ...]`` in a single pass over A
  (so an expensive generated A — a random test matrix — is produced once).
* :func:`matmul` — ``Q U`` for tall Q and a small in-memory U (the
  eigenvectors ``Q U`` of Alg. 2 line 8, ``P U`` / ``Q V`` of Alg. 1),
  streamed into Zarr or returned as a lazy Dask array.
"""
from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from ..backend import asnumpy, check_float_dtype, get_array_module, is_cupy_array
from ..executor import compute
from ..graph_keys import ZarrOutput, key_prefix
from ._args import check_options
from ._blocks import (
    _Source, check_finite_block, check_same_rows, materialize, plan_output, plan_rows, row_bounds,
    write_block,
)
from ._kernels import like

#: fan-in of the tree that sums the per-block partial products
_SUM_FANIN = 16


def _inner_partial(ref_a, refs_b, index, start, stop, names, compute_dtype, check):
    a = materialize(ref_a)
    if check:
        check_finite_block(a, "A", index, start, stop)
    xp = get_array_module(a)
    a = a.astype(compute_dtype, copy=False)
    parts = []
    for ref, name in zip(refs_b, names):
        b = materialize(ref)
        if check:
            check_finite_block(b, name, index, start, stop)
        if get_array_module(b) is not xp:
            b = xp.asarray(asnumpy(b))
        parts.append((a.T @ b.astype(compute_dtype, copy=False)).astype(xp.float64))
    return tuple(parts)


def _sum_partials(*partials):
    total = [p.copy() for p in partials[0]]
    for ps in partials[1:]:
        for j, p in enumerate(ps):
            total[j] += p
    return tuple(total)


def inner(A, B, *, block_rows=None, client=None, check_finite=True, gpu=False,
          compute_dtype=None):
    """``Aᵀ B`` streamed over row blocks, as a small float64 array.

    Parameters
    ----------
    A : zarr.Array, dask.array.Array or NumPy/CuPy array, shape (D, n_A).
    B : zarr.Array, dask.array.Array or NumPy/CuPy array of shape (D, n_B) or
        (D,); or a list/tuple of such arrays (all with D rows), in which case
        every ``Aᵀ B_j`` is computed in the same single pass over A.
    block_rows : int, optional
        Rows per block; default from a 64 MB budget for all the columns.
    compute_dtype : optional
        dtype of the per-block GEMMs (default: the result dtype of the
        inputs, float32 for float32 data); the sum over blocks is float64.
    client, check_finite, gpu
        As for :func:`sketchla.linalg.tsqr`.

    Returns
    -------
    ndarray (n_A, n_B) float64 — (n_A,) for a 1-D B — or, for a list/tuple B,
    a list of those in the same order. NumPy, or CuPy for CuPy blocks.
    """
    check_options(client=client, check_finite=check_finite, gpu=gpu)
    a = _Source(A, "A", allow_memory=True, gpu=gpu)
    many = isinstance(B, (list, tuple))
    if many and len(B) == 0:
        raise ValueError("B is an empty list; give at least one array")
    bs_in = list(B) if many else [B]
    names = [f"B[{j}]" for j in range(len(bs_in))] if many else ["B"]
    bs = [_Source(x, nm, allow_vector=True, allow_memory=True, gpu=gpu)
          for x, nm in zip(bs_in, names)]
    for b in bs:
        check_same_rows(a, b)
    dtypes = [a.dtype] + [b.dtype for b in bs]
    cdt = (np.result_type(*dtypes) if compute_dtype is None
           else check_float_dtype(compute_dtype, "compute_dtype"))
    D = a.n_rows
    width = a.n_cols + sum(b.n_cols for b in bs)
    block_rows = plan_rows(block_rows, width, cdt.itemsize, n_rows=D, align=a.row_block)
    bounds = row_bounds(D, block_rows)
    prefix = key_prefix("inner", a, bs, bounds, cdt.name, check_finite)
    b_refs = [b.blocks(bounds) for b in bs]
    level = [
        dask.delayed(_inner_partial, pure=True)(
            ra, [refs[i] for refs in b_refs], i, s, e, names, cdt, check_finite,
            dask_key_name=f"{prefix}-part-{i}")
        for i, (ra, (s, e)) in enumerate(zip(a.blocks(bounds), bounds))
    ]
    depth = 0
    while len(level) > 1:
        level = [dask.delayed(_sum_partials, pure=True)(
                    *level[j:j + _SUM_FANIN], dask_key_name=f"{prefix}-sum-{depth}-{j}")
                 for j in range(0, len(level), _SUM_FANIN)]
        depth += 1
    (total,) = compute(level[0], client=client)
    results = [t[:, 0] if b.vector else t for t, b in zip(total, bs)]
    return results if many else results[0]


def _matmul_block(ref, u, index, start, stop, out_dtype, check):
    q = materialize(ref)
    if check:
        check_finite_block(q, "Q", index, start, stop)
    return (q @ like(u, q)).astype(out_dtype, copy=False)


def _matmul_write(ref, u, out, index, start, stop, check, gpu):
    res = _matmul_block(ref, u, index, start, stop, out.dtype, check)
    write_block(out, start, stop, res, gpu)
    return stop - start


def matmul(Q, U, out=None, *, block_rows=None, client=None, check_finite=True, gpu=False,
           dtype=None):
    """``Q @ U`` for a tall Q (D×n, Zarr/Dask) and a small in-memory U (n×m).

    Parameters
    ----------
    Q : zarr.Array, dask.array.Array or NumPy/CuPy array, shape (D, n).
    U : NumPy or CuPy array, shape (n, m) (moved to the blocks' device).
    out : None, str/PathLike or zarr.Array, optional
        ``None`` → a lazy ``dask.array.Array`` (chunks ``(block_rows, m)``);
        a path → a new Zarr array (chunks ``(block_rows, m)``, no compressor);
        a writable D×m ``zarr.Array`` → written block by block. Validated
        before any work starts.
    block_rows : int, optional
        Rows per block; default from a 64 MB budget for n + m columns, aligned
        to ``out``'s chunks.
    dtype : optional
        Output dtype (default Q's dtype; U is cast to the block dtype).
    client, check_finite, gpu
        As for :func:`sketchla.linalg.tsqr`.

    Returns
    -------
    zarr.Array (``out`` given) or dask.array.Array, shape (D, m).
    """
    check_options(client=client, check_finite=check_finite, gpu=gpu)
    q = _Source(Q, "Q", allow_memory=True, gpu=gpu)
    if not (isinstance(U, np.ndarray) or is_cupy_array(U)):
        raise TypeError(f"U must be an in-memory NumPy/CuPy array, got {type(U).__name__}")
    if U.ndim != 2:
        raise ValueError(f"U must be 2-D (n×m), got shape {tuple(U.shape)}")
    D, n = q.shape
    if U.shape[0] != n:
        raise ValueError(f"U has {U.shape[0]} rows but Q has {n} columns; U must be {n}×m")
    check_float_dtype(U.dtype, "U.dtype")
    if check_finite and not bool(get_array_module(U).isfinite(U).all()):
        raise ValueError("U contains NaN or Inf")
    m = U.shape[1]
    out, block_rows, bounds, out_dtype = plan_output(q, out, (D, m), n + m, dtype, block_rows, client)
    prefix = key_prefix("matmul", q, U, None if out is None else ZarrOutput(out), bounds, out_dtype.name,
                        check_finite)
    refs = q.blocks(bounds)
    if out is None:
        meta = q.xp().empty((0, 0), dtype=out_dtype)
        parts = [
            da.from_delayed(
                dask.delayed(_matmul_block, pure=True)(ref, U, i, s, e, out_dtype, check_finite,
                                                       dask_key_name=f"{prefix}-{i}"),
                shape=(e - s, m), dtype=out_dtype, meta=meta)
            for i, (ref, (s, e)) in enumerate(zip(refs, bounds))
        ]
        return da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    tasks = [dask.delayed(_matmul_write, pure=True)(ref, U, out, i, s, e, check_finite, gpu,
                                                    dask_key_name=f"{prefix}-{i}")
             for i, (ref, (s, e)) in enumerate(zip(refs, bounds))]
    compute(tasks, client=client)
    return out
