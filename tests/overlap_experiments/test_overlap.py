"""Overlap curves and baselines against brute force (paper Eq. 3, Fig. 14, §2.2)."""
import itertools

import numpy as np
import pytest

from sketchla import grassmann as gm

from overlap_experiments import overlap as ov


def _haar(D, n, seed):
    return gm.random_stiefel(D, n, seed=seed)


def _brute_overlap(mask, Q, k):
    M = np.zeros((Q.shape[0], len(mask)))
    M[np.asarray(mask), np.arange(len(mask))] = 1.0
    return np.linalg.norm(M.T @ Q[:, :k], "fro") ** 2 / k


def test_magnitude_order():
    theta = np.array([0.1, -3.0, 2.0, -0.1, 0.0, 2.0])
    assert ov.magnitude_order(theta).tolist() == [1, 2, 5, 0, 3, 4]  # ties keep index order
    with pytest.raises(ValueError, match="theta"):
        ov.magnitude_order(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        ov.magnitude_order(np.array([1.0, np.nan]))


def test_overlap_curve_matches_brute_force():
    D, n = 60, 12
    Q = _haar(D, n, 0)
    theta = np.random.default_rng(1).standard_normal(D)
    order = ov.magnitude_order(theta)
    curve = ov.overlap_curve(order, Q)
    ref = [_brute_overlap(order[:k], Q, k) for k in range(1, n + 1)]
    np.testing.assert_allclose(curve, ref, rtol=1e-12, atol=1e-14)
    # a mask aligned with the eigenbasis has overlap 1; chance is k/D
    E = np.eye(D)[:, [4, 7, 1]]
    np.testing.assert_allclose(ov.overlap_curve(np.array([7, 4, 1] + [0] * 5), E), [0, 1, 1], atol=1e-15)
    np.testing.assert_allclose(ov.chance_curve(3, D), [1 / 60, 2 / 60, 3 / 60])


def test_best_mask_curve_is_the_maximum_over_all_masks():
    D, n = 9, 4
    Q = _haar(D, n, 3)
    best = ov.best_mask_curve(Q)
    for k in range(1, n + 1):
        brute = max(_brute_overlap(list(S), Q, k) for S in itertools.combinations(range(D), k))
        assert best[k - 1] == pytest.approx(brute, rel=1e-12)
    # and it bounds every ordering's curve
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(D)
        assert np.all(ov.overlap_curve(perm, Q) <= best + 1e-12)
    with pytest.raises(ValueError, match="k_max"):
        ov.best_mask_curve(Q, 5)


def test_random_masks_follow_chance():
    D, n = 400, 40
    Q = _haar(D, n, 5)
    curves = ov.random_mask_curves(Q, n_masks=200, seed=0)
    assert curves.shape == (200, n)
    k = np.arange(1, n + 1)
    # E[overlap] = k/D (paper App. A.5); the mean of 200 masks is within a few standard errors
    se = curves.std(0) / np.sqrt(200)
    assert np.all(np.abs(curves.mean(0) - k / D) < 5 * se + 1e-3)
    # seeded: the same masks again, other masks for another seed
    np.testing.assert_array_equal(ov.random_mask_curves(Q, 10, 3, seed=0), curves[:3, :10])
    assert not np.allclose(ov.random_mask_curves(Q, 10, 3, seed=1), curves[:3, :10])


def test_kappa_and_metrics():
    v = np.array([3.0, -4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    kap = ov.kappa(v, [0.1, 0.2, 1.0])
    assert kap == {0.1: pytest.approx(16 / 25), 0.2: pytest.approx(1.0), 1.0: pytest.approx(1.0)}
    D = 50
    Q = _haar(D, 10, 2)
    order = np.random.default_rng(0).permutation(D)
    m = ov.mask_metrics(order, Q, 10)
    assert set(m) == set(gm.METRICS)
    assert m["overlap"] == pytest.approx(gm.mask_overlap(order[:10], Q))
    assert all(0 <= x <= 1 for x in m.values())
    assert ov.eigenspace_overlap(Q, Q, 7) == pytest.approx(1.0)
    assert ov.mask_iou(order, order[::-1], 10) == 0.0
    assert ov.k_for(7030, 0.05) == 352 and ov.k_for(7030, 0.005) == 35
    with pytest.raises(ValueError, match="rho"):
        ov.k_for(10, 0)
