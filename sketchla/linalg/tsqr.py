"""Out-of-core tall-skinny QR (TSQR) over Zarr or Dask arrays.

Implements the orthogonalisation step of the sketched decompositions (paper
Alg. 1 lines 4–5, Alg. 2 line 3: ``(Q, _) ← qr(M_O)``) without ever holding
the D×n matrix in memory (paper appendix B.2: "Out-of-core QR
orthogonalizations would greatly help"). Algorithm: Householder TSQR
(Demmel, Grigori, Hoemmen, Langou 2012):

1. *Up pass.* Each row block ``A_i`` (block_rows×n) is factorised by LAPACK
   ``geqrf`` (float32 stays float32) → ``R_i``. The R factors are reduced by
   a tree of bounded fan-in (:mod:`._tree`): each node QR-factorises the
   stack of its children's R's (float64). The root gives R (diag(R) ≥ 0).
2. *Down pass.* The tree's Q factors are pushed down to one n×n factor
   ``S_i`` per block, and ``Q = [Q_1 S_1; Q_2 S_2; ...]``.

Local Q factors (``method``). R_i always comes from Householder ``geqrf``.
The block's Q factor is needed only inside ``Q_i S_i``:

* ``"householder"``: ``Q_i`` from the reflectors (``orgqr``). With a Zarr
  ``out``, ``Q_i`` is written during the up pass and replaced by ``Q_i S_i``
  (one GEMM) in the down pass. With ``out=None`` the lazy Q recomputes
  ``Q_i`` from ``A_i`` (the identical ``geqrf``) when it is computed.
* ``"auto"`` (default): where R_i is square and well conditioned (estimated
  κ₂(R_i) ≤ ``FAST_COND`` = 10), ``Q_i S_i = A_i (R_i⁻¹ S_i)`` — a single
  GEMM on A_i re-read in the down pass; no ``orgqr``, nothing written in the
  up pass. Its orthogonality error is O(eps·κ₂(A_i)) (A_i = Q_i R_i holds to
  Householder's backward error), measured equal to Householder's for
  κ₂ ≲ 10–30; rank-deficient, badly conditioned or short blocks take the
  Householder route automatically, block by block. Less work on
  well-conditioned data (one GEMM instead of ``orgqr`` and a GEMM), no change
  on the rest.

With a Zarr A (or ``method="householder"``) leaves, tree, down pass and
writes are one Dask graph (a Zarr block is re-read inside its task, so no
block stays in memory between the passes). A Dask A with ``out`` and
"auto" runs as two computations, evaluating A's graph once per pass.
The lazy Q (``out=None``) reads A again whenever it is computed — cheaper
than writing and re-reading a temporary D×n array.

Memory per worker: one block, its LAPACK copy and its Q (O(block_rows·n)),
a node's stack (≤ about one block with the default fan-in) — plus the small
per-block n×n factors S_i, (D/block_rows)·n² numbers in all (16 MB for
D=2·10⁶, n=256 at the default 64 MiB blocks; held by the scheduler between
the passes, or by the caller for the lazy Q). Peak RSS measured by
``benchmarks/tsqr_scaling.py``: see the README.

Speed: leaf kernels run in the block's dtype (``sgeqrf``/``sorgqr`` for
float32) with a blocked LAPACK workspace, and while Dask runs several tasks
in this process BLAS is limited to its share of the cores (see
:func:`sketchla.executor.compute`).
"""
from __future__ import annotations

import logging
import time

import dask
import dask.array as da

from ..backend import get_array_module
from ..executor import compute
from ..graph_keys import ZarrOutput, key_prefix
from ._args import check_options
from ._blocks import _Source, _ZarrSlice, check_finite_block, materialize, plan_output, write_block
from ._kernels import cond_estimate, factor, like, local_qr, solve_upper
from ._tree import build_tree, tree_fanin

logger = logging.getLogger(__name__)


#: ``method="auto"``: a block whose R is estimated this well conditioned (κ₂)
#: gets its Q as A_i R_i⁻¹ instead of from Householder reflectors. Measured:
#: ||QᵀQ − I|| of A R⁻¹ equals Householder's up to κ₂ ≈ 10–30 and grows like
#: eps·κ₂ beyond; the estimate errs low by well under 2×.
FAST_COND = 10.0

_METHODS = ("auto", "householder")


def _pad_cols(q, n):
    """Pad an m×k Q factor (k < n only for a block with fewer than n rows) to m×n."""
    if q.shape[1] == n:
        return q
    xp = get_array_module(q)
    out = xp.zeros((q.shape[0], n), dtype=q.dtype)
    out[:, : q.shape[1]] = q
    return out


def _leaf(ref, out, index, start, stop, name, check, fast_ok, gpu):
    """Up pass for block i → ``(R_i, fast)``.

    ``fast``: R_i is square and well conditioned, so Q_i = A_i R_i⁻¹ later and
    nothing is written now. Otherwise, with ``out`` given, the Householder
    Q_i is formed and written to rows start:stop of ``out``.
    """
    block = materialize(ref)
    if check:
        check_finite_block(block, name, index, start, stop)
    f = factor(block)
    n = block.shape[1]
    if fast_ok and f.r.shape[0] == n and cond_estimate(f.r) <= FAST_COND:
        return f.r, True
    if out is None:
        return f.r, False
    q, r = f.q()
    write_block(out, start, stop, _pad_cols(q, out.shape[1]), gpu)
    return r, False


def _down_factor(leaf, s):
    """Per-block factor of the down pass: ``(R_i⁻¹ S_i, True)`` for a fast block, else ``(S_i, False)``."""
    r, fast = leaf
    if fast:
        return solve_upper(r, s), True
    return s, False


def _apply_write(ref, out, start, stop, down, gpu):
    """Write Q_i S_i into rows start:stop of ``out``: A_i (R_i⁻¹ S_i) for a fast
    block, else the stored Householder Q_i times S_i."""
    m, fast = down
    if fast:
        a = materialize(ref)
        q = (a @ like(m, a))
    else:
        q = materialize(_ZarrSlice(out, start, stop, gpu))
        k = m.shape[0]
        q = q[:, :k] @ like(m, q)
    write_block(out, start, stop, q, gpu)
    return stop - start


def _q_block(ref, down, out_dtype):
    """Lazy path: Q_i S_i (m_i×n) from A_i — one GEMM for a fast block, else the
    Householder Q_i recomputed (the same ``geqrf`` as the up pass) times S_i."""
    m, fast = down
    block = materialize(ref)
    if fast:
        return (block @ like(m, block)).astype(out_dtype, copy=False)
    q, _ = local_qr(block)
    k = q.shape[1]
    return (q @ like(m[:k], q)).astype(out_dtype, copy=False)


def tsqr(A, out=None, *, block_rows=None, client=None, fanin=None, check_finite=True,
         gpu=False, dtype=None, method="auto", storage_options=None):
    """Householder TSQR of a tall D×n array, streamed over row blocks.

    Parameters
    ----------
    A : zarr.Array, dask.array.Array or NumPy/CuPy array, shape (D, n), D ≥ n, float32/float64
        Read one row block at a time (a Zarr chunking of (rows, col_chunk) is
        fine; a band then touches several chunks).
    out : None, str/PathLike or zarr.Array, optional
        Where Q goes. ``None`` → Q is returned as a lazy ``dask.array.Array``
        (chunks ``(block_rows, n)``; computing it re-reads A). A path → a new
        Zarr array with chunks ``(block_rows, n)`` and no compressor is created
        there (an existing one is reused only if its shape is D×n). A
        ``zarr.Array`` → written in place; it must be D×n, float, writable.
        A URL (``s3://``, ``gs://``, ...; ``storage_options`` for its
        filesystem) like a path. Validated before any work starts.
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
        Decode Zarr blocks into CuPy (Zarr's GPU buffer prototype, per read) and compute
        on the GPU. Dask arrays with CuPy blocks run on the GPU regardless.
    dtype : optional
        dtype of a newly created ``out`` / of the lazy Q (default A's dtype).
        A given ``out`` may be wider than this; a narrower one only if
        ``dtype`` says so explicitly.
    method : {"auto", "householder"}
        How each block's local Q is formed (R is always from Householder).
        ``"householder"``: from the block's reflectors (``orgqr``), always.
        ``"auto"`` (default): a block whose R_i is well conditioned
        (estimated κ₂ ≤ :data:`FAST_COND`) gets ``Q_i S_i = A_i (R_i⁻¹ S_i)``
        — one GEMM on A_i re-read in the down pass, no ``orgqr`` and no
        intermediate write — with the same orthogonality (κ₂ ≤ 10); any
        other block (rank-deficient, badly conditioned, shorter than n)
        falls back to the Householder Q automatically. With a Dask ``A`` and
        ``out`` given, "auto" evaluates A's graph twice (once per pass);
        "householder" evaluates it once.

    Returns
    -------
    Q : zarr.Array (``out`` given) or dask.array.Array (``out=None``), D×n,
        orthonormal columns (QᵀQ ≈ I to working precision, also for
        rank-deficient A).
    R : numpy/cupy ndarray, n×n upper triangular with diag(R) ≥ 0, in A's
        dtype (accumulated in float64), Q R ≈ A.
    """
    check_options(client=client, check_finite=check_finite, gpu=gpu, fanin=fanin)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    src = _Source(A, "A", allow_memory=True, gpu=gpu)
    D, n = src.shape
    if n < 1 or D < 1:
        raise ValueError(f"A must be non-empty, got shape {src.shape}")
    if D < n:
        raise ValueError(f"A must be tall (D >= n), got shape {src.shape}; "
                         "TSQR of a wide matrix is not supported")
    out, block_rows, bounds, out_dtype = plan_output(src, out, (D, n), n, dtype, block_rows, client,
                                                     storage_options)
    fan = tree_fanin(n, block_rows, fanin)
    prefix = key_prefix("tsqr", src, None if out is None else ZarrOutput(out), bounds, fan, method,
                        out_dtype.name, check_finite)
    refs = src.blocks(bounds)
    heights = [min(e - s, n) for s, e in bounds]
    logger.info("tsqr: A %s %s, %d blocks of %d rows, fan-in %d, out=%s",
                src.shape, src.dtype, len(bounds), block_rows, fan,
                "lazy" if out is None else out.store)

    fast_ok = method == "auto"
    t0 = time.perf_counter()
    leaves = [dask.delayed(_leaf, pure=True, nout=2)(
                  ref, out, i, s, e, "A", check_finite, fast_ok, gpu,
                  dask_key_name=f"{prefix}-leaf-{i}")
              for i, (ref, (s, e)) in enumerate(zip(refs, bounds))]
    root_r, factors = build_tree([r for r, _ in leaves], heights, n, fan, prefix, want_q=True)
    downs = [dask.delayed(_down_factor, pure=True)((leaf[0], leaf[1]), s_i,
                                                   dask_key_name=f"{prefix}-down-{i}")
             for i, (leaf, s_i) in enumerate(zip(leaves, factors))]

    if out is not None and (src.kind == "zarr" or not fast_ok):
        # one graph: leaves → tree → per-block factors → Q_i S_i written in place. A Zarr
        # block is re-read inside its task (a reference, not data, sits in the graph);
        # a Dask A is only used by the leaves here (method="householder"), so its blocks
        # are released after the up pass
        reread = refs if src.kind == "zarr" else [None] * len(refs)
        tasks = [dask.delayed(_apply_write, pure=True)(ref, out, s, e, d, gpu,
                                                       dask_key_name=f"{prefix}-apply-{i}")
                 for i, (ref, d, (s, e)) in enumerate(zip(reread, downs, bounds))]
        r, _, flags = compute(root_r, tasks, [leaf[1] for leaf in leaves], client=client)
        _log_done(t0, flags)
        return out, r.astype(src.dtype)

    # two passes: the small per-block factors come here, then Q is formed from A again
    # (a Dask A's blocks must not be held between the passes)
    r, downs, flags = compute(root_r, downs, [leaf[1] for leaf in leaves], client=client)
    r = r.astype(src.dtype)
    _log_done(t0, flags, "up pass and tree")
    if out is not None:
        tasks = [dask.delayed(_apply_write, pure=True)(ref, out, s, e, d, gpu,
                                                       dask_key_name=f"{prefix}-apply-{i}")
                 for i, (ref, d, (s, e)) in enumerate(zip(src.blocks(bounds), downs, bounds))]
        compute(tasks, client=client)
        logger.info("tsqr: Q written in %.2f s in all", time.perf_counter() - t0)
        return out, r
    meta = src.xp().empty((0, 0), dtype=out_dtype)
    parts = [
        da.from_delayed(
            dask.delayed(_q_block, pure=True)(ref, d, out_dtype, dask_key_name=f"{prefix}-q-{i}"),
            shape=(e - s, n), dtype=out_dtype, meta=meta)
        for i, (ref, d, (s, e)) in enumerate(zip(refs, downs, bounds))
    ]
    q = da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    return q, r


def _log_done(t0, flags, what="blocks factorised and Q written"):
    n_fast = int(sum(bool(f) for f in flags))
    logger.info("tsqr: %s in %.2f s (%d of %d blocks with Q = A R⁻¹, the rest Householder Q)",
                what, time.perf_counter() - t0, n_fast, len(flags))
