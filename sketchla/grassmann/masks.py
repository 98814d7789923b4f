"""Mask metrics (paper §4.1 i–ii), the mask-vs-eigenbasis overlap (Eq. 3),
overlap curves over k, and the chance baseline k/D (Appendix A.5).

A mask is a boolean vector of length D or a 1-D integer array of distinct
row indices; its orthogonal projector is Φ = diag(m) and its Stiefel matrix
is ``mask_matrix(indices, D)`` (a point of M^{D×k}, paper §3).

For two k-sparse masks with the standard Hamming distance |m1 Δ m2| (the
number of bit flips, = ||Φ1 − Φ2||_F²):

    overlap = |m1 ∩ m2| / k = 1 − hamming / (2k) = 2·IoU / (1 + IoU).

(The paper's §4.1 ii writes ``overlap = 1 − hamming/k``; that drops a factor 2,
since ||Φ1 − Φ2||_F² = 2·dist_{p,F}².)
"""
from __future__ import annotations

import numbers

import numpy as np

from ._rows import gather_rows
from ._validate import (
    as_matrix,
    check_index_array,
    check_k_D,
    check_positive_int,
    check_rows_cols_bounded,
    check_tol,
    mask_indices,
    to_host,
)

__all__ = ["iou", "hamming", "mask_overlap", "overlap_curve", "chance_overlap"]


def _mask_pair(m1, m2, D):
    if D is not None:
        D = check_positive_int(D, "D")
    i1, D1 = mask_indices(m1, "m1", D)
    i2, D2 = mask_indices(m2, "m2", D)
    if D1 is not None and D2 is not None and D1 != D2:
        raise ValueError(f"m2 is a boolean mask of length {D2} but m1 has length {D1}")
    if D1 is not None and D2 is None:
        check_index_array(i2, "m2", D1)
    if D2 is not None and D1 is None:
        check_index_array(i1, "m1", D2)
    inter = int(np.intersect1d(i1, i2, assume_unique=True).size)
    return i1.size, i2.size, inter


def iou(m1, m2, *, D: int | None = None) -> float:
    """Intersection over union |m1 ∩ m2| / |m1 ∪ m2| ∈ [0, 1] (paper §4.1 i).

    Parameters
    ----------
    m1, m2 : masks (boolean vectors of equal length D, or index arrays);
        they may select different numbers of entries.
    D : optional ambient dimension, to range-check index arrays.
    """
    k1, k2, inter = _mask_pair(m1, m2, D)
    return inter / (k1 + k2 - inter)


def hamming(m1, m2, *, D: int | None = None) -> int:
    """Hamming distance |m1 Δ m2| = ||m1 − m2||_1 = ||Φ1 − Φ2||_F² (bit flips, §4.1 ii).

    For k-sparse masks it ranges over [0, 2k] (even values only) and
    ``overlap = 1 − hamming/(2k)``.
    """
    k1, k2, inter = _mask_pair(m1, m2, D)
    return int(k1 + k2 - 2 * inter)


def _basis_for_rows(Q, name="Q"):
    """Validate a tall D×n array; Zarr stays Zarr (its rows are gathered directly)."""
    return as_matrix(Q, name, wrap_zarr=False)


def mask_overlap(indices, Q, *, check: bool = True, tol=None) -> float:
    """Overlap of a k-sparse mask with the first k columns of Q (paper Eq. 3).

        overlap = (1/k)·||Q[indices, :k]||_F²,   k = number of selected entries,

    i.e. ``overlap(mask_matrix(indices, D), Q[:, :k])`` but reading only the
    k selected rows of the first k columns (O(k²) memory, whatever D is).

    Parameters
    ----------
    indices : boolean vector of length D, or 1-D array of k distinct row indices
    Q : (D, n) basis with orthonormal columns, n >= k (NumPy, CuPy, Dask or
        Zarr); typically the top-n eigenbasis sorted by eigenvalue.
    check : if True, test the gathered k×k block for the necessary condition
        of orthonormality (every row and column norm <= 1 + tol); a full test
        would need a pass over all of Q — use ``check_orthonormal(Q)`` for it.
    tol : tolerance (None = dtype default: float32 1e-3, float64 1e-6).

    Returns
    -------
    float in [0, 1].
    """
    Q = _basis_for_rows(Q)
    D, n = (int(s) for s in Q.shape)
    idx, _ = mask_indices(indices, "indices", D)
    k = idx.size
    if k > n:
        raise ValueError(f"indices selects k={k} entries but Q has only n={n} columns; need k <= n")
    G = gather_rows(Q, idx, k)
    if check:
        check_rows_cols_bounded(G, "Q", check_tol(tol, Q.dtype))
    return float(min(1.0, np.sum(G * G) / k))


def overlap_curve(order, Q, k_max: int | None = None, *, check: bool = True, tol=None) -> np.ndarray:
    """Overlap of the top-k mask with the top-k columns, for every k = 1..n.

        curve[k-1] = (1/k)·||Q[order[:k], :k]||_F²     (paper Eq. 3 for each k)

    computed in one pass: the n×n block G = Q[order[:n], :n] is gathered (the
    only access to Q), then the leading k×k sums of G∘G come from a 2-D
    cumulative sum — O(n²) time and memory, never a D×n or D×D product.

    Parameters
    ----------
    order : 1-D integer array ranking the parameters (e.g. by decreasing
        magnitude), of length >= n; may be a full permutation of length D,
        only ``order[:n]`` is used (and checked for range and duplicates).
    Q : (D, n_cols) basis with orthonormal columns sorted by importance
        (NumPy, CuPy, Dask or Zarr).
    k_max : n, the largest k (default: n_cols); 1 <= k_max <= n_cols.
    check, tol : as in :func:`mask_overlap` (necessary condition on G).

    Returns
    -------
    (n,) float64 ndarray.
    """
    Q = _basis_for_rows(Q)
    D, ncols = (int(s) for s in Q.shape)
    n = ncols if k_max is None else check_positive_int(k_max, "k_max")
    if n > ncols:
        raise ValueError(f"k_max={n} exceeds the number of columns of Q ({ncols})")
    if not hasattr(order, "shape") or not hasattr(order, "dtype"):
        order = np.asarray(order)
    if len(order.shape) != 1:
        raise ValueError(f"order must be a 1-D integer index array, got shape {tuple(order.shape)}")
    if np.dtype(order.dtype) == np.bool_ or not np.issubdtype(np.dtype(order.dtype), np.integer):
        raise ValueError(
            f"order must be an integer index array ranking the rows (a boolean mask has no order), "
            f"got dtype {order.dtype}"
        )
    if order.shape[0] < n:
        raise ValueError(f"order has {order.shape[0]} entries but k_max={n} are needed")
    used = np.asarray(to_host(order[:n]), dtype=np.int64)
    check_index_array(used, "order", D)
    G = gather_rows(Q, used, n)
    if check:
        check_rows_cols_bounded(G, "Q", check_tol(tol, Q.dtype))
    P = np.cumsum(np.cumsum(G * G, axis=0), axis=1)
    curve = np.diagonal(P) / np.arange(1, n + 1)
    return np.minimum(curve, 1.0)


def chance_overlap(k, D):
    """Chance-level overlap k/D (paper §4.2, Appendix A.5, Lemma A.1).

    The expected overlap of two independent uniformly random k-dimensional
    subspaces (or masks, or one of each) of R^D.

    Parameters
    ----------
    k : int or integer array, 1 <= k <= D
    D : int >= 1

    Returns
    -------
    float (or float64 array for array ``k``).
    """
    if isinstance(k, numbers.Integral) and not isinstance(k, bool):
        k, D = check_k_D(k, D)
        return k / D
    ks = np.asarray(k)
    if ks.ndim == 0 or ks.size == 0 or ks.dtype == np.bool_ or not np.issubdtype(ks.dtype, np.integer):
        raise ValueError(f"k={k!r} must be an integer or a non-empty integer array")
    D = check_positive_int(D, "D")
    if ks.min() < 1 or ks.max() > D:
        raise ValueError(f"k must satisfy 1 <= k <= D={D}, got values in [{ks.min()}, {ks.max()}]")
    return ks.astype(np.float64) / D
