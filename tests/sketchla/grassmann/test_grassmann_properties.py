"""Property tests: invariance under Q -> QZ (orthogonal Z), ranges, symmetry."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sketchla import grassmann as gm

from _grassmann_helpers import haar_orthogonal


@st.composite
def dims(draw, max_D=12):
    D = draw(st.integers(1, max_D))
    k = draw(st.integers(1, D))
    seed = draw(st.integers(0, 2**32 - 1))
    return D, k, seed


@settings(max_examples=60, deadline=None)
@given(dims())
def test_invariant_under_change_of_basis(args):
    D, k, seed = args
    rng = np.random.default_rng(seed)
    Q1 = gm.random_stiefel(D, k, rng)
    Q2 = gm.random_stiefel(D, k, rng)
    Z1, Z2 = haar_orthogonal(k, rng), haar_orthogonal(k, rng)
    R1, R2 = Q1 @ Z1, Q2 @ Z2
    np.testing.assert_allclose(gm.cosines(R1, R2), gm.cosines(Q1, Q2), atol=1e-10)
    base = gm.all_metrics(Q1, Q2, normalize=False)
    rot = gm.all_metrics(R1, R2, normalize=False)
    for name in gm.METRICS:
        # angle-based values inherit arccos's √eps sensitivity near σ = 0
        assert rot[name] == pytest.approx(base[name], abs=1e-6), name
        value = gm.normalized(name, R1, R2)
        assert -1e-12 <= value <= 1 + 1e-12
        assert value == pytest.approx(gm.normalized(name, Q1, Q2), abs=1e-6), name
    assert gm.overlap(R1, R2) == pytest.approx(gm.overlap(Q1, Q2), abs=1e-12)
    # a basis of the same span is identical on the Grassmannian
    assert gm.overlap(Q1, R1) == pytest.approx(1.0, abs=1e-12)
    assert gm.geodesic(Q1, R1) == pytest.approx(0.0, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(dims(max_D=15))
def test_mask_overlap_invariant_and_symmetric(args):
    D, k, seed = args
    rng = np.random.default_rng(seed)
    Q = gm.random_stiefel(D, k, rng)
    idx = gm.random_mask(D, k, rng)
    Z = haar_orthogonal(k, rng)
    ov = gm.mask_overlap(idx, Q)
    assert ov == pytest.approx(gm.mask_overlap(idx, Q @ Z), abs=1e-12)
    assert ov == pytest.approx(gm.overlap(Q, idx), abs=1e-12)
    assert ov == pytest.approx(gm.overlap(idx, Q), abs=1e-12)
    assert 0.0 <= ov <= 1.0
    # Q -> QZ changes the curve only at k = n (Z mixes all n columns)
    order = rng.permutation(D)
    c1, c2 = gm.overlap_curve(order, Q), gm.overlap_curve(order, Q @ Z)
    assert c1[-1] == pytest.approx(c2[-1], abs=1e-12)
    assert np.all((c1 >= 0) & (c1 <= 1))


@settings(max_examples=40, deadline=None)
@given(dims(max_D=20), st.integers(0, 2**32 - 1))
def test_mask_identities(args, seed2):
    D, k, seed = args
    m1, m2 = gm.random_mask(D, k, seed), gm.random_mask(D, k, seed2)
    ov = gm.overlap(m1, m2)
    assert ov == pytest.approx(1 - gm.hamming(m1, m2) / (2 * k))
    j = gm.iou(m1, m2)
    assert ov == pytest.approx(2 * j / (1 + j))
    assert gm.hamming(m1, m2) == gm.hamming(m2, m1)
