"""Certificates by default (issue 15): the probe error estimate, residual norms, and the warnings."""
import warnings

import numpy as np
import pytest

import sketchla as sk
from sketchla import executor

from _decompositions_helpers import Counting
from spectra import exp_decay, poly_decay

RUN = dict(client=False, dtype="float64", progress=False)


def _dense_eig(res):
    V = res.eigenvectors.compute()
    return (V * res.eigenvalues) @ V.T, V


@pytest.mark.parametrize("passes, rank", [(0, None), (0, 4), (2, None), (2, 4)])
def test_seigh_certificate_brackets_the_true_error(passes, rank):
    A, *_ = poly_decay(250, R=4, p=1.0, seed=3, signs=True)
    res = sk.seigh(A, 12, passes=passes, rank=rank, seed=1, n_probes=40, **RUN)
    A_hat, _ = _dense_eig(res)
    E = A - A_hat
    est = res.error
    lo, hi = est.frobenius_interval(0.99)
    assert est.n_probes == 40 and lo <= np.linalg.norm(E) <= hi
    assert est.spectral_bound >= np.linalg.norm(E, 2)
    assert est.approx_frobenius == pytest.approx(np.linalg.norm(res.eigenvalues))


@pytest.mark.parametrize("passes", [0, 2])
def test_ssvd_certificate_brackets_the_true_error(passes):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((200, 150)) * np.arange(1, 151) ** -0.9
    res = sk.ssvd(A, 10, passes=passes, seed=2, n_probes=40, **RUN)
    E = A - (res.U.compute() * res.S) @ res.Vh.compute()
    lo, hi = res.error.frobenius_interval(0.99)
    assert lo <= np.linalg.norm(E) <= hi and res.error.spectral_bound >= np.linalg.norm(E, 2)


def test_certificate_is_on_by_default_recorded_and_can_be_turned_off(tmp_path):
    A, *_ = exp_decay(120, R=3, q=0.3, seed=2, signs=True)
    c = Counting(A)
    store = str(tmp_path / "run")
    res = sk.seigh(c.op(symmetric=True), 6, seed=0, store=store, **RUN)
    assert res.error is not None and res.error.n_probes == 10 and c.columns == 13 + 10
    assert res.timings["certificate"] > 0  # its cost, beside the decomposition's stages
    assert sk.open_result(store).error.frobenius == res.error.frobenius
    # another rank is another approximation: its estimate reuses the stored probe measurement
    top = sk.seigh(c.op(symmetric=True), 6, seed=0, store=store, rank=2, **RUN)
    assert c.columns == 24 and top.error.approx_frobenius == pytest.approx(np.linalg.norm(top.eigenvalues))
    off = sk.seigh(A, 6, seed=0, store=str(tmp_path / "off"), n_probes=0, **RUN)
    assert off.error is None and not any(k.startswith("probe") for k in off.store.group.array_keys())


def test_tail_dominated_sketch_warns_with_the_remedy():
    """A Gaussian 300 × 4000 matrix has a flat spectrum (σ ≈ 80): a single-pass sketch inflates its values
    several-fold; the default certificate says so and names passes / a larger sketch."""
    G = np.random.default_rng(0).standard_normal((300, 4000))
    with pytest.warns(sk.TailDominatedWarning, match=r"passes=1 or 2.*larger sketch") as rec:
        res = sk.ssvd(G, 10, 21, **RUN)
    assert res.S[0] > 300 and res.error.tail_dominated  # truth: 80.2
    assert not any(issubclass(w.category, sk.IllConditionedCoreWarning) for w in rec)
    assert {w.filename for w in rec} == {__file__}  # attributed to the user's call, not to sketchla
    with pytest.warns(sk.TailDominatedWarning, match="residuals=True") as rec:
        sk.ssvd(G, 10, passes=2, **RUN)  # Ritz values are no longer inflated, the tail is still there
    assert {w.filename for w in rec} == {__file__}
    A, *_ = exp_decay(200, R=3, q=0.5, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sk.seigh(A, 10, **RUN)
    assert not res.error.tail_dominated


def test_ill_conditioned_core_warns_naming_the_fix(tmp_path):
    """n_I = n_O = 40: κ(ΥᵀQ) of a square 40 × 40 Gaussian is below 25 with probability ~3e-4."""
    A, *_ = exp_decay(300, R=3, q=0.1, seed=4, signs=True)
    store = str(tmp_path / "run")
    with pytest.warns(sk.IllConditionedCoreWarning, match=r"n_inner=40 is too close to n_outer=40.*2\*n_outer \+ 1"):
        sk.seigh(A, 40, 40, store=store, n_probes=0, **RUN)
    with pytest.warns(sk.IllConditionedCoreWarning):  # the stored result is as unreliable when reopened by the call
        sk.seigh(A, 40, 40, store=store, n_probes=0, **RUN)
    info = sk.open_result(store).store.get_stage("core")
    assert max(info["core_condition"]) > 25
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sk.seigh(A, 40, n_probes=0, **RUN)  # n_inner = 81 by default
    with pytest.warns(sk.IllConditionedCoreWarning, match="Υ_IᵀP"):
        sk.ssvd(A[:, :150], 40, 40, n_probes=0, **RUN)


@pytest.mark.parametrize("passes", [0, 2])
def test_seigh_residual_norms_match_dense_and_bracket_eigenvalues(passes):
    A, eigs, _ = poly_decay(220, R=3, p=1.2, seed=5, signs=True)
    c = Counting(A)
    res = sk.seigh(c.op(symmetric=True), 10, passes=passes, rank=6, seed=3, n_probes=0, residuals=True, **RUN)
    assert c.columns == res.applications + (6 if passes == 0 else 0)  # free after passes: A V is measured
    _, V = _dense_eig(res)
    dense = np.linalg.norm(A @ V - V * res.eigenvalues, axis=0)
    np.testing.assert_allclose(res.residual_norms, dense, rtol=1e-6, atol=1e-12)
    # Weyl: every Ritz value lies within its residual of an eigenvalue of A
    dist = np.min(np.abs(res.eigenvalues[:, None] - eigs[None, :]), axis=1)
    assert np.all(dist <= res.residual_norms + 1e-12)
    assert np.array_equal(sk.open_result(res.store.path, rank=6).residual_norms, res.residual_norms)


def test_ssvd_residual_norms_match_dense():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((160, 110)) * np.arange(1, 111) ** -1.0
    for passes in (0, 1):
        res = sk.ssvd(A, 9, passes=passes, rank=5, seed=1, n_probes=0, residuals=True, **RUN)
        U, Vh = res.U.compute(), res.Vh.compute()
        dense = np.sqrt(np.linalg.norm(A @ Vh.T - U * res.S, axis=0) ** 2
                        + np.linalg.norm(A.T @ U - Vh.T * res.S, axis=0) ** 2)
        np.testing.assert_allclose(res.residual_norms, dense, rtol=1e-6, atol=1e-12)


def test_estimate_error_later_never_starts_a_cluster(tmp_path, monkeypatch):
    """Called after the run with client=None, estimate_error runs on threads (or the default Client):
    the operator is not pickled to new processes, even one built on workers (a RecipeOperator)."""
    import _operators as mops

    def no_cluster(*a, **k):
        raise AssertionError("estimate_error started a cluster")

    monkeypatch.setattr(executor, "_embedded_cluster", no_cluster)
    op = sk.RecipeOperator(mops.sparse_matrix, 80, 80, 3, shape=(80, 80), dtype="float64", has_adjoint=True)
    res = sk.ssvd(mops.sparse_matrix(80, 80, 3), 5, store=str(tmp_path / "r"), n_probes=0, **RUN)
    est = res.estimate_error(op, 6, progress=False)
    assert est.n_probes == 6 and sk.open_result(str(tmp_path / "r")).error.frobenius == est.frobenius
    with pytest.raises(ValueError, match="n_probes"):
        res.estimate_error(op, 0, progress=False)


@pytest.mark.slow
def test_certificate_runs_on_the_decompositions_scheduler(cluster_client):
    """seigh(client=c) measures its probes on c, in the same call (no second cluster)."""
    from distributed import get_task_stream

    A, *_ = exp_decay(150, R=3, q=0.4, seed=7, signs=True)
    with get_task_stream(cluster_client) as ts:
        res = sk.seigh(A, 6, client=cluster_client, dtype="float64", progress=False, n_probes=5, residuals=True)
    keys = {t["key"] if isinstance(t["key"], str) else str(t["key"]) for t in ts.data}
    assert any("measure-probe5" in k for k in keys) and any("measure-A_ritz6" in k for k in keys)
    assert res.error.n_probes == 5 and res.residual_norms.shape == (6,)
