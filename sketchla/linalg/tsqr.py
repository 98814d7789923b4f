"""Out-of-core QR of a tall-skinny D×n array over Zarr or Dask row blocks.

Implements the orthogonalisation step of the sketched decompositions (paper
Alg. 1 lines 4–5, Alg. 2 line 3: ``(Q, _) ← qr(M_O)``) without ever holding
the D×n matrix in memory (paper appendix B.2: "Out-of-core QR
orthogonalizations would greatly help"). Two algorithms, by ``method``:

* ``"householder"`` — Householder TSQR (Demmel, Grigori, Hoemmen & Langou
  2012; :mod:`._householder`): unconditionally stable, A read once, Q
  written twice; per block a ``geqrf``, an ``orgqr`` and a GEMM.
* ``"cholesky"`` — shifted CholeskyQR3 with float64 Gram matrices, streamed
  and recomputing (Fukaya et al. 2020; :mod:`._cholqr`): 2 passes over A for
  a well-conditioned A, up to 4 for κ₂(A) ≈ 1e12–1e13; per block and pass a
  ``syrk`` and triangular solves (BLAS-3 throughout), Q written once.
  Refuses a numerically rank-deficient A.
* ``"auto"`` (default) — Cholesky QR where one float64 Gram pass shows A
  well conditioned enough that no shift is needed (estimated κ₂ ≤ 1e6,
  :data:`._cholqr.GRAM_COND`), and for a lazy Q (``out=None``) only where Q
  is one triangular solve of A (κ₂ ≤ 1e4 for float32 data, ≤ 10 for
  float64); otherwise — rank-deficient, badly conditioned, or a final pass
  whose recomputed blocks were not bitwise those of its Gram pass
  (:class:`._cholqr.NotReproducibleError`) — Householder TSQR. The Gram pass
  spent before a fallback is the price of the fallback (one extra read of A).

Both keep their orthogonality for subnormal inputs and inputs near the
dtype's largest value: blocks outside a safe range are scaled by powers of
two (exact) before they are factorised (:mod:`._kernels`).

Memory per worker: one block and its float64 copy (O(block_rows·n)), a
node's stack or a Gram matrix (O(n²) each); for Householder TSQR also the
small per-block n×n factors S_i, (D/block_rows)·n² numbers in all (16 MB for
D=2·10⁶, n=256 at the default 64 MiB blocks), held by the scheduler between
the passes or by the caller for the lazy Q. Peak RSS and the same-run
comparison of the methods: ``benchmarks/tsqr_scaling.py`` (README).

Speed: kernels run in the block's dtype where the numerics allow (see
:mod:`._cholqr` for which products must be float64), with a blocked LAPACK
workspace, and while Dask runs several tasks in this process BLAS is
limited to its share of the cores (see :func:`sketchla.executor.compute`).
"""
from __future__ import annotations

import logging
import time
import warnings


from ..graph_keys import ZarrOutput, key_prefix
from ._args import check_options
from ..blocking import check_count
from ._blocks import _Source, plan_output, row_bounds
from ._cholqr import CholeskyFactor, NotReproducibleError, cholesky_factor as _cholesky_factor, cholesky_tsqr, describe
from ._householder import householder_tsqr
from ._kernels import unscale
from ._tree import tree_fanin

logger = logging.getLogger(__name__)

METHODS = ("auto", "cholesky", "householder")


def tsqr(A, out=None, *, block_rows=None, client=None, fanin=None, check_finite=True,
         gpu=False, dtype=None, method="auto", storage_options=None):
    """QR factorisation ``A = Q R`` of a tall D×n array, streamed over row blocks.

    Parameters
    ----------
    A : zarr.Array, dask.array.Array or NumPy/CuPy array, shape (D, n), D ≥ n, float32/float64
        Read one row block at a time (a Zarr chunking of (rows, col_chunk) is
        fine; a band then touches several chunks). A Dask A's graph is
        evaluated once per pass over A (``method`` says how many).
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
        Reduction-tree fan-in of Householder TSQR; default ``max(2, block_rows // n)``.
    check_finite : bool
        Check every block for NaN/Inf (ValueError naming the block).
    gpu : bool
        Decode Zarr blocks into CuPy (Zarr's GPU buffer prototype, per read) and compute
        on the GPU. Dask arrays with CuPy blocks run on the GPU regardless.
    dtype : optional
        dtype of a newly created ``out`` / of the lazy Q (default A's dtype).
        A given ``out`` may be wider than this; a narrower one only if
        ``dtype`` says so explicitly.
    method : {"auto", "cholesky", "householder"}
        The algorithm (module docstring). ``"auto"`` (default): Cholesky QR
        where it is safe and cheaper, else Householder TSQR. ``"cholesky"``:
        ‖QᵀQ − I‖ ≤ 1e-6 (float32) / 1e-13 (float64) for κ₂(A) up to about
        1e12; refuses a numerically rank-deficient A (``ValueError``); its
        passes must compute bitwise-identical blocks (one machine, or
        workers with the same BLAS and CPU kind), else
        :class:`sketchla.linalg.NotReproducibleError`. ``"householder"``:
        any A, orthonormal Q to working precision.

    Returns
    -------
    Q : zarr.Array (``out`` given) or dask.array.Array (``out=None``), D×n,
        orthonormal columns (QᵀQ ≈ I to working precision, also for
        rank-deficient A with "auto" and "householder").
    R : numpy/cupy ndarray, n×n upper triangular with diag(R) ≥ 0, in A's
        dtype (computed in float64), Q R ≈ A. Where ‖A‖₂ exceeds the dtype's
        largest value R holds ±inf (a RuntimeWarning says so); Q is still valid.
    """
    check_options(client=client, check_finite=check_finite, gpu=gpu, fanin=fanin)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    src = _tall_source(A, gpu)
    D, n = src.shape
    out, block_rows, bounds, out_dtype = plan_output(src, out, (D, n), n, dtype, block_rows, client,
                                                     storage_options)
    fan = tree_fanin(n, block_rows, fanin)
    prefix = key_prefix("tsqr", src, None if out is None else ZarrOutput(out), bounds, fan,
                        out_dtype.name, check_finite)
    logger.info("tsqr(%s): A %s %s, %d blocks of %d rows, out=%s", method, src.shape, src.dtype,
                len(bounds), block_rows, "lazy" if out is None else out.store)
    t0 = time.perf_counter()
    result = None
    if method in ("auto", "cholesky"):
        try:
            result = cholesky_tsqr(src, out, bounds, prefix, out_dtype, check_finite, gpu, client,
                                   auto=method == "auto")
        except NotReproducibleError as exc:
            if method == "cholesky":
                raise
            logger.warning("tsqr auto: %s; Householder TSQR instead", exc)
    if result is not None:
        q, r, info = result
        logger.info("tsqr: %s, %.2f s", describe(info), time.perf_counter() - t0)
    else:
        q, r = householder_tsqr(src, out, bounds, fan, prefix, out_dtype, check_finite, gpu, client)
        logger.info("tsqr: Householder TSQR, %.2f s in all", time.perf_counter() - t0)
    return q, _as_result_r(r, src)


def cholesky_factor(A, *, block_rows: int, client=None, check_finite=True) -> CholeskyFactor:
    """The Gram passes of ``tsqr(A, method="cholesky")`` alone, for a caller that writes Q itself.

    ``A`` as for :func:`tsqr` (D×n, D ≥ n); ``block_rows``: the rows of each
    block, block ``i`` being rows ``[i·block_rows, (i+1)·block_rows)``.
    Returns a :class:`~sketchla.linalg._cholqr.CholeskyFactor` (picklable,
    O(n²) numbers): ``factor.q_block(A[rows of block i], i, dtype)`` is row
    block ``i`` of Q — the caller may write it anywhere, e.g. over A's own
    storage, block by block (SEIGH's ``overwrite_sketch``). ``factor.r`` and
    ``factor.e``: ``R = r · 2^e`` (float64). A numerically rank-deficient A
    raises ``ValueError`` (Householder TSQR has no such split).
    """
    check_options(client=client, check_finite=check_finite, gpu=False)
    src = _tall_source(A, gpu=False)
    bounds = row_bounds(src.shape[0], check_count(block_rows, "block_rows", "rows per block of A"))
    prefix = key_prefix("cholesky-factor", src, bounds, check_finite)
    t0 = time.perf_counter()
    f = _cholesky_factor(src, src.blocks(bounds), bounds, prefix, check_finite, client, auto=False)
    logger.info("cholesky_factor: %s; the final pass is the caller's, %.2f s for the Gram passes", describe(f.info),
                time.perf_counter() - t0)
    return f


def _tall_source(A, gpu):
    """``A`` as a :class:`._blocks._Source`, refused unless it is non-empty and tall (D ≥ n)."""
    src = _Source(A, "A", allow_memory=True, gpu=gpu)
    D, n = src.shape
    if n < 1 or D < 1:
        raise ValueError(f"A must be non-empty, got shape {src.shape}")
    if D < n:
        raise ValueError(f"A must be tall (D >= n), got shape {src.shape}; "
                         "TSQR of a wide matrix is not supported")
    return src


def _as_result_r(r, src):
    """R (an ``(r, e)`` pair) as an array of A's dtype on the blocks' device, diag ≥ 0."""
    r = unscale(r, src.dtype)
    xp = src.xp()
    if bool(xp.isinf(xp.asarray(r)).any()):
        warnings.warn(f"tsqr: R overflows {src.dtype} (‖A‖₂ is beyond its largest value); R holds ±inf, "
                      "Q is still orthonormal", RuntimeWarning, stacklevel=3)
    return xp.asarray(r)
