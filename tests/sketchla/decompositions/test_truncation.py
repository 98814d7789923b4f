"""Fixed-rank truncation (rank=r) and the size rules (issue 15), against dense NumPy references."""
import warnings

import numpy as np
import pytest

import sketchla as sk

from spectra import exp_decay, low_rank_plus_noise, poly_decay

RUN = dict(client=False, dtype="float64", progress=False, n_probes=0)


def _dense(res):
    V = res.eigenvectors.compute()
    return (V * res.eigenvalues) @ V.T


def test_rank_is_the_top_of_the_same_stored_sketch(tmp_path):
    """rank=r keeps the r pairs of largest |λ| of the core: the best rank-r part of Â = Q C Qᵀ."""
    A, *_ = poly_decay(200, R=3, p=1.0, seed=1, signs=True)
    store = str(tmp_path / "run")
    full = sk.seigh(A, 20, 41, seed=2, store=store, **RUN)
    top = sk.seigh(A, 20, 41, seed=2, store=store, rank=5, **RUN)  # same run, reopened
    assert top.rank == 5 and top.eigenvalues.shape == (5,) and top.eigenvectors.shape == (200, 5)
    np.testing.assert_array_equal(top.eigenvalues, full.eigenvalues[:5])
    A_hat = _dense(full)
    lam, U = np.linalg.eigh(A_hat)
    order = np.argsort(-np.abs(lam))[:5]
    best5 = (U[:, order] * lam[order]) @ U[:, order].T
    np.testing.assert_allclose(_dense(top), best5, atol=1e-10)
    np.testing.assert_array_equal(sk.open_result(store, rank=5).eigenvalues, top.eigenvalues)
    with pytest.raises(ValueError, match="rank"):
        sk.open_result(store, rank=21)


def test_ssvd_rank_is_the_top_of_the_same_sketch():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((150, 100)) * np.arange(1, 101) ** -0.8
    full = sk.ssvd(A, 15, seed=4, **RUN)
    top = sk.ssvd(A, 15, seed=4, rank=4, **RUN)
    np.testing.assert_array_equal(top.S, full.S[:4])
    np.testing.assert_allclose(top.U.compute(), full.U.compute()[:, :4], atol=1e-12)
    np.testing.assert_allclose(top.Vh.compute(), full.Vh.compute()[:4], atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_truncation_beats_untruncated_at_the_same_sketch(seed):
    """Tropp et al. (2017 §5, 2019 §5): where the tail is heavy, the trailing pairs of a sketch are
    mostly noise, and its best rank-r part is nearer A than the whole sketch (LowRankMedNoise, r = 10)."""
    A, eigs, _ = low_rank_plus_noise(300, R=10, gamma=1e-1, seed=seed, signs=True)
    full = sk.seigh(A, 41, 83, seed=seed, **RUN)
    trunc = sk.seigh(A, 41, 83, seed=seed, rank=10, **RUN)
    err_full, err_trunc = np.linalg.norm(A - _dense(full)), np.linalg.norm(A - _dense(trunc))
    best = np.sqrt(np.sum(np.sort(np.abs(eigs))[::-1][10:] ** 2))  # ||A − [[A]]_10||_F
    assert err_trunc < err_full and err_trunc <= 1.6 * best, (err_trunc, err_full, best)


def test_rank_alone_sizes_by_the_rules():
    A, *_ = exp_decay(500, R=3, q=0.2, seed=2)
    res = sk.seigh(A, rank=6, **RUN)
    assert (res.params["n_outer"], res.params["n_inner"]) == (25, 51)  # 4r + 1, 2 n_O + 1 (Tropp et al. 2019)
    assert res.eigenvalues.shape == (6,)
    res = sk.seigh(A, rank=6, passes=2, **RUN)
    assert (res.params["n_outer"], res.params["n_inner"], res.params["passes"]) == (16, None, 2)  # r + max(r, 10)
    res = sk.seigh(A, rank=30, passes=1, **RUN)
    assert res.params["n_outer"] == 60  # r + r
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # capped to fit the operator, with room for n_I = 2 n_O + 1
        small = sk.seigh(A[:20, :20], rank=6, **RUN)
    assert (small.params["n_outer"], small.params["n_inner"]) == (9, 19)
    assert sk.seigh(A, 7, **RUN).params["n_inner"] == 15  # n_inner defaults to 2 n_O + 1
    assert sk.ssvd(A[:, :300], 7, **RUN).params["n_inner"] == 15
