"""Helpers for the sketchla.linalg tests (TSQR, lstsq, thin products).

Matrices are small (at most a few thousand rows) so that the whole folder
runs in well under a minute; the *blocking* is what is exercised: tiny
``block_rows`` and ``fanin`` give many blocks, ragged last blocks, blocks with
fewer rows than columns and reduction trees of several levels.
"""
import numpy as np
import zarr


def eps(dtype):
    return float(np.finfo(dtype).eps)


def to_zarr(a, chunks=None, path=None):
    """``a`` as a Zarr array (in memory unless ``path``), default chunks of 37 rows."""
    if chunks is None:
        chunks = (37,) + a.shape[1:]
    store = zarr.storage.MemoryStore() if path is None else str(path)
    z = zarr.create_array(store=store, shape=a.shape, chunks=chunks, dtype=a.dtype)
    z[...] = a
    return z


def empty_zarr(shape, dtype, chunks=None, path=None, **kw):
    chunks = chunks or (min(50, shape[0]),) + tuple(shape[1:])
    store = zarr.storage.MemoryStore() if path is None else str(path)
    return zarr.create_array(store=store, shape=shape, chunks=chunks, dtype=dtype, **kw)


def low_rank(rng, D, n, r, dtype=np.float64):
    """D×n with exact rank r (product of Gaussian factors)."""
    return (rng.standard_normal((D, r)) @ rng.standard_normal((r, n))).astype(dtype)


def ill_conditioned(rng, D, n, cond, dtype=np.float64):
    """D×n with singular values log-spaced from 1 to 1/cond."""
    U, _ = np.linalg.qr(rng.standard_normal((D, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return ((U * np.logspace(0, -np.log10(cond), n)) @ V.T).astype(dtype)


def assert_qr(Q, R, A, tol_orth, tol_rec):
    """Q orthonormal, R upper triangular with diag ≥ 0, QR ≈ A (relative to ||A||)."""
    Q = np.asarray(Q, dtype=np.float64)
    R = np.asarray(R)
    A = np.asarray(A, dtype=np.float64)
    n = A.shape[1]
    assert Q.shape == A.shape and R.shape == (n, n)
    orth = np.abs(Q.T @ Q - np.eye(n)).max()
    assert orth <= tol_orth, f"||QᵀQ − I||_max = {orth:.2e} > {tol_orth:.1e}"
    assert np.array_equal(R, np.triu(R)), "R is not upper triangular"
    assert (np.diagonal(R) >= 0).all(), "diag(R) must be ≥ 0"
    scale = max(np.abs(A).max(), np.finfo(np.float64).tiny)
    rec = np.abs(Q @ R.astype(np.float64) - A).max() / scale
    assert rec <= tol_rec, f"||QR − A||_max/||A||_max = {rec:.2e} > {tol_rec:.1e}"
