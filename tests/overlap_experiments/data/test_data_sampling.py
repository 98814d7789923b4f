"""Class-balanced Hessian samples (paper §6.1, Table 1)."""
import numpy as np
import pytest

from overlap_experiments.data import balanced_sample


def test_per_class_sample_is_balanced_sorted_and_seeded():
    y = np.repeat(np.arange(10), 30)
    idx = balanced_sample(y, 50, 10, seed=0, stream=(7,))
    assert idx.size == 50 and np.all(np.diff(idx) > 0)
    assert np.bincount(y[idx]).tolist() == [5] * 10
    assert np.array_equal(idx, balanced_sample(y, 50, 10, seed=0, stream=(7,)))
    assert not np.array_equal(idx, balanced_sample(y, 50, 10, seed=1, stream=(7,)))
    assert not np.array_equal(idx, balanced_sample(y, 50, 10, seed=0, stream=(7, 10)))  # another problem's stream
    with pytest.raises(ValueError, match="class 3"):
        balanced_sample(np.where(y == 3, 4, y), 50, 10, seed=0, stream=(7,))
    with pytest.raises(ValueError, match="n=0"):
        balanced_sample(y, 0, 10, seed=0, stream=(7,))


def test_per_class_draw_is_the_one_of_the_16x16_mnist_runs():
    """With N a multiple of the classes, sample c's indices are ``rng.choice`` of class c's, in class order."""
    y = np.random.default_rng(3).integers(0, 10, 400)
    rng = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(7,)))
    want = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), size=4, replace=False) for c in range(10)]))
    np.testing.assert_array_equal(balanced_sample(y, 40, 10, seed=5, stream=(7,)), want)


def test_remainder_goes_to_distinct_classes():
    y = np.repeat(np.arange(5), 4)
    idx = balanced_sample(y, 12, 5, seed=3, stream=(7, 5))
    counts = np.bincount(y[idx], minlength=5)
    assert idx.size == 12 == len(set(idx.tolist())) and counts.min() == 2 and counts.max() == 3
    assert np.array_equal(idx, balanced_sample(y, 12, 5, seed=3, stream=(7, 5)))
    assert not np.array_equal(idx, balanced_sample(y, 12, 5, seed=4, stream=(7, 5)))
    with pytest.raises(ValueError, match="class 4"):
        balanced_sample(np.r_[y[:-4], 0, 0, 0, 0], 10, 5, seed=0, stream=(7, 5))
    with pytest.raises(ValueError, match="needs at least"):
        balanced_sample(y, 21, 5, seed=0, stream=(7, 5))
