"""Householder TSQR over row blocks (Demmel, Grigori, Hoemmen & Langou 2012).

``tsqr(method="householder")``, and the fallback of ``method="auto"`` for
inputs the Cholesky QR of :mod:`._cholqr` does not take (rank-deficient or
too ill-conditioned A). Unconditionally stable: Q is orthonormal to working
precision whatever A's rank or condition.

1. *Up pass.* Each row block ``A_i`` (block_rows×n) — multiplied by a power
   of two if its largest entry lies outside the safe range (see
   :mod:`._kernels`; subnormal and near-overflow inputs) — is factorised by
   LAPACK ``geqrf`` in its own dtype → ``R_i``. The R factors, with their
   exponents, are reduced by a tree of bounded fan-in (:mod:`._tree`; each
   node QR-factorises the stack of its children's R's in float64). The root
   gives R (diag(R) ≥ 0).
2. *Down pass.* The tree's Q factors are pushed down to one n×n factor
   ``S_i`` per block, and ``Q = [Q_1 S_1; Q_2 S_2; ...]`` with ``Q_i`` the
   block's Householder Q (``orgqr``), which a power-of-two scaling leaves
   unchanged.

With a Zarr ``out`` each ``Q_i`` is written in the up pass and replaced by
``Q_i S_i`` (one GEMM) in the down pass: leaves, tree, down pass and writes
are one Dask graph, so A (Zarr or Dask) is read once and its blocks are not
held between the passes. With ``out=None`` the lazy Q recomputes ``Q_i``
from ``A_i`` (the identical ``geqrf`` on the identically scaled block) when
it is computed — cheaper than writing and re-reading a temporary D×n array.

Per row block: ``geqrf`` 2mn² − 2n³/3 flops, ``orgqr`` as many, the GEMM
2mn²; bytes: A read once, Q written twice and read once (``out`` given).
"""
from __future__ import annotations

import dask
import dask.array as da

from ..backend import get_array_module
from ..executor import compute
from ._blocks import _ZarrSlice, checked_max_abs, materialize, write_block
from ._kernels import like, local_qr, local_r, scale_exponent, scaled
from ._tree import build_tree


def _pad_cols(q, n):
    """Pad an m×k Q factor (k < n only for a block with fewer than n rows) to m×n."""
    if q.shape[1] == n:
        return q
    xp = get_array_module(q)
    out = xp.zeros((q.shape[0], n), dtype=q.dtype)
    out[:, : q.shape[1]] = q
    return out


def _scaled_block(ref, index, start, stop, check):
    """Block i of A and its exponent e: ``(A_i · 2^-e, e)`` (e = 0 in the safe range)."""
    block = materialize(ref)
    e = scale_exponent(checked_max_abs(block, "A", index, start, stop, check))
    return scaled(block, e), e


def _leaf(ref, out, index, start, stop, check, gpu):
    """Up pass for block i → ``(R_i, e_i)``; with ``out`` its Q_i is written to rows start:stop."""
    block, e = _scaled_block(ref, index, start, stop, check)
    if out is None:
        return local_r(block), e
    q, r = local_qr(block)
    write_block(out, start, stop, _pad_cols(q, out.shape[1]), gpu)
    return r, e


def _apply_write(out, start, stop, s, gpu):
    """Replace the stored Q_i (rows start:stop of ``out``) by Q_i S_i."""
    q = materialize(_ZarrSlice(out, start, stop, gpu))
    q = q[:, : s.shape[0]] @ like(s, q)
    write_block(out, start, stop, q, gpu)
    return stop - start


def _q_block(ref, s, out_dtype):
    """Lazy path: Q_i S_i (m_i×n), Q_i recomputed from A_i by the same ``geqrf`` as the up pass."""
    block, _ = _scaled_block(ref, 0, 0, 0, False)
    q, _ = local_qr(block)
    k = q.shape[1]
    return (q @ like(s[:k], q)).astype(out_dtype, copy=False)


def householder_tsqr(src, out, bounds, fan, prefix, out_dtype, check_finite, gpu, client):
    """Householder TSQR of the :class:`._blocks._Source` ``src`` cut into ``bounds``.

    Returns ``(Q, R)``: ``out`` written (or a lazy Dask Q with ``out=None``)
    and R as an ``(r, e)`` pair (``r · 2^e``, float64, diag ≥ 0).
    """
    n = src.n_cols
    refs = src.blocks(bounds)
    heights = [min(e - s, n) for s, e in bounds]
    leaves = [dask.delayed(_leaf, pure=True)(ref, out, i, s, e, check_finite, gpu,
                                             dask_key_name=f"{prefix}-leaf-{i}")
              for i, (ref, (s, e)) in enumerate(zip(refs, bounds))]
    root_r, factors = build_tree(leaves, heights, n, fan, prefix, want_q=True)
    if out is not None:
        # one graph: leaves → tree → per-block factors → Q_i S_i written in place
        tasks = [dask.delayed(_apply_write, pure=True)(out, s, e, s_i, gpu, dask_key_name=f"{prefix}-apply-{i}")
                 for i, (s_i, (s, e)) in enumerate(zip(factors, bounds))]
        r, _ = compute(root_r, tasks, client=client)
        return out, r
    # the small per-block factors come here; Q is formed from A again when it is computed
    r, factors = compute(root_r, factors, client=client)
    meta = src.xp().empty((0, 0), dtype=out_dtype)
    parts = [
        da.from_delayed(
            dask.delayed(_q_block, pure=True)(ref, s_i, out_dtype, dask_key_name=f"{prefix}-q-{i}"),
            shape=(e - s, n), dtype=out_dtype, meta=meta)
        for i, (ref, s_i, (s, e)) in enumerate(zip(refs, factors, bounds))
    ]
    q = da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    return q, r
