"""The synthetic Grassmannian study (paper Alg. 3, Appendix A.4): sampling, reproducibility, statistics."""
import math

import numpy as np
import pytest

from sketchla import grassmann as gm

from overlap_experiments import synthetic as syn

from _synthetic_grids import TINY  # noqa: E402  (a plain name: see conftest.py)


# ----------------------------------------------------------------- end points


@pytest.mark.parametrize("modality", syn.MODALITIES)
def test_identical_spans_give_one(modality):
    d, k = 40, 7
    Q1, _ = syn.sample_pair(3, d, k, modality, 0)
    # the same span, other basis: rotate a dense basis, reorder a mask
    if Q1.ndim == 2:
        Z, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((k, k)))
        Q2 = Q1 @ Z
    else:
        Q2 = gm.mask_matrix(Q1[::-1], d)
    vals = gm.all_metrics(Q1, Q2, normalize=True, check=False)
    for m in syn.METRICS:
        assert vals[m] == pytest.approx(1.0, abs=1e-6), m


def test_full_dimension_cell_is_all_ones():
    # k = d: every pair spans R^d, in every modality
    for mod in syn.MODALITIES:
        block = syn.sample_block(0, 12, 12, mod, 0, 3)
        np.testing.assert_allclose(block, 1.0, atol=1e-6)


def test_orthogonal_spans_give_zero():
    d, k = 30, 6
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((d, d)))
    Q1, Q2 = U[:, :k], U[:, k : 2 * k]
    vals = gm.all_metrics(Q1, Q2, normalize=True)
    for m in syn.METRICS:
        assert vals[m] == pytest.approx(0.0, abs=1e-7), m
    # disjoint masks, and a mask against a basis orthogonal to it
    m1, m2 = np.arange(k), np.arange(k, 2 * k)
    for m, v in gm.all_metrics(m1, m2).items():
        assert v == pytest.approx(0.0, abs=1e-12), m
    Q3 = np.zeros((d, k))
    Q3[2 * k :, :] = np.linalg.qr(rng.standard_normal((d - 2 * k, k)))[0]
    for m, v in gm.all_metrics(Q3, m1).items():
        assert v == pytest.approx(0.0, abs=1e-7), m


def test_k_rule():
    assert syn.k_for(2048, 0.005) == 10
    assert syn.k_for(2048, 0.4) == 819
    assert syn.k_for(16, 0.01) == 1  # max(1, round(0.16))
    assert syn.k_for(128, 1.0) == 128


# ----------------------------------------------------------------- reproducibility


def test_same_seed_same_numbers_whatever_the_batching():
    a = syn.run_study(seed=7, samples=6, grid=TINY, scheduler="sync", samples_per_task=1)
    b = syn.run_study(seed=7, samples=6, grid=TINY, scheduler="threads")  # cost-based batches
    c = syn.run_study(seed=7, samples=6, grid=TINY, scheduler="threads", samples_per_task=4)
    assert a.values.keys() == b.values.keys() == c.values.keys()
    for key in a.values:
        assert a.values[key].shape == (6, len(syn.METRICS))
        np.testing.assert_array_equal(a.values[key], b.values[key])
        np.testing.assert_array_equal(a.values[key], c.values[key])
    d = syn.run_study(seed=8, samples=6, grid=TINY, scheduler="sync")
    key = ("O-O", 64, 26)
    assert not np.array_equal(a.values[key], d.values[key])


def test_sample_is_a_function_of_its_index_only():
    # the first 3 samples of a T=3 run equal the first 3 of a T=6 run
    a = syn.run_study(seed=1, samples=3, grid=TINY, modalities=("O-M",), scheduler="sync")
    b = syn.run_study(seed=1, samples=6, grid=TINY, modalities=("O-M",), scheduler="sync")
    for key in a.values:
        np.testing.assert_array_equal(a.values[key], b.values[key][:3])
    # and a direct recomputation of one sample agrees
    Q1, Q2 = syn.sample_pair(1, 64, 3, "O-M", 2)
    want = gm.all_metrics(Q1, Q2)
    np.testing.assert_allclose(a.values[("O-M", 64, 3)][2], [want[m] for m in syn.METRICS])


@pytest.mark.slow  # starts a distributed client
def test_distributed_client_gives_the_same_numbers():
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        a = syn.run_study(seed=5, samples=4, grid=TINY, modalities=("O-O",), client=client)
    b = syn.run_study(seed=5, samples=4, grid=TINY, modalities=("O-O",), scheduler="sync")
    for key in a.values:
        np.testing.assert_array_equal(a.values[key], b.values[key])


# ----------------------------------------------------------------- statistics


@pytest.mark.slow  # the whole quick grid, T = 20 (~2 s)
def test_quick_grid_overlap_means_equal_rho():
    """E[overlap] = k/D for every modality (Appendix A.5; hypergeometric for M–M)."""
    T = 20
    res = syn.run_study(seed=0, samples=T, grid=syn.QUICK_GRID)
    checked = 0
    for mod in syn.MODALITIES:
        for d, rho in syn.QUICK_GRID.cells():
            x = res.metric(mod, d, rho, "overlap")
            k = syn.k_for(d, rho)
            # standard error; bounded below by the (largest, M–M) hypergeometric one,
            # |m1 ∩ m2| ~ Hypergeom(d, k, k), for cells where all samples agree
            p = k / d
            var_hyper = p * (1 - p) * (d - k) / max(d - 1, 1) / k
            se = max(np.std(x, ddof=1), math.sqrt(var_hyper)) / math.sqrt(T)
            assert abs(x.mean() - p) <= 4.5 * se + 1e-12, (mod, d, rho, x.mean(), p)
            checked += 1
        # at the table dimension the means are close to ρ itself
        for rho in (0.2, 0.4):
            assert res.metric(mod, 256, rho, "overlap").mean() == pytest.approx(rho, rel=0.03)
    assert checked == 3 * len(syn.QUICK_GRID.cells())
    # all normalised metrics lie in [0, 1]
    for v in res.values.values():
        assert np.all(v >= 0.0) and np.all(v <= 1.0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="seed"):
        syn.run_study(seed=-1, grid=TINY)
    with pytest.raises(ValueError, match="samples"):
        syn.run_study(samples=0, grid=TINY)
    with pytest.raises(ValueError, match="modality"):
        syn.run_study(samples=2, grid=TINY, modalities=("O-X",))
    with pytest.raises(ValueError, match="modalities"):
        syn.run_study(samples=2, grid=TINY, modalities=())
    with pytest.raises(ValueError, match="samples_per_task"):
        syn.run_study(samples=2, grid=TINY, samples_per_task=0)
    with pytest.raises(TypeError, match="grid"):
        syn.run_study(samples=2, grid={"d": 3})
    with pytest.raises(ValueError, match="scheduler"):
        syn.run_study(samples=2, grid=TINY, scheduler="bogus")
    with pytest.raises(ValueError, match="dims_vs_d"):
        syn.Grid(dims_vs_d=())
    with pytest.raises(ValueError, match="rhos_vs_rho"):
        syn.Grid(rhos_vs_rho=(0.5, 1.5))
    with pytest.raises(ValueError, match="table_d"):
        syn.Grid(table_d=0)
    res = syn.run_study(samples=2, grid=TINY, modalities=("M-M",), scheduler="sync")
    with pytest.raises(ValueError, match="metric"):
        res.metric("M-M", 64, 0.05, "nope")
