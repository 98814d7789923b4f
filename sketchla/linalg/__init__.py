"""Out-of-core thin linear algebra over Zarr/Dask row blocks.

* :func:`tsqr` — tall-skinny QR (Cholesky QR where it is safe, else Householder
  TSQR), Q streamed to Zarr (or lazy Dask).
* :func:`lstsq` — least squares ``min ||A X - B||`` for tall A, one streamed pass.
* :func:`inner` — ``Aᵀ B`` (or ``Aᵀ [B1, B2, ...]`` in one pass), small and in memory.
* :func:`inner_products` — several ``L_jᵀ R_k`` in one pass, generated left factors
  (test matrices) drawn block by block.
* :func:`matmul` — ``Q @ U`` for tall Q and a small in-memory U, streamed to Zarr.
* :func:`cholesky_factor` — the Gram passes of Cholesky QR alone; the caller
  writes each block of Q (over A's storage, for SEIGH's ``overwrite_sketch``).

All stream row blocks of ``block_rows`` rows (the ``row_block`` of a
:class:`~sketchla.blocking.BlockPlan`; default from its byte budget), so a
worker never holds more than O(block_rows·n + n²) numbers, and run on the
active Dask scheduler or the ``client`` given (:func:`sketchla.executor.compute`).
"""
from ._cholqr import CholeskyFactor, NotReproducibleError
from .lstsq import lstsq
from .products import inner, inner_products, matmul
from .tsqr import cholesky_factor, tsqr

__all__ = ["tsqr", "lstsq", "inner", "inner_products", "matmul", "NotReproducibleError", "cholesky_factor",
           "CholeskyFactor"]
