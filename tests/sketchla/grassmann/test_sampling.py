"""Samplers and the chance baseline E[overlap] = k/D (paper Appendix A.5)."""
import itertools

import numpy as np
import pytest
import scipy.stats

from sketchla import grassmann as gm


def var_overlap_haar(D, k):
    """Var of overlap when one side is Haar-uniform: Var tr(ΨP)/k², Var tr(ΨP) = 2k²(D−k)²/(D²(D−1)(D+2))."""
    return 2.0 * (D - k) ** 2 / (D**2 * (D - 1) * (D + 2))


def var_overlap_masks(D, k):
    """M–M: |m1 ∩ m2| is hypergeometric(D, k, k)."""
    return (k / D) * (1 - k / D) * (D - k) / (D - 1) / k


def draw(kind, D, k, rng):
    return gm.random_stiefel(D, k, rng) if kind == "O" else gm.random_mask(D, k, rng)


@pytest.mark.parametrize("D,k", [(20, 5), (12, 8)])
@pytest.mark.parametrize("pair", ["OO", "OM", "MM"])
def test_mean_overlap_of_random_pairs_is_k_over_D(pair, D, k):
    """Mean over N pairs within 5 standard errors of k/D (exact variance known).

    With N = 2000 the 5σ band is ±0.006 (O–O, O–M) / ±0.019 (M–M) around
    k/D = 0.25 resp. 0.667; e.g. (k/D)² = 0.0625 / 0.444 would be far outside.
    """
    N = 2000
    rng = np.random.default_rng([D, k, ["OO", "OM", "MM"].index(pair)])
    vals = np.array([gm.overlap(draw(pair[0], D, k, rng), draw(pair[1], D, k, rng)) for _ in range(N)])
    var = var_overlap_masks(D, k) if pair == "MM" else var_overlap_haar(D, k)
    se = np.sqrt(var / N)
    assert abs(vals.mean() - gm.chance_overlap(k, D)) < 5 * se
    # the spread agrees with theory too (a non-uniform sampler would change it)
    assert vals.var(ddof=1) == pytest.approx(var, rel=0.2)


def test_random_stiefel_orthonormal_reproducible_dtype():
    Q = gm.random_stiefel(9, 4, 3)
    assert Q.shape == (9, 4) and Q.dtype == np.float64
    np.testing.assert_allclose(Q.T @ Q, np.eye(4), atol=1e-12)
    np.testing.assert_array_equal(Q, gm.random_stiefel(9, 4, 3))
    assert not np.allclose(Q, gm.random_stiefel(9, 4, 4))
    rng = np.random.default_rng(0)
    assert not np.allclose(gm.random_stiefel(9, 4, rng), gm.random_stiefel(9, 4, rng))
    Q32 = gm.random_stiefel(9, 4, 3, dtype="float32")
    assert Q32.dtype == np.float32
    gm.check_orthonormal(Q32)


def test_random_stiefel_is_haar():
    """Haar: E[Q_00] = 0 (fails without the sign fix, where Q_00 < 0 always) and E[QQᵀ] = (k/D) I (Eq. 16)."""
    D, k, N = 6, 3, 3000
    rng = np.random.default_rng(7)
    Qs = np.array([gm.random_stiefel(D, k, rng) for _ in range(N)])
    first = Qs[:, 0, 0]
    assert abs(first.mean()) < 5 * np.sqrt(1 / D / N)
    assert abs(np.mean(first > 0) - 0.5) < 5 * np.sqrt(0.25 / N)
    assert abs(np.mean(np.diagonal(Qs[:, :k, :], axis1=1, axis2=2) > 0) - 0.5) < 5 * np.sqrt(0.25 / (N * k))
    mean_proj = np.einsum("nij,nkj->ik", Qs, Qs) / N
    np.testing.assert_allclose(mean_proj, (k / D) * np.eye(D), atol=0.03)


def test_random_mask_uniform_over_subsets():
    D, k, N = 5, 2, 5000
    rng = np.random.default_rng(11)
    subsets = {s: i for i, s in enumerate(itertools.combinations(range(D), k))}
    counts = np.zeros(len(subsets))
    for _ in range(N):
        m = gm.random_mask(D, k, rng)
        assert m.dtype == np.int64 and np.all(np.diff(m) > 0)
        counts[subsets[tuple(m)]] += 1
    assert scipy.stats.chisquare(counts).pvalue > 1e-4
    np.testing.assert_array_equal(gm.random_mask(100, 10, 5), gm.random_mask(100, 10, 5))


def test_mask_matrix():
    M = gm.mask_matrix(np.array([4, 0, 2]), 6)
    assert M.shape == (6, 3)
    np.testing.assert_array_equal(M[:, 0], np.eye(6)[4])
    np.testing.assert_array_equal(M[:, 1], np.eye(6)[0])
    np.testing.assert_allclose(M.T @ M, np.eye(3))
    b = np.zeros(6, bool)
    b[[4, 0, 2]] = True
    np.testing.assert_array_equal(gm.mask_matrix(b, 6), np.eye(6)[:, [0, 2, 4]])
    assert gm.mask_matrix([1], 3, dtype="float32").dtype == np.float32
