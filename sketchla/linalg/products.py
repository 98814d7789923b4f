"""Thin streamed products the sketched decompositions need.

* :func:`inner_products` — every ``L_jᵀ R_k`` of a list of pairs in a single
  pass over the rows: each row block of every stored factor is read once and
  each block of every *generated* left factor (a test matrix) drawn once,
  inside the task. SEIGH's thin products ``Υᵀ Y``, ``Υᵀ Q``, ``Ωᵀ Q`` (paper
  Alg. 2 lines 2, 5–6) are one such pass.
* :func:`inner` — ``Aᵀ B`` or ``Aᵀ [B1, B2, ...]`` for a stored A (one pass).
* :func:`matmul` — ``Q U`` for tall Q and a small in-memory U (the
  eigenvectors ``Q U`` of Alg. 2 line 8, ``P U`` / ``Q V`` of Alg. 1),
  streamed into Zarr or returned as a lazy Dask array.

Per row block of m rows: 2·m·n_L·n_R flops per pair in the blocks' dtype (or
``compute_dtype``); the sum over blocks is float64, over a fixed tree of
fan-in 16 in block order, so the result does not depend on the scheduler or
the number of workers.
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
    _Generated, _Source, check_finite_block, check_same_rows, materialize, plan_output, plan_rows, row_bounds,
    write_block,
)
from ._kernels import like

#: fan-in of the tree that sums the per-block partial products
_SUM_FANIN = 16


def _products_block(lefts, rights, pairs, index, start, stop, names, cdt, check):
    """Partial products ``L_jᵀ R_k`` (float64) of one row block, in ``pairs`` order.

    The right blocks are held for the whole task; the left ones one at a time
    (each used by all its pairs, then released), a generated one drawn whole:
    one GEMM per pair (drawing a block in column slices would repack the
    right block per slice, measured 1.4–2.3× slower).
    """
    blocks = []
    for ref, name in zip(rights, names[1]):
        b = materialize(ref)
        if check:
            check_finite_block(b, name, index, start, stop)
        blocks.append(b)
    xp = get_array_module(blocks[0])
    blocks = [(b if get_array_module(b) is xp else xp.asarray(asnumpy(b))).astype(cdt, copy=False) for b in blocks]
    parts = {}
    for j, (ref, name) in enumerate(zip(lefts, names[0])):
        ks = [k for jj, k in pairs if jj == j]
        if not ks:
            continue
        if isinstance(ref, _Generated):  # drawn here, once; finite by construction
            left = ref.read(xp)
        else:
            left = materialize(ref)
            if check:
                check_finite_block(left, name, index, start, stop)
            if get_array_module(left) is not xp:
                left = xp.asarray(asnumpy(left))
        left = left.astype(cdt, copy=False)
        for k in ks:
            parts[(j, k)] = (left.T @ blocks[k]).astype(xp.float64)
        del left
    return tuple(parts[p] for p in pairs)


def _sum_partials(*partials):
    total = [p.copy() for p in partials[0]]
    for ps in partials[1:]:
        for j, p in enumerate(ps):
            total[j] += p
    return tuple(total)


def inner_products(lefts, rights, pairs=None, *, block_rows=None, client=None, check_finite=True, gpu=False,
                   compute_dtype=None, _names=None):
    """``L_jᵀ R_k`` for every pair ``(j, k)``, all in one pass over the rows.

    Parameters
    ----------
    lefts : list of D×n_j factors: ``zarr.Array``, ``dask.array.Array``,
        NumPy/CuPy arrays, or generated factors — anything with ``shape``, ``dtype`` and
        ``block(rows, cols, xp=None)``, such as a
        :class:`sketchla.random.TestMatrix` (or its ``.columns(c0, c1)``):
        their blocks are drawn inside the tasks, each once, and never stored.
    rights : list of D×m_k (or length-D) factors: ``zarr.Array``,
        ``dask.array.Array`` or NumPy/CuPy arrays. Each row block of each is
        read once.
    pairs : list of ``(j, k)``, optional
        The products wanted (default: every left with every right).
    block_rows : int, optional
        Rows per block; default from a 64 MB budget for the right factors and
        the widest left one (a task holds its right blocks and one left block
        at a time). With generated lefts, whole row tiles of the generator
        avoid drawing a tile's prefix twice
        (:meth:`sketchla.blocking.BlockPlan.thin_blocking`).
    compute_dtype : optional
        dtype of the per-block GEMMs (default: the result dtype of all the
        factors, float32 for float32 data); the sum over blocks is float64.
    client, check_finite, gpu
        As for :func:`sketchla.linalg.tsqr` (generated factors are not checked:
        they are finite by construction). Generated blocks go to the device
        of the stored ones (CuPy with ``gpu`` or CuPy-backed Dask arrays).

    Returns
    -------
    list of ndarray, one per pair in ``pairs`` order: (n_j, m_k) float64 —
    (n_j,) for a 1-D right factor. NumPy, or CuPy for CuPy blocks.
    """
    check_options(client=client, check_finite=check_finite, gpu=gpu)
    lefts, rights = list(lefts), list(rights)
    if not lefts or not rights:
        raise ValueError("inner_products needs at least one left and one right factor")
    lnames, rnames = _names or ([f"lefts[{j}]" for j in range(len(lefts))], [f"rights[{k}]" for k in range(len(rights))])
    ls = [_Source(x, nm, allow_memory=True, allow_generated=True, gpu=gpu) for x, nm in zip(lefts, lnames)]
    rs = [_Source(x, nm, allow_vector=True, allow_memory=True, gpu=gpu) for x, nm in zip(rights, rnames)]
    for x in ls[1:] + rs:
        check_same_rows(ls[0], x)
    pairs = ([(j, k) for j in range(len(ls)) for k in range(len(rs))] if pairs is None
             else [(int(j), int(k)) for j, k in pairs])
    for j, k in pairs:
        if not (0 <= j < len(ls) and 0 <= k < len(rs)):
            raise ValueError(f"pairs holds ({j}, {k}); there are {len(ls)} left and {len(rs)} right factors")
    if not pairs:
        raise ValueError("pairs is empty; give at least one (left, right) pair")
    cdt = (np.result_type(*[x.dtype for x in ls + rs]) if compute_dtype is None
           else check_float_dtype(compute_dtype, "compute_dtype"))
    D = ls[0].n_rows
    width = sum(x.n_cols for x in rs) + max(x.n_cols for x in ls)  # the rights and one left at a time
    align = next((x.row_block for x in ls + rs if x.row_block), None)
    block_rows = plan_rows(block_rows, width, cdt.itemsize, n_rows=D, align=align)
    bounds = row_bounds(D, block_rows)
    prefix = key_prefix("inner", ls, rs, pairs, bounds, cdt.name, check_finite)
    l_refs = [x.blocks(bounds) for x in ls]
    r_refs = [x.blocks(bounds) for x in rs]
    level = [
        dask.delayed(_products_block, pure=True)(
            [refs[i] for refs in l_refs], [refs[i] for refs in r_refs], pairs, i, s, e,
            (lnames, rnames), cdt, check_finite, dask_key_name=f"{prefix}-part-{i}")
        for i, (s, e) in enumerate(bounds)
    ]
    depth = 0
    while len(level) > 1:
        level = [dask.delayed(_sum_partials, pure=True)(
                    *level[j:j + _SUM_FANIN], dask_key_name=f"{prefix}-sum-{depth}-{j}")
                 for j in range(0, len(level), _SUM_FANIN)]
        depth += 1
    (total,) = compute(level[0], client=client)
    return [t[:, 0] if rs[k].vector else t for t, (_, k) in zip(total, pairs)]


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
    See :func:`inner_products` for several left factors, or generated ones.
    """
    check_options(client=client, check_finite=check_finite, gpu=gpu)
    _Source(A, "A", allow_memory=True, gpu=gpu)  # A stored or in memory (not generated), checked first
    many = isinstance(B, (list, tuple))
    if many and len(B) == 0:
        raise ValueError("B is an empty list; give at least one array")
    bs = list(B) if many else [B]
    names = ([f"B[{j}]" for j in range(len(bs))] if many else ["B"])
    results = inner_products([A], bs, block_rows=block_rows, client=client, check_finite=check_finite, gpu=gpu,
                             compute_dtype=compute_dtype, _names=(["A"], names))
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
