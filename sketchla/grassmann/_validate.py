"""Input checking and coercion shared by the Grassmannian metrics.

Everything here is cheap: it looks at shapes, dtypes and small (k×k or n×n)
matrices, never at an O(D·D) object. Every failure raises a ``ValueError``
(or ``TypeError`` for arrays on different devices) whose message names the
offending argument.

Two kinds of "basis" are accepted wherever a point of the Stiefel manifold
O^{D×k} is expected (paper §3):

* a dense ``D×k`` array with orthonormal columns (NumPy, CuPy, Dask or Zarr);
* a k-sparse mask, i.e. a point of M^{D×k} ⊂ O^{D×k}: a boolean vector of
  length D, or a 1-D integer array of k distinct row indices.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..backend import asnumpy, check_float_dtype, get_array_module

# Default tolerances for ``max |QᵀQ - I| <= tol`` by dtype. They are loose
# enough for bases produced in float32 by a sketch (accumulated rounding over
# millions of rows) and tight enough to reject anything that is not
# orthonormal (a raw Gaussian matrix, an unnormalised vector, ...).
_DEFAULT_TOL = {np.dtype("float32"): 1e-3, np.dtype("float64"): 1e-6}


def default_tol(dtype) -> float:
    """Orthonormality tolerance for ``dtype`` (float32: 1e-3, float64: 1e-6)."""
    return _DEFAULT_TOL.get(np.dtype(dtype), 1e-6)


def _module_root(x) -> str:
    return type(x).__module__.split(".")[0]


def is_dask(x) -> bool:
    return _module_root(x) == "dask"


def is_zarr(x) -> bool:
    return _module_root(x) == "zarr"


def to_host(x) -> np.ndarray:
    """Small array (NumPy, CuPy or Dask) → NumPy on the host."""
    if is_dask(x):
        x = x.compute()
    return asnumpy(x)


def check_tol(tol, dtype, name: str = "tol") -> float:
    if tol is None:
        return default_tol(dtype)
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not np.isfinite(tol) or tol < 0:
        raise ValueError(f"{name}={tol!r} must be a finite number >= 0 (or None for the dtype default)")
    return float(tol)


def check_positive_int(value, name: str) -> int:
    """``value`` as a Python int >= 1, else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} must be an integer")
    if value < 1:
        raise ValueError(f"{name}={value} must be >= 1")
    return int(value)


def check_k_D(k, D, k_name: str = "k", D_name: str = "D") -> tuple[int, int]:
    """Validate 1 <= k <= D (both integers)."""
    D = check_positive_int(D, D_name)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ValueError(f"{k_name}={k!r} must be an integer")
    if k < 1:
        raise ValueError(f"{k_name}={k} must be >= 1 (an empty subspace/mask has no overlap)")
    if k > D:
        raise ValueError(f"{k_name}={k} must be <= {D_name}={D}")
    return int(k), D


# --------------------------------------------------------------------------- dense bases


def as_matrix(Q, name: str, *, wrap_zarr: bool = True):
    """Check that ``Q`` is a real float32/float64 ``D×k`` array with 1 <= k <= D.

    Zarr arrays are wrapped as Dask arrays (so products are streamed, not
    loaded) unless ``wrap_zarr=False``. Returns the (possibly wrapped) array.
    """
    if wrap_zarr and is_zarr(Q):
        import dask.array as da

        Q = da.from_zarr(Q)
    if not hasattr(Q, "shape") or not hasattr(Q, "dtype"):
        raise ValueError(f"{name} must be a NumPy, CuPy, Dask or Zarr array, got {type(Q).__name__}")
    if len(Q.shape) != 2:
        raise ValueError(f"{name} must be a 2-D D×k matrix with orthonormal columns, got shape {tuple(Q.shape)}")
    check_float_dtype(Q.dtype, name=f"{name}.dtype")
    D, k = (int(s) for s in Q.shape)
    if k < 1:
        raise ValueError(f"{name} has k=0 columns; need 1 <= k <= D")
    if k > D:
        raise ValueError(f"{name} has shape {(D, k)}: k={k} > D={D} columns cannot be orthonormal")
    return Q


def orthonormality_error(gram: np.ndarray) -> float:
    """``max |G - I|`` for a small k×k Gram matrix on the host."""
    return float(np.max(np.abs(gram - np.eye(gram.shape[0], dtype=gram.dtype))))


def raise_if_not_orthonormal(gram: np.ndarray, name: str, tol: float) -> None:
    err = orthonormality_error(gram)
    if not err <= tol:  # also catches NaN
        raise ValueError(
            f"{name} does not have orthonormal columns: max|{name}ᵀ{name} - I| = {err:.3g} > tol={tol:.3g} "
            f"(orthonormalise it, e.g. with a QR, or pass check=False to skip this test)"
        )


def check_orthonormal(Q, name: str = "Q", tol=None) -> None:
    """Full check ``max |QᵀQ - I| <= tol`` (one pass over Q; Dask streamed).

    Raises ``ValueError`` naming ``name`` if ``Q`` is not a D×k matrix with
    orthonormal columns. ``tol=None`` uses the dtype default
    (float32: 1e-3, float64: 1e-6).
    """
    Q = as_matrix(Q, name)
    tol = check_tol(tol, Q.dtype)
    gram = to_host(Q.T @ Q).astype(np.float64)
    raise_if_not_orthonormal(gram, name, tol)


def check_rows_cols_bounded(G: np.ndarray, name: str, tol: float) -> None:
    """Necessary condition for rows gathered from an orthonormal basis.

    If Q has orthonormal columns, every row of Q[:, :n] and every column of
    Q[rows, :] has Euclidean norm <= 1. This O(n²) test on the gathered
    block catches unnormalised inputs without a pass over all D rows.
    """
    if not np.all(np.isfinite(G)):
        raise ValueError(f"{name} contains NaN or Inf in the gathered rows")
    row = np.sqrt(np.max(np.sum(G * G, axis=1))) if G.size else 0.0
    col = np.sqrt(np.max(np.sum(G * G, axis=0))) if G.size else 0.0
    worst = max(row, col)
    if worst > 1.0 + tol:
        raise ValueError(
            f"{name} cannot have orthonormal columns: a row or column of the gathered block has norm "
            f"{worst:.4g} > 1 + tol (tol={tol:.3g}); pass check=False to skip this test"
        )


# --------------------------------------------------------------------------- masks


def mask_indices(m, name: str, D: int | None = None) -> tuple[np.ndarray, int | None]:
    """Turn a mask into sorted unique int64 row indices.

    ``m`` is a boolean vector (its length is the ambient dimension D) or a 1-D
    integer array of distinct indices. Returns ``(indices, D_of_mask)`` where
    ``D_of_mask`` is the boolean length or ``None`` for an index array. If
    ``D`` is given, it is checked against the mask (length or index range).
    """
    if is_zarr(m):
        m = m[...]
    if not hasattr(m, "shape") or not hasattr(m, "dtype"):
        m = np.asarray(m)
        if m.dtype == object:
            raise ValueError(f"{name} must be a boolean mask or an integer index array")
    if m.ndim != 1:
        raise ValueError(f"{name} must be a 1-D boolean mask or index array, got shape {tuple(m.shape)}")
    m = to_host(m)
    if m.dtype == np.bool_:
        if D is not None and m.shape[0] != D:
            raise ValueError(f"{name} is a boolean mask of length {m.shape[0]} but D={D}")
        idx = np.flatnonzero(m).astype(np.int64)
        if idx.size == 0:
            raise ValueError(f"{name} selects no entries (k=0); a mask needs k >= 1")
        return idx, int(m.shape[0])
    if not np.issubdtype(m.dtype, np.integer):
        raise ValueError(f"{name} must be a boolean mask or an integer index array, got dtype {m.dtype}")
    idx = np.asarray(m, dtype=np.int64)
    check_index_array(idx, name, D)
    return np.sort(idx), None


def check_index_array(idx: np.ndarray, name: str, D: int | None) -> None:
    """Non-empty, non-negative, < D (if known), no duplicates."""
    if idx.size == 0:
        raise ValueError(f"{name} is empty (k=0); a mask needs k >= 1")
    if idx.min() < 0:
        raise ValueError(f"{name} contains negative index {int(idx.min())}; indices must be in [0, D)")
    if D is not None and idx.max() >= D:
        raise ValueError(f"{name} contains index {int(idx.max())} out of range for D={D}")
    s = np.sort(idx)
    dup = s[1:][s[1:] == s[:-1]]
    if dup.size:
        raise ValueError(f"{name} contains duplicate index {int(dup[0])}; a k-sparse mask has k distinct entries")
    if D is not None and idx.size > D:  # impossible after the checks above, kept for clarity
        raise ValueError(f"{name} has k={idx.size} > D={D} entries")


def is_mask_like(x) -> bool:
    """1-D boolean or integer array → mask; anything else is a dense basis."""
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None or dtype is None:
        return False
    return len(shape) == 1 and (np.dtype(dtype) == np.bool_ or np.issubdtype(np.dtype(dtype), np.integer))


@dataclass
class Basis:
    """A validated point of O^{D×k}: dense array or a mask (sorted indices)."""

    kind: str  # "dense" | "mask"
    k: int
    D: int | None  # None for an index mask whose D is not known
    data: object  # the array (dense) or np.ndarray of indices (mask)


def as_basis(x, name: str) -> Basis:
    """Validate a dense D×k basis or a k-sparse mask (see module docstring)."""
    if is_mask_like(x):
        idx, D = mask_indices(x, name)
        return Basis("mask", int(idx.size), D, idx)
    if getattr(x, "shape", None) is not None and len(x.shape) == 1:
        raise ValueError(
            f"{name} is 1-D with dtype {x.dtype}: pass a D×k matrix, or a mask as a boolean vector / "
            f"integer index array"
        )
    Q = as_matrix(x, name)
    return Basis("dense", int(Q.shape[1]), int(Q.shape[0]), Q)


def check_pair(b1: Basis, b2: Basis, n1: str, n2: str, same_k: bool) -> None:
    """Matching ambient dimension (and k, if required) between two bases."""
    if b1.D is not None and b2.D is not None and b1.D != b2.D:
        raise ValueError(f"{n2} lives in dimension D={b2.D} but {n1} in D={b1.D}")
    for b, nb, other in ((b1, n1, b2), (b2, n2, b1)):
        if b.kind == "mask" and b.D is None and other.D is not None:
            check_index_array(b.data, nb, other.D)
    if same_k and b1.k != b2.k:
        raise ValueError(
            f"{n2} has k={b2.k} columns/entries but {n1} has k={b1.k}; these metrics compare subspaces of "
            f"equal dimension (principal_angles accepts different k)"
        )
    if b1.kind == "dense" and b2.kind == "dense":
        x1, x2 = get_array_module(b1.data), get_array_module(b2.data)
        if x1 is not x2:
            raise TypeError(f"{n1} and {n2} live on different devices ({x1.__name__} vs {x2.__name__})")


def check_seed(seed, name: str = "seed") -> np.random.Generator:
    """An int >= 0, a ``SeedSequence`` or a ``numpy.random.Generator`` → Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"{name}={seed!r} must be a non-negative int or a numpy.random.Generator")
    if seed < 0:
        raise ValueError(f"{name}={seed} must be >= 0")
    return np.random.default_rng(int(seed))
