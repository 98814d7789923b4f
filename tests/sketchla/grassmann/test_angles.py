"""Principal angles and the §4.1 metrics against brute-force definitions."""
import math

import numpy as np
import pytest
import scipy.linalg

from sketchla import grassmann as gm

from _grassmann_helpers import bool_mask, projector

SHAPES = [(6, 1), (7, 3), (10, 4), (12, 6), (9, 9)]


def pair(D, k, seed, k2=None):
    return gm.random_stiefel(D, k, seed), gm.random_stiefel(D, k if k2 is None else k2, seed + 1000)


@pytest.mark.parametrize("D,k", SHAPES)
def test_principal_angles_match_scipy(D, k):
    Q1, Q2 = pair(D, k, 1)
    got = gm.principal_angles(Q1, Q2)
    ref = np.sort(scipy.linalg.subspace_angles(Q1, Q2))
    assert got.shape == (k,)
    assert np.all(np.diff(got) >= 0)
    np.testing.assert_allclose(got, ref, atol=1e-7)


def test_principal_angles_different_k_and_cosines():
    Q1, Q2 = pair(11, 5, 2, k2=3)
    got = gm.principal_angles(Q1, Q2)
    np.testing.assert_allclose(got, np.sort(scipy.linalg.subspace_angles(Q1, Q2)), atol=1e-7)
    c = gm.cosines(Q1, Q2)
    assert np.all(np.diff(c) <= 0) and c.shape == (3,)
    np.testing.assert_allclose(np.cos(got), c, atol=1e-12)


def test_principal_angles_identical_and_orthogonal():
    Q = gm.random_stiefel(10, 4, 3)
    np.testing.assert_allclose(gm.principal_angles(Q, Q), 0.0, atol=1e-7)
    E = np.eye(10)
    np.testing.assert_allclose(gm.principal_angles(E[:, :4], E[:, 4:8]), math.pi / 2, atol=1e-12)
    # clipping: singular values of a product of orthonormal bases never exceed 1
    s = gm.cosines(Q, Q @ scipy.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))[0])
    assert np.all(s <= 1.0) and np.all(s >= 0.0)


@pytest.mark.parametrize("D,k", SHAPES)
def test_metrics_against_brute_force(D, k):
    Q1, Q2 = pair(D, k, 7)
    P1, P2 = projector(Q1), projector(Q2)
    sigma = np.sort(scipy.linalg.subspace_angles(Q1, Q2))

    # a) geodesic
    assert gm.geodesic(Q1, Q2) == pytest.approx(np.linalg.norm(sigma), abs=1e-7)
    # b) chordal: min over orthogonal Z of ||Q1 Z - Q2|| (Procrustes solution)
    Z, _ = scipy.linalg.orthogonal_procrustes(Q1, Q2)
    assert gm.chordal_f(Q1, Q2) == pytest.approx(np.linalg.norm(Q1 @ Z - Q2, "fro"), abs=1e-7)
    assert gm.chordal_2(Q1, Q2) == pytest.approx(np.linalg.norm(Q1 @ Z - Q2, 2), abs=1e-7)
    rng = np.random.default_rng(5)
    for _ in range(20):  # any other rotation is no better
        W = scipy.linalg.qr(rng.standard_normal((k, k)))[0]
        assert np.linalg.norm(Q1 @ W - Q2, "fro") >= gm.chordal_f(Q1, Q2) - 1e-9
        assert np.linalg.norm(Q1 @ W - Q2, 2) >= gm.chordal_2(Q1, Q2) - 1e-9
    # c) projection norms from the D×D projectors
    assert gm.projection_2(Q1, Q2) == pytest.approx(np.linalg.norm(P1 - P2, 2), abs=1e-7)
    assert gm.projection_f(Q1, Q2) == pytest.approx(np.linalg.norm(P1 - P2, "fro") / math.sqrt(2), abs=1e-7)
    # d) Fubini-Study from the determinant
    fs = math.acos(min(1.0, abs(np.linalg.det(Q1.T @ Q2))))
    assert gm.fubini_study(Q1, Q2) == pytest.approx(fs, abs=1e-7)
    # e) overlap = (1/k)||Ψ1 Q2||_F² = (1/k) tr(Ψ1 Ψ2)
    ov = gm.overlap(Q1, Q2)
    assert ov == pytest.approx(np.linalg.norm(P1 @ Q2, "fro") ** 2 / k, abs=1e-12)
    assert ov == pytest.approx(np.trace(P1 @ P2) / k, abs=1e-12)
    # bijection with projection_f (paper §4.1 e)
    assert ov == pytest.approx(1 - gm.projection_f(Q1, Q2) ** 2 / k, abs=1e-10)


def test_metrics_symmetric():
    Q1, Q2 = pair(9, 4, 11)
    for name in gm.METRICS:
        assert gm.normalized(name, Q1, Q2) == pytest.approx(gm.normalized(name, Q2, Q1), abs=1e-10)


def test_normalized_definitions_and_extremes():
    D, k = 12, 4
    Q1, Q2 = pair(D, k, 13)
    raw = {n: getattr(gm, n)(Q1, Q2) for n in gm.METRICS}
    maxd = {
        "geodesic": math.pi / 2 * math.sqrt(k),
        "chordal_2": math.sqrt(2),
        "chordal_f": math.sqrt(2 * k),
        "projection_2": 1.0,
        "projection_f": math.sqrt(k),
        "fubini_study": math.pi / 2,
    }
    for name in gm.METRICS:
        want = raw[name] if name == "overlap" else 1 - raw[name] / maxd[name]
        assert gm.normalized(name, Q1, Q2) == pytest.approx(want, abs=1e-12)
        # identical spans (different bases) -> 1 ; orthogonal spans -> 0
        Z = scipy.linalg.qr(np.random.default_rng(1).standard_normal((k, k)))[0]
        assert gm.normalized(name, Q1, Q1 @ Z) == pytest.approx(1.0, abs=1e-6)
        E = np.eye(D)
        assert gm.normalized(name, E[:, :k], E[:, k : 2 * k]) == pytest.approx(0.0, abs=1e-12)
    assert gm.normalized("projection_f", Q1, Q2) == pytest.approx(1 - math.sqrt(1 - raw["overlap"]), abs=1e-10)
    assert gm.all_metrics(Q1, Q2) == pytest.approx({n: gm.normalized(n, Q1, Q2) for n in gm.METRICS})
    assert gm.all_metrics(Q1, Q2, normalize=False) == pytest.approx(raw)


def test_from_angles_matches_functions():
    Q1, Q2 = pair(8, 3, 17)
    sigma = gm.principal_angles(Q1, Q2)
    for name in gm.METRICS:
        assert gm.from_angles(name, sigma) == pytest.approx(getattr(gm, name)(Q1, Q2), abs=1e-12)


# Table 2 of the paper (Appendix A.4): mean normalised metrics of random O–O pairs at D = 2048.
TABLE2 = {
    0.005: dict(geodesic=0.03711, chordal_2=0.00197, chordal_f=0.02983, projection_2=1e-5,
                projection_f=0.00248, fubini_study=0.0, overlap=0.00495),
    0.05: dict(geodesic=0.11909, chordal_2=0.00048, chordal_f=0.09984, projection_2=0.0,
               projection_f=0.02513, fubini_study=0.0, overlap=0.04962),
    0.4: dict(geodesic=0.36536, chordal_2=0.00026, chordal_f=0.33783, projection_2=0.0,
              projection_f=0.22527, fubini_study=0.0, overlap=0.39980),
}


@pytest.mark.parametrize("rho,samples,tol", [(0.005, 12, 0.004), (0.05, 2, 0.0025), (0.4, 1, 0.002)])
def test_normalized_reproduces_paper_table2(rho, samples, tol):
    D = 2048
    k = max(1, round(rho * D))
    vals = [gm.all_metrics(gm.random_stiefel(D, k, 2 * s), gm.random_stiefel(D, k, 2 * s + 1))
            for s in range(samples)]
    mean = {n: np.mean([v[n] for v in vals]) for n in gm.METRICS}
    for name, want in TABLE2[rho].items():
        if name in ("chordal_2", "projection_2", "fubini_study"):  # collapsing metrics: ≈ 0
            assert 0 <= mean[name] < 0.006, name
        else:
            assert mean[name] == pytest.approx(want, abs=tol), name


def test_masks_as_bases_equal_mask_matrices():
    D, k = 10, 4
    Q = gm.random_stiefel(D, k, 21)
    idx = np.array([7, 1, 4, 9])
    M = gm.mask_matrix(idx, D)
    other = np.array([1, 2, 3, 9])
    for name in gm.METRICS:
        dense = gm.normalized(name, M, Q)
        assert gm.normalized(name, idx, Q) == pytest.approx(dense, abs=1e-12)
        assert gm.normalized(name, Q, bool_mask(idx, D)) == pytest.approx(dense, abs=1e-12)
        mm = gm.normalized(name, M, gm.mask_matrix(other, D))
        assert gm.normalized(name, idx, other) == pytest.approx(mm, abs=1e-12)
        assert gm.normalized(name, bool_mask(idx, D), other) == pytest.approx(mm, abs=1e-12)
    np.testing.assert_allclose(gm.principal_angles(idx, other), [0, 0, np.pi / 2, np.pi / 2])
    assert gm.overlap(idx, other) == 0.5


def test_float32_inputs():
    Q1, Q2 = pair(30, 5, 23)
    for name in gm.METRICS:
        want = gm.normalized(name, Q1, Q2)
        assert gm.normalized(name, Q1.astype(np.float32), Q2.astype(np.float32)) == pytest.approx(want, abs=1e-4)
    # float32 rounding must not trip the orthonormality check
    assert gm.overlap(Q1.astype(np.float32), Q1.astype(np.float32)) == pytest.approx(1.0, abs=1e-5)
