"""Every bad-input path raises ValueError naming the offending argument."""
import numpy as np
import pytest

from sketchla import grassmann as gm

Q = gm.random_stiefel(8, 3, 0)
Q2 = gm.random_stiefel(8, 3, 1)
ALL_PAIR_FUNCS = [gm.principal_angles, gm.cosines, gm.overlap, gm.geodesic, gm.chordal_2, gm.chordal_f,
                  gm.projection_2, gm.projection_f, gm.fubini_study, gm.all_metrics]


def raises(match):
    return pytest.raises(ValueError, match=match)


@pytest.mark.parametrize("func", ALL_PAIR_FUNCS)
def test_pair_functions_validate_shapes(func):
    with raises("Q1 must be a 2-D"):
        func(np.zeros((8, 3, 1)), Q2)
    with raises("Q2 has k=0"):
        func(Q, np.zeros((8, 0)))
    with raises(r"Q1 has shape \(3, 8\): k=8 > D=3"):
        func(np.zeros((3, 8)), Q2)
    with raises("Q2.dtype"):
        func(Q, np.ones((8, 3), dtype=np.int32) * 0 + np.eye(8, 3, dtype=np.int32))
    with raises("Q1 must be a NumPy"):
        func([[1.0, 0.0], [0.0, 1.0]], Q2)
    with raises("Q2 is 1-D with dtype float64"):
        func(Q, np.ones(8))
    with raises("Q2 lives in dimension D=9 but Q1 in D=8"):
        func(Q, gm.random_stiefel(9, 3, 2))


@pytest.mark.parametrize("func", ALL_PAIR_FUNCS)
def test_pair_functions_check_orthonormality(func):
    with raises("Q1 does not have orthonormal columns"):
        func(2.0 * Q, Q2)
    with raises("Q2 does not have orthonormal columns"):
        func(Q, Q2 + 1e-3)
    with raises("Q1 does not have orthonormal columns"):
        func(2.0 * Q, np.array([0, 1, 2]))  # O–M pair checks the dense side too
    func(Q, Q2 + 1e-3, check=False)  # skipped on request
    func(Q, Q2 + 1e-3, tol=1e-2)  # or tolerated
    with raises("tol=-1"):
        func(Q, Q2, tol=-1)
    with raises("tol=nan"):
        func(Q, Q2, tol=float("nan"))


@pytest.mark.parametrize("func", [f for f in ALL_PAIR_FUNCS if f not in (gm.principal_angles, gm.cosines)])
def test_metrics_need_equal_k(func):
    with raises("Q2 has k=2 columns/entries but Q1 has k=3"):
        func(Q, gm.random_stiefel(8, 2, 5))
    with raises("Q2 has k=2 columns/entries but Q1 has k=3"):
        func(Q, np.array([1, 2]))


def test_masks_as_bases_validated():
    with raises("Q2 is a boolean mask of length 7 but D=8|Q2 lives in dimension D=7 but Q1 in D=8"):
        gm.overlap(Q, np.ones(7, bool))
    with raises("Q2 contains index 8 out of range for D=8"):
        gm.overlap(Q, np.array([0, 1, 8]))
    with raises("Q1 contains duplicate index 1"):
        gm.overlap(np.array([1, 1, 2]), Q)
    with raises("Q1 contains negative index"):
        gm.overlap(np.array([-1, 1, 2]), np.array([0, 1, 2]))
    with raises("Q2 selects no entries"):
        gm.principal_angles(Q, np.zeros(8, bool))
    with raises("Q2 lives in dimension D=9 but Q1 in D=8"):
        gm.overlap(np.ones(8, bool), np.ones(9, bool))
    with raises("Q1 contains index 6 out of range for D=5"):
        gm.overlap(np.array([0, 6]), np.array([True, True, False, False, False]))


def test_normalized_and_from_angles_names():
    with raises("name='hausdorff' is not a known metric"):
        gm.normalized("hausdorff", Q, Q2)
    with raises("name='foo'"):
        gm.from_angles("foo", [0.1])
    with raises("sigma must be a non-empty 1-D"):
        gm.from_angles("geodesic", [])
    with raises("sigma must hold angles"):
        gm.from_angles("geodesic", [2.0])


def test_iou_hamming_validation():
    for f in (gm.iou, gm.hamming):
        with raises("m2 is a boolean mask of length 5 but m1 has length 6"):
            f(np.ones(6, bool), np.ones(5, bool))
        with raises("m2 contains index 6 out of range for D=6"):
            f(np.ones(6, bool), np.array([6]))
        with raises("m1 contains index 9 out of range for D=6"):
            f(np.array([9]), np.ones(6, bool))
        with raises("m1 contains duplicate index 2"):
            f([2, 2], [1])
        with raises("m2 is empty"):
            f([2], np.array([], dtype=np.int64))
        with raises("m1 selects no entries"):
            f(np.zeros(4, bool), [1])
        with raises("m1 must be a boolean mask or an integer index array, got dtype float64"):
            f(np.array([1.0, 2.0]), [1])
        with raises("m2 must be a 1-D"):
            f([1], np.ones((2, 2), bool))
        with raises("m1 is a boolean mask of length 6 but D=7"):
            f(np.ones(6, bool), [1], D=7)
        with raises("m2 contains index 7 out of range for D=7"):
            f([1], [7], D=7)
        with raises("D=0 must be >= 1"):
            f([1], [2], D=0)


def test_mask_overlap_validation():
    with raises("indices selects k=4 entries but Q has only n=3 columns"):
        gm.mask_overlap([0, 1, 2, 3], Q)
    with raises("indices contains duplicate index 0"):
        gm.mask_overlap([0, 0], Q)
    with raises("indices contains index 8 out of range for D=8"):
        gm.mask_overlap([8], Q)
    with raises("indices is a boolean mask of length 7 but D=8"):
        gm.mask_overlap(np.ones(7, bool), Q)
    with raises("indices selects no entries"):
        gm.mask_overlap(np.zeros(8, bool), Q)
    with raises("Q must be a 2-D"):
        gm.mask_overlap([0], np.ones(8))
    with raises("Q cannot have orthonormal columns"):
        gm.mask_overlap([0, 1], 3.0 * Q)
    assert gm.mask_overlap([0, 1], 3.0 * Q, check=False) == pytest.approx(9 * gm.mask_overlap([0, 1], Q))
    bad = Q.copy()
    bad[1, 0] = np.nan
    with raises("Q contains NaN or Inf"):
        gm.mask_overlap([0, 1], bad)


def test_overlap_curve_validation():
    order = np.arange(8)
    with raises("k_max=4 exceeds the number of columns of Q"):
        gm.overlap_curve(order, Q, 4)
    with raises("k_max=0 must be >= 1"):
        gm.overlap_curve(order, Q, 0)
    with raises("k_max=2.0 must be an integer"):
        gm.overlap_curve(order, Q, 2.0)
    with raises("order has 2 entries but k_max=3"):
        gm.overlap_curve(order[:2], Q)
    with raises("order must be an integer index array ranking the rows"):
        gm.overlap_curve(np.ones(8, bool), Q)
    with raises("order must be an integer index array ranking the rows"):
        gm.overlap_curve(order.astype(float), Q)
    with raises("order must be a 1-D"):
        gm.overlap_curve(order.reshape(2, 4), Q)
    with raises("order contains duplicate index 1"):
        gm.overlap_curve([1, 1, 2, 3], Q)
    with raises("order contains index 8 out of range"):
        gm.overlap_curve([8, 1, 2], Q)
    with raises("order contains negative index"):
        gm.overlap_curve([-1, 1, 2], Q)
    with raises("Q cannot have orthonormal columns"):
        gm.overlap_curve(order, 2.0 * Q)
    gm.overlap_curve([5, 1, 2, 5], Q)  # duplicates beyond k_max are never used


def test_chance_overlap_validation():
    with raises("k=0 must be >= 1"):
        gm.chance_overlap(0, 5)
    with raises("k=6 must be <= D=5"):
        gm.chance_overlap(6, 5)
    with raises("k=2.5 must be an integer"):
        gm.chance_overlap(2.5, 5)
    with raises("D=0 must be >= 1"):
        gm.chance_overlap(1, 0)
    with raises("D=5.0 must be an integer"):
        gm.chance_overlap(1, 5.0)
    with raises("k must satisfy 1 <= k <= D=5"):
        gm.chance_overlap(np.array([1, 6]), 5)
    with raises("must be an integer or a non-empty integer array"):
        gm.chance_overlap(np.array([], dtype=int), 5)
    with raises("must be an integer or a non-empty integer array"):
        gm.chance_overlap(True, 5)


def test_sampling_validation():
    with raises("k=4 must be <= D=3"):
        gm.random_stiefel(3, 4)
    with raises("k=0 must be >= 1"):
        gm.random_mask(3, 0)
    with raises("D=-2 must be >= 1"):
        gm.random_mask(-2, 1)
    with raises("seed=1.5"):
        gm.random_stiefel(3, 2, 1.5)
    with raises("seed=-1 must be >= 0"):
        gm.random_mask(3, 2, -1)
    with raises("seed=True"):
        gm.random_mask(3, 2, True)
    with raises("dtype=float16"):
        gm.random_stiefel(3, 2, dtype="float16")
    with raises("indices is a boolean mask of length 3 but D=4"):
        gm.mask_matrix(np.ones(3, bool), 4)
    with raises("indices contains index 4 out of range for D=4"):
        gm.mask_matrix([4], 4)
    with raises("D=2.0 must be an integer"):
        gm.mask_matrix([0], 2.0)


def test_check_orthonormal():
    gm.check_orthonormal(Q)
    with raises("basis does not have orthonormal columns"):
        gm.check_orthonormal(Q + 0.01, name="basis")
    gm.check_orthonormal(Q + 1e-4, tol=1e-3)
    with raises("tol=-0.5"):
        gm.check_orthonormal(Q, tol=-0.5)
