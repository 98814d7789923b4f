"""``measure(..., project=L)``: each task stores ``Lᵀ A Ω`` for its columns (issue 18.4)."""
import numpy as np
import pytest

import sketchla as sk
from sketchla.random import TestMatrix
from sketchla.store import RunStore, StoreMismatchError


def _setup(tmp_path, D=700, n=23, m=31):
    A = np.random.default_rng(1).standard_normal((D, D))
    A = A + A.T
    omega = TestMatrix((D, n), seed=2, name="omega", dtype="float64")
    L = TestMatrix((D, m), seed=2, name="upsilon", dtype="float64")
    return A, omega, L, RunStore.open(str(tmp_path / "run"), {"t": 1})


def test_projected_measurement_matches_dense_and_any_chunking(tmp_path):
    A, omega, L, run = _setup(tmp_path)
    Z = sk.measure(A, omega, run, "Z", chunk=4, project=L, client=False, progress=False)
    assert Z.shape == (31, 23) and Z.dtype == np.float64 and Z.attrs["sketchla_measure"]["project"] == L.spec()
    ref = L.toarray().T @ (A @ omega.toarray())
    np.testing.assert_allclose(Z[...], ref, rtol=1e-12, atol=1e-10)
    other = sk.measure(A, omega, run, "Z7", chunk=7, project=L, client="sync", progress=False)
    np.testing.assert_array_equal(other[...], Z[...])
    cols = sk.measure(A, omega.columns(5, 23), run, "Zc", chunk=6, project=L, client=False, progress=False)
    np.testing.assert_array_equal(cols[...], Z[:, 5:])


def test_resume_checks_the_operator_on_the_projection(tmp_path):
    A, omega, L, run = _setup(tmp_path)
    sk.measure(A, omega, run, "Z", chunk=4, project=L, client=False, progress=False)
    assert sk.measure(A, omega, run, "Z", project=L, client=False, progress=False).chunks == (31, 4)
    with pytest.raises(StoreMismatchError, match="differs from the one"):
        sk.measure(-A, omega, run, "Z", project=L, client=False, progress=False)


@pytest.mark.parametrize("project, error, match", [
    ("u", TypeError, "project must be a sketchla TestMatrix"),
    (TestMatrix((699, 3), seed=0, name="u", dtype="float64"), ValueError, "needs 700 rows"),
    (TestMatrix((700, 3), seed=0, name="u", dtype="float32"), ValueError, "dtype float32"),
])
def test_bad_projection_is_refused(tmp_path, project, error, match):
    A, omega, _, run = _setup(tmp_path)
    with pytest.raises(error, match=match):
        sk.measure(A, omega, run, "Z", project=project, client=False, progress=False)
    assert "Z" not in run
