"""``project_columns``: ``Lᵀ Y`` in a measurement task, against NumPy, bitwise independent of the column split."""
import numpy as np
import pytest

from sketchla.projection import GROUP, SLAB, project_columns, projection_cost
from sketchla.random import TILE_ROWS, TestMatrix


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_numpy_and_any_split(dtype):
    D, m, n = TILE_ROWS + 1234, SLAB + 7, 2 * GROUP + 5  # two row tiles, two slabs, three groups
    L = TestMatrix((D, m), seed=5, name="upsilon", dtype=dtype)
    Y = np.random.default_rng(0).standard_normal((D, n)).astype(dtype)
    full = project_columns(L, Y, 0)
    assert full.dtype == np.float64 and full.shape == (m, n)
    ref = L.toarray().astype(np.float64).T @ Y.astype(np.float64)
    tol = 1e-12 if dtype == "float64" else 2e-6
    assert np.abs(full - ref).max() <= tol * np.abs(ref).max()
    for c0, c1 in [(0, 1), (1, GROUP + 3), (GROUP - 1, GROUP + 1), (7, n), (n - 1, n)]:
        np.testing.assert_array_equal(project_columns(L, Y[:, c0:c1], c0), full[:, c0:c1])


def test_rows_must_match_and_cost_is_positive():
    L = TestMatrix((100, 5), seed=0, name="u", dtype="float64")
    with pytest.raises(ValueError, match="rows"):
        project_columns(L, np.ones((99, 2)), 0)
    assert projection_cost(L, 4) > 0
