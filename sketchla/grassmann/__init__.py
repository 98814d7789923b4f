"""Grassmannian metrics on orthonormal bases and parameter masks (paper §3–4).

``from sketchla import grassmann as gm``:

* principal angles and the distances of paper §4.1 — :func:`principal_angles`,
  :func:`cosines`, :func:`geodesic`, :func:`chordal_2`, :func:`chordal_f`,
  :func:`projection_2`, :func:`projection_f`, :func:`fubini_study`,
  :func:`overlap` (Eq. 2); :func:`normalized` maps each to a similarity in
  [0, 1] as in Fig. 2 / Table 2; :func:`all_metrics`, :func:`from_angles`;
  names in :data:`METRICS`;
* masks — :func:`iou`, :func:`hamming`, :func:`mask_overlap` (Eq. 3),
  :func:`overlap_curve` (all k at once), :func:`chance_overlap` (k/D, A.5);
* sampling — :func:`random_stiefel`, :func:`random_mask`, :func:`mask_matrix`;
* :func:`check_orthonormal` for an explicit full orthonormality test.

Inputs may be NumPy, CuPy, Dask or Zarr arrays; wherever a basis is expected
a k-sparse mask (boolean vector or index array) is accepted too. Only k×k
(or n×n) matrices are formed; results are NumPy floats/arrays on the host.
Bad input raises ``ValueError`` naming the argument.
"""
from ._validate import check_orthonormal
from .angles import (
    METRICS,
    all_metrics,
    chordal_2,
    chordal_f,
    cosines,
    from_angles,
    fubini_study,
    geodesic,
    normalized,
    overlap,
    principal_angles,
    projection_2,
    projection_f,
)
from .masks import chance_overlap, hamming, iou, mask_overlap, overlap_curve
from .sampling import mask_matrix, random_mask, random_stiefel

__all__ = [
    "METRICS",
    "all_metrics",
    "chance_overlap",
    "check_orthonormal",
    "chordal_2",
    "chordal_f",
    "cosines",
    "from_angles",
    "fubini_study",
    "geodesic",
    "hamming",
    "iou",
    "mask_matrix",
    "mask_overlap",
    "normalized",
    "overlap",
    "overlap_curve",
    "principal_angles",
    "projection_2",
    "projection_f",
    "random_mask",
    "random_stiefel",
]
