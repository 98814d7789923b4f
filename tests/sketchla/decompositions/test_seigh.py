"""SEIGH (paper Alg. 2) end to end through measurement, TSQR and the core solve."""
import numpy as np
import pytest

import sketchla as sk
from sketchla import grassmann as gm
from sketchla.random import TestMatrix

from _decompositions_helpers import Counting
from spectra import exp_decay, low_rank_plus_noise, poly_decay, tail_energy


def _dense_reference(A, n_O, n_I, seed, kind="gaussian"):
    """Alg. 2 with dense NumPy on the same seeded test matrices."""
    D = A.shape[0]
    Om = TestMatrix((D, n_I), seed=seed, name="omega", kind=kind, dtype="float64").toarray()
    Up = TestMatrix((D, n_I), seed=seed, name="upsilon", kind=kind, dtype="float64").toarray()
    Y = A @ Om
    Q, R = np.linalg.qr(Y[:, :n_O])
    C = np.linalg.pinv(Up.T @ Q) @ (Up.T @ Y) @ np.linalg.pinv(Om.T @ Q).T
    lam, U = np.linalg.eigh(0.5 * (C + C.T))
    idx = np.argsort(-np.abs(lam))
    return lam[idx], Q @ U[:, idx]


@pytest.mark.parametrize("kind", ["gaussian", "rademacher", "signs"])
def test_matches_dense_reference_float64(tmp_path, kind):
    A, *_ = exp_decay(150, R=4, q=0.2, seed=1, signs=True)
    res = sk.seigh(A, 12, 25, seed=7, store=str(tmp_path / "run"), client=False, dtype="float64", chunk=4,
                   progress=False, test_kind=kind)
    lam_ref, V_ref = _dense_reference(A, 12, 25, seed=7, kind=kind)
    np.testing.assert_allclose(res.eigenvalues, lam_ref, rtol=1e-9, atol=1e-12)
    V = res.eigenvectors.compute()
    # same vectors up to sign (eigenvalues here are simple)
    signs = np.sign(np.sum(V * V_ref, axis=0))
    np.testing.assert_allclose(V * signs, V_ref, atol=1e-8)
    np.testing.assert_allclose(V.T @ V, np.eye(12), atol=1e-10)


def test_thin_products_are_one_pass_over_y_and_q(tmp_path, monkeypatch):
    """Issue 18.2: ΥᵀY, ΥᵀQ, ΩᵀQ read each row block of the stored Y and Q once, and draw
    each block of Υ once (Ω once more than the measurement, which drew it first)."""
    from sketchla.linalg import _blocks

    reads, draws = [], []
    real_read, real_block = _blocks._ZarrSlice.read, TestMatrix.block

    def spy_read(self):
        reads.append((self.array.path, self.start))
        return real_read(self)

    def spy_block(self, rows=slice(None), cols=slice(None), xp=None):
        draws.append(self.name)
        return real_block(self, rows, cols, xp)

    monkeypatch.setattr(_blocks._ZarrSlice, "read", spy_read)
    monkeypatch.setattr(TestMatrix, "block", spy_block)
    A, *_ = exp_decay(160, R=4, q=0.5, seed=1, signs=True)
    # full-rank M_O: Q by Cholesky QR, which never reads Q back; no certificate (its probes read Q)
    sk.seigh(A, 8, 17, seed=3, store=str(tmp_path / "run"), client=False, dtype="float64", chunk=17, progress=False,
             n_probes=0)
    assert sorted(s for p, s in reads if p.endswith("Q")) == [0]      # one block of 160 rows, once
    assert sorted(s for p, s in reads if p.endswith("Y")) == [0]
    assert draws.count("upsilon") == 1 and draws.count("omega") == 2  # thin products: one block each


@pytest.mark.parametrize("make", [
    lambda: low_rank_plus_noise(300, R=10, gamma=1e-3, seed=2, signs=True),
    lambda: poly_decay(300, R=10, p=2.0, seed=3, signs=True),
    lambda: exp_decay(300, R=10, q=0.25, seed=4, signs=False),
], ids=["lowrank+noise", "polydecay", "expdecay"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", ["gaussian", "signs"])
def test_accuracy_within_sketching_bounds(make, dtype, kind):
    """Errors within the expectation bound of Tropp et al. (2019, Thm 5.1) up to a factor 4.

    ``E||A − Â||²_F ≤ (1 + k/(s−k−1)) · min_ϱ (1 + ϱ/(k−ϱ−1)) τ²_{ϱ+1}(A)`` with
    ``k = n_O``, ``s = n_I``; eigenvalues then obey Weyl's bound
    ``|λ_i − λ̂_i| ≤ ||A − Â||_2 ≤ ||A − Â||_F`` and the top-R eigenspace the
    Davis–Kahan bound ``||sin Θ||_F ≤ ||A − Â||_F / gap``. The bound is proved
    for Gaussian test matrices; ±1 ("signs") test matrices are held to the same.
    """
    A, eigs, _ = make()
    k, s, R = 30, 61, 10
    res = sk.seigh(A, k, s, seed=11, client=False, dtype=dtype, progress=False, test_kind=kind)
    V = res.eigenvectors.compute().astype(np.float64)
    A_hat = (V * res.eigenvalues) @ V.T
    err2 = np.linalg.norm(A - A_hat) ** 2
    bound = (1 + k / (s - k - 1)) * min((1 + r / (k - r - 1)) * tail_energy(eigs, r + 1) for r in range(k - 1))
    slack = 1e-8 if dtype == "float64" else 1e-8 * np.linalg.norm(A) ** 2 + 1e-9
    assert err2 <= 4 * bound + slack, (err2, bound)

    err = np.sqrt(err2) + (1e-5 * np.linalg.norm(A) if dtype == "float32" else 0)
    true_top = eigs[np.argsort(-np.abs(eigs))][:R]
    # equal magnitudes of opposite sign may come in either order: compare as sorted sets (Weyl)
    np.testing.assert_array_less(np.abs(np.sort(res.eigenvalues[:R]) - np.sort(true_top)), err + 1e-12)

    w, Vt = np.linalg.eigh(A)
    order = np.argsort(-np.abs(w))
    gap = np.abs(w[order[R - 1]]) - np.abs(w[order[R]])
    sin2 = R - R * gm.overlap(Vt[:, order[:R]], V[:, :R])  # ||sin Θ||_F²
    assert np.sqrt(max(sin2, 0.0)) <= 2 * err / gap + 1e-6


def test_uses_exactly_n_inner_applications_and_resumes(tmp_path):
    A, *_ = exp_decay(80, R=3, q=0.5, seed=5, signs=True)
    op = Counting(A)
    store = str(tmp_path / "run")
    res = sk.seigh(sk.aslinearoperator(op, shape=A.shape, dtype="float64"), 6, 13, store=store,
                   client=False, dtype="float64", chunk=5, progress=False)
    assert op.columns == 13 + 10 and res.applications == 13  # n_I applications only, and the default 10 probes
    again = sk.seigh(sk.aslinearoperator(op, shape=A.shape, dtype="float64"), 6, 13, store=store,
                     client=False, dtype="float64", chunk=5, progress=False)
    assert op.columns == 24  # finished, certificate stored: nothing recomputed; one column again (operator check)
    np.testing.assert_array_equal(again.eigenvalues, res.eigenvalues)
    sk.seigh(sk.aslinearoperator(op, shape=A.shape, dtype="float64"), 6, 13, store=store, client=False,
             dtype="float64", chunk=5, progress=False, operator_id="A")
    assert op.columns == 24  # with the caller's operator_id nothing is applied
    reopened = sk.open_result(store)
    np.testing.assert_array_equal(reopened.eigenvalues, res.eigenvalues)
    assert set(res.timings) == {"measure", "qr", "thin_products", "core_solve", "certificate"}
    assert all(v >= 0 for v in res.timings.values()) and reopened.timings == res.timings
    np.testing.assert_allclose(reopened.eigenvectors.compute(), res.eigenvectors.compute())


def test_store_with_other_parameters_is_refused(tmp_path):
    A, *_ = exp_decay(40, seed=0)
    store = str(tmp_path / "run")
    sk.seigh(A, 5, 9, store=store, client=False, progress=False)
    with pytest.raises(ValueError, match="n_outer"):
        sk.seigh(A, 6, 9, store=store, client=False, progress=False)
    np.testing.assert_equal(sk.open_result(store).params["n_outer"], 5)


def test_results_do_not_depend_on_chunking():
    A, *_ = poly_decay(64, R=3, p=1.0, seed=6, signs=True)
    a = sk.seigh(A, 8, 17, seed=3, client=False, dtype="float64", chunk=1, progress=False)
    b = sk.seigh(A, 8, 17, seed=3, client=False, dtype="float64", chunk=17, progress=False)
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-12)


def test_error_estimate_brackets_true_error():
    A, eigs, _ = poly_decay(200, R=5, p=1.0, seed=8, signs=True)
    res = sk.seigh(A, 10, 21, seed=1, client=False, dtype="float64", progress=False, n_probes=30)
    V = res.eigenvectors.compute()
    E = A - (V * res.eigenvalues) @ V.T
    true_f, true_2 = np.linalg.norm(E), np.linalg.norm(E, 2)
    est = res.error
    assert est.n_probes == 30
    assert 0.6 * true_f <= est.frobenius <= 1.6 * true_f
    lo, hi = est.frobenius_interval(0.99)
    assert lo <= true_f <= hi
    assert est.spectral_bound >= true_2
    assert 1 <= est.numerical_rank <= 10
    # the estimate is stored with the run
    assert sk.open_result(res.store.path).error.frobenius == pytest.approx(est.frobenius)


def test_apply_matches_dense_low_rank_product():
    A, *_ = exp_decay(90, R=3, q=0.5, seed=9, signs=True)
    res = sk.seigh(A, 7, 15, client=False, dtype="float64", progress=False)
    X = np.random.default_rng(0).standard_normal((90, 3))
    V = res.eigenvectors.compute()
    np.testing.assert_allclose(res.apply(X).compute(), (V * res.eigenvalues) @ (V.T @ X), atol=1e-10)


@pytest.mark.parametrize("args, match", [
    ((np.ones((5, 6)), 2, 3), "square"),
    ((np.eye(10), 4, 3), "n_outer"),
    ((np.eye(10), 3, 11), "n_inner"),
    ((np.eye(10), 0, 3), "n_outer"),
    ((np.eye(10), 2, -1), "n_inner"),
])
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        sk.seigh(*args, client=False, progress=False)


def test_bad_dtype_and_seed():
    with pytest.raises(ValueError, match="dtype"):
        sk.seigh(np.eye(10), 2, 3, dtype="int32", client=False, progress=False)
    with pytest.raises(ValueError, match="dtype"):
        sk.seigh(np.eye(10), 2, 3, dtype="complex128", client=False, progress=False)
    with pytest.raises(ValueError, match="seed"):
        sk.seigh(np.eye(10), 2, 3, seed=-1, client=False, progress=False)


def test_nan_from_operator_is_reported():
    def bad(X):
        Y = X.copy()
        Y[0, 0] = np.nan
        return Y

    op = sk.aslinearoperator(bad, shape=(12, 12), dtype="float64")
    with pytest.raises(Exception, match="(?i)nan|finite"):
        sk.seigh(op, 2, 4, client=False, dtype="float64", progress=False)


def test_crash_after_measurement_resumes_without_new_applications(tmp_path, monkeypatch):
    """A run that dies in the QR stage keeps its finished measurements."""
    from sketchla.decompositions import _stages  # the QR stage calls its TSQR

    A, *_ = exp_decay(70, R=3, q=0.5, seed=12, signs=True)
    op = Counting(A)
    lin = sk.aslinearoperator(op, shape=A.shape, dtype="float64")
    store = str(tmp_path / "run")

    def dying_tsqr(*args, **kwargs):
        raise RuntimeError("simulated crash in TSQR")

    real_tsqr = _stages.tsqr
    monkeypatch.setattr(_stages, "tsqr", dying_tsqr)
    with pytest.raises(RuntimeError, match="simulated crash"):
        sk.seigh(lin, 5, 11, store=store, client=False, dtype="float64", chunk=3, progress=False, n_probes=0)
    assert op.columns == 11
    with pytest.raises(ValueError, match="not finished"):
        sk.open_result(store)
    monkeypatch.setattr(_stages, "tsqr", real_tsqr)
    res = sk.seigh(lin, 5, 11, store=store, client=False, dtype="float64", chunk=3, progress=False, n_probes=0)
    assert op.columns == 12  # measurements were reused, not repeated (one column again: the operator check)
    lam_ref, _ = _dense_reference(A, 5, 11, seed=0)
    np.testing.assert_allclose(res.eigenvalues, lam_ref, rtol=1e-9)


@pytest.mark.slow
def test_distributed_client_gives_same_result(tmp_path):
    from distributed import Client, LocalCluster

    A, *_ = exp_decay(120, R=4, q=0.3, seed=13, signs=True)
    local = sk.seigh(A, 8, 17, seed=2, client=False, dtype="float64", progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dist = sk.seigh(A, 8, 17, seed=2, store=str(tmp_path / "run"), client=client, dtype="float64",
                        chunk=4, progress=False)
        V = dist.eigenvectors.compute()
    np.testing.assert_allclose(dist.eigenvalues, local.eigenvalues, rtol=1e-10)
    np.testing.assert_allclose(np.abs(V.T @ local.eigenvectors.compute()).diagonal(), 1.0, atol=1e-8)


def test_reopened_result_can_estimate_error(tmp_path):
    A, *_ = exp_decay(60, R=3, q=0.5, seed=14, signs=True)
    store = str(tmp_path / "run")
    sk.seigh(A, 6, 13, store=store, client=False, dtype="float64", progress=False)
    res = sk.open_result(store)
    est = res.estimate_error(A, 8, client=False, progress=False)
    assert sk.open_result(store).error.frobenius == pytest.approx(est.frobenius)
    with pytest.raises(ValueError, match="shape"):
        res.estimate_error(np.eye(5), 2, client=False, progress=False)


@pytest.mark.gpu
def test_cupy_operator_float32():
    import cupy

    A, eigs, _ = exp_decay(256, R=5, q=0.3, seed=15, signs=True)
    res = sk.seigh(cupy.asarray(A, dtype=cupy.float32), 12, 25, client=False, dtype="float32", progress=False)
    host = sk.seigh(A.astype(np.float32), 12, 25, client=False, dtype="float32", progress=False)
    # the same sketch as the NumPy operator's, up to float32 GEMM rounding (cuBLAS vs BLAS)
    np.testing.assert_allclose(res.eigenvalues, host.eigenvalues, rtol=1e-4, atol=1e-5)
    # and as close to the truth as a 12-of-25 sketch of this spectrum gets (1.0e-2 measured on the CPU
    # and on an H200; the float64 sketch has the same error, so it is the sketch's, not the precision's)
    true_top = eigs[np.argsort(-np.abs(eigs))][:5]
    np.testing.assert_allclose(np.sort(res.eigenvalues[:5]), np.sort(true_top), atol=1.5e-2)


@pytest.mark.gpu
@pytest.mark.parametrize("algorithm", ["seigh", "ssvd"])
def test_gpu_linalg_matches_cpu(tmp_path, algorithm):
    """gpu=True: QR and thin products on CuPy blocks give the CPU result (float64)."""
    A, _, _ = exp_decay(300, R=6, q=0.4, seed=3, signs=algorithm == "seigh")
    run = getattr(sk, algorithm)
    cpu = run(A, 10, 21, store=tmp_path / "cpu", client=False, dtype="float64", progress=False)
    gpu = run(A, 10, 21, store=tmp_path / "gpu", client=False, dtype="float64", progress=False, gpu=True)
    key = "eigenvalues" if algorithm == "seigh" else "S"
    np.testing.assert_allclose(getattr(gpu, key), getattr(cpu, key), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["seigh", "ssvd"])
def test_gpu_without_cupy_or_bad_flag_is_refused_before_any_work(tmp_path, algorithm, monkeypatch):
    import sketchla.backend

    monkeypatch.setattr(sketchla.backend, "cupy_available", lambda: False)
    A = np.eye(20)
    run = getattr(sk, algorithm)
    with pytest.raises(ValueError, match="gpu=True needs CuPy"):
        run(A, 2, 5, store=tmp_path / "s", client=False, progress=False, gpu=True)
    with pytest.raises(TypeError, match="gpu must be True or False"):
        run(A, 2, 5, store=tmp_path / "s", client=False, progress=False, gpu="yes")
    assert not (tmp_path / "s").exists()
