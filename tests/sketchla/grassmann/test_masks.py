"""IoU, Hamming, mask overlap (Eq. 3), overlap curves and the chance baseline."""
import itertools

import numpy as np
import pytest

from sketchla import grassmann as gm

from _grassmann_helpers import bool_mask


def brute_iou_hamming(a, b):
    return np.sum(a & b) / np.sum(a | b), int(np.sum(a != b))


@pytest.mark.parametrize("D,k", [(5, 1), (6, 3), (8, 4), (7, 7)])
def test_iou_hamming_brute_force_and_identities(D, k):
    """All pairs of k-subsets: IoU/Hamming by definition, and the overlap identities."""
    subsets = [np.array(s) for s in itertools.combinations(range(D), k)][:40]
    for s1, s2 in itertools.product(subsets, subsets[:8]):
        a, b = bool_mask(s1, D), bool_mask(s2, D)
        j, h = brute_iou_hamming(a, b)
        assert gm.iou(s1, s2) == pytest.approx(j)
        assert gm.iou(a, b) == pytest.approx(j)
        assert gm.iou(a, s2) == pytest.approx(j)
        assert gm.hamming(s1, s2) == h == gm.hamming(a, b) == gm.hamming(s1, b)
        # ||Φ1 - Φ2||_F² is the bit-flip count
        assert np.linalg.norm(np.diag(a * 1.0) - np.diag(b * 1.0), "fro") ** 2 == pytest.approx(h)
        ov = gm.overlap(gm.mask_matrix(s1, D), gm.mask_matrix(s2, D))
        assert ov == pytest.approx(1 - h / (2 * k))
        assert ov == pytest.approx(2 * j / (1 + j))
        assert gm.overlap(s1, s2) == pytest.approx(ov)


def test_iou_hamming_different_sizes_and_order():
    assert gm.iou([3, 1, 2], [2, 5]) == pytest.approx(1 / 4)
    assert gm.hamming([3, 1, 2], [2, 5]) == 3
    assert gm.iou(np.array([4, 0]), np.array([0, 4])) == 1.0
    assert gm.hamming(np.array([4, 0]), np.array([0, 4]), D=5) == 0


@pytest.mark.parametrize("D,n", [(10, 4), (15, 6), (9, 9)])
def test_mask_overlap_brute_force(D, n):
    Q = gm.random_stiefel(D, n, 3)
    rng = np.random.default_rng(4)
    for k in range(1, n + 1):
        idx = rng.choice(D, size=k, replace=False)
        Qk = Q[:, :k]
        Phi = np.diag(bool_mask(idx, D) * 1.0)
        want = np.trace(Phi @ Qk @ Qk.T) / k  # (1/k) tr(Φ Ψ_k)
        got = gm.mask_overlap(idx, Q)
        assert got == pytest.approx(want, abs=1e-12)
        assert got == pytest.approx(gm.overlap(gm.mask_matrix(idx, D), Qk), abs=1e-12)
        assert gm.mask_overlap(bool_mask(idx, D), Q) == pytest.approx(want, abs=1e-12)
    assert gm.mask_overlap(np.arange(n), np.eye(D)[:, :n]) == pytest.approx(1.0)
    if D >= 2 * n:
        assert gm.mask_overlap(np.arange(n, 2 * n), np.eye(D)[:, :n]) == 0.0


@pytest.mark.parametrize("D,n,k_max", [(12, 5, None), (20, 8, 6), (7, 7, None)])
def test_overlap_curve_equals_mask_overlap(D, n, k_max):
    Q = gm.random_stiefel(D, n, 5)
    order = np.random.default_rng(6).permutation(D)  # full permutation of length D
    curve = gm.overlap_curve(order, Q, k_max)
    m = n if k_max is None else k_max
    assert curve.shape == (m,)
    for k in range(1, m + 1):
        assert curve[k - 1] == pytest.approx(gm.mask_overlap(order[:k], Q), abs=1e-12)
    # a prefix of the order is enough
    np.testing.assert_allclose(gm.overlap_curve(order[:m], Q, k_max), curve)


def test_overlap_curve_perfect_and_chance_alignment():
    D, n = 30, 10
    order = np.random.default_rng(1).permutation(D)
    aligned = gm.mask_matrix(order, D)[:, :n]  # columns = e_{order[j]}
    np.testing.assert_allclose(gm.overlap_curve(order, aligned), 1.0)
    reverse = order[::-1].copy()
    np.testing.assert_allclose(gm.overlap_curve(reverse, aligned), 0.0)


def test_overlap_curve_reads_only_needed_rows():
    """Q is only accessed through one gather of n rows × n columns."""

    class Spy:
        def __init__(self, A):
            self.A, self.shape, self.dtype, self.keys = A, A.shape, A.dtype, []

        def __getitem__(self, key):
            self.keys.append(key)
            return self.A[key]

    D, n = 50, 6
    Q = gm.random_stiefel(D, 8, 2)
    spy = Spy(Q)
    order = np.random.default_rng(3).permutation(D)
    curve = gm.overlap_curve(order, spy, n)
    assert len(spy.keys) == 1
    rows, cols = spy.keys[0]
    assert len(rows) == n and cols == slice(None, n)
    np.testing.assert_allclose(curve, gm.overlap_curve(order, Q, n))


def test_chance_overlap():
    assert gm.chance_overlap(3, 12) == 0.25
    assert gm.chance_overlap(7030, 7030) == 1.0
    np.testing.assert_allclose(gm.chance_overlap(np.arange(1, 5), 8), [0.125, 0.25, 0.375, 0.5])
