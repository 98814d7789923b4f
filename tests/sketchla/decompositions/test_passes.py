"""Multi-pass SEIGH / SSVD (issue 15) against dense NumPy references and the theory of their rates."""
import numpy as np
import pytest

import sketchla as sk
from sketchla.random import TestMatrix

from spectra import exp_decay, poly_decay

RUN = dict(client=False, dtype="float64", progress=False, n_probes=0)


def _omega(D, b, seed):
    return TestMatrix((D, b), seed=seed, name="omega", dtype="float64").toarray()


def _extend(V, Y):
    """orth(Y ⊥ V): the last columns of a Householder QR of [V, Y] (``_passes`` module docstring)."""
    if V is None:
        return np.linalg.qr(Y)[0]
    Q, _ = np.linalg.qr(np.hstack([V, Y]))
    return Q[:, V.shape[1]:]


def dense_seigh(A, b, q, seed, method="krylov"):
    """The passes and the Rayleigh–Ritz step of ``_passes.seigh_passes``, in dense NumPy."""
    Y = A @ _omega(A.shape[0], b, seed)
    Vs, Ys = [], []
    for i in range(q):
        prev = np.hstack(Vs) if (method == "krylov" and Vs) else None
        Vs.append(_extend(prev, Y))
        Y = A @ Vs[-1]
        Ys.append(Y)
    V, AV = (np.hstack(Vs), np.hstack(Ys)) if method == "krylov" else (Vs[-1], Ys[-1])
    T = V.T @ AV
    lam, U = np.linalg.eigh(0.5 * (T + T.T))
    order = np.argsort(-np.abs(lam), kind="stable")[:b]
    return lam[order], V @ U[:, order]


def dense_ssvd(A, b, q, seed, method="krylov"):
    """``_passes.ssvd_passes`` in dense NumPy: A V V* with V from the passes."""
    Y = A @ _omega(A.shape[1], b, seed)
    Vs, Ys = [], []
    for i in range(q):
        Z = A.T @ np.linalg.qr(Y)[0]
        prev = np.hstack(Vs) if (method == "krylov" and Vs) else None
        Vs.append(_extend(prev, Z))
        Y = A @ Vs[-1]
        Ys.append(Y)
    V, AV = (np.hstack(Vs), np.hstack(Ys)) if method == "krylov" else (Vs[-1], Ys[-1])
    Ul, S, Wh = np.linalg.svd(AV, full_matrices=False)
    return Ul[:, :b], S[:b], (V @ Wh[:b].T).T


def _same_vectors(V, V_ref, atol):
    """Columns equal up to sign."""
    signs = np.sign(np.sum(V * V_ref, axis=0))
    np.testing.assert_allclose(V * signs, V_ref, atol=atol)


@pytest.mark.parametrize("method", ["krylov", "subspace"])
@pytest.mark.parametrize("q", [1, 2, 3])
def test_seigh_passes_match_dense_reference(method, q):
    A, *_ = exp_decay(160, R=1, q=0.15, seed=1, signs=True)  # no ties in |λ|: one order, one vector each
    res = sk.seigh(A, 9, passes=q, method=method, seed=5, chunk=4, **RUN)
    lam, V = dense_seigh(A, 9, q, seed=5, method=method)
    np.testing.assert_allclose(res.eigenvalues, lam, rtol=1e-9, atol=1e-12)
    _same_vectors(res.eigenvectors.compute(), V, 1e-7)
    assert res.applications == (q + 1) * 9 and res.passes == q


@pytest.mark.parametrize("method", ["krylov", "subspace"])
@pytest.mark.parametrize("q", [1, 2])
def test_ssvd_passes_match_dense_reference(method, q):
    rng = np.random.default_rng(3)
    A = (rng.standard_normal((140, 90)) * np.arange(1, 91) ** -0.7) @ np.linalg.qr(rng.standard_normal((90, 90)))[0]
    res = sk.ssvd(A, 8, passes=q, method=method, seed=2, chunk=3, **RUN)
    U, S, Vh = dense_ssvd(A, 8, q, seed=2, method=method)
    np.testing.assert_allclose(res.S, S, rtol=1e-9)
    _same_vectors(res.U.compute(), U, 1e-7)
    _same_vectors(res.Vh.compute().T, Vh.T, 1e-7)
    assert res.applications == (2 * q + 1) * 8


def test_subspace_iteration_error_falls_at_the_gap_rate():
    """Subspace iteration with block ``b``: ``tan θ_k`` shrinks by ``ρ = |λ_{b+1}| / |λ_k|`` per pass (Halko,
    Martinsson & Tropp 2011 §4.5, Saad 2011 Thm 5.2), so the k-th Ritz value error by ``ρ²`` (or
    faster while the eigenvalues between k and b converge). Three spectra that differ in the gap:
    the measured rate per pass is at most ``ρ²`` and within a small factor of it, ordered like ``ρ``."""
    D, b, k = 300, 6, 3
    V, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((D, D)))
    rates = []
    for gap in (0.2, 0.5, 0.7):  # |λ_{b+1}| / |λ_k|
        lam = np.r_[1.0 - 0.01 * np.arange(k), np.linspace(0.9, gap / 0.98 + 0.05, b - k),
                    gap * 0.98 * 0.7 ** np.arange(D - b)]
        A = (V * lam) @ V.T
        errs = [abs(sk.seigh(A, b, passes=q, method="subspace", seed=1, **RUN).eigenvalues[k - 1] - lam[k - 1])
                for q in (1, 2, 3, 4, 5)]
        rho2 = (lam[b] / lam[k - 1]) ** 2
        rate = (errs[4] / errs[1]) ** (1 / 3)  # mean rate over passes 2..5
        assert rho2 / 5 <= rate <= 1.2 * rho2, (gap, errs, rate, rho2)
        assert all(errs[q] <= 2 * errs[1] * rho2 ** (q - 1) for q in range(2, 5)), (gap, errs)
        rates.append(rate)
    assert rates[0] < rates[1] < rates[2]


def test_krylov_ritz_values_are_never_worse_than_subspace_iteration():
    """Same Ω: the Krylov space span(AΩ, …, A^qΩ) contains span(A^qΩ), so its Ritz values on each side of
    the spectrum are at least as close (Courant–Fischer), and never beyond the true eigenvalues."""
    A, eigs, _ = poly_decay(250, R=3, p=0.8, seed=4, signs=True)
    top = np.sort(eigs)
    for q in (2, 3):
        kr = sk.seigh(A, 10, passes=q, method="krylov", seed=7, **RUN).eigenvalues
        su = sk.seigh(A, 10, passes=q, method="subspace", seed=7, **RUN).eigenvalues
        for side in (1, -1):
            k_side, s_side = np.sort(side * kr[side * kr > 0])[::-1], np.sort(side * su[side * su > 0])[::-1]
            true = np.sort(side * top[side * top > 0])[::-1]
            m = min(k_side.size, s_side.size, 3)
            assert np.all(k_side[:m] >= s_side[:m] - 1e-12) and np.all(k_side[:m] <= true[:m] + 1e-12)
        err_k = np.max(np.abs(np.sort(kr[:4]) - np.sort(eigs[np.argsort(-np.abs(eigs))][:4])))
        err_s = np.max(np.abs(np.sort(su[:4]) - np.sort(eigs[np.argsort(-np.abs(eigs))][:4])))
        assert err_k <= err_s + 1e-12


def test_more_passes_more_accuracy_single_pass_unchanged(tmp_path):
    """q = 0 is the single-pass algorithm (same store layout and parameters as before passes
    existed); each further pass lowers the eigenvalue error on a decaying spectrum."""
    A, eigs, _ = poly_decay(300, R=4, p=1.0, seed=2, signs=True)
    true = np.sort(eigs[np.argsort(-np.abs(eigs))][:6])
    errs = []
    for q in range(4):
        res = sk.seigh(A, 16, passes=q, seed=3, store=str(tmp_path / f"q{q}"), **RUN)
        errs.append(np.max(np.abs(np.sort(res.eigenvalues[:6]) - true)))
    assert errs[0] > errs[1] > errs[2] > errs[3] and errs[3] < 1e-2 * errs[0], errs
    single = sk.open_result(str(tmp_path / "q0"))
    assert "passes" not in single.params and single.params["n_inner"] == 33 and single.passes == 0
    assert sorted(single.store.group.array_keys()) == ["Q", "Y", "core_U", "eigenvalues"]


def test_multipass_bases_are_stored_in_measurement_chunks(tmp_path):
    """A pass reads its basis column chunk by column chunk: the bases are stored in the plan's chunk."""
    A, *_ = exp_decay(120, R=3, q=0.3, seed=6, signs=True)
    res = sk.seigh(A, 10, passes=3, chunk=4, seed=1, store=str(tmp_path / "r"), **RUN)
    g = res.store.group
    for name in ("V0", "V1", "V2", "Y0", "Y1", "Y2", "Y3", "Q"):
        assert g[name].chunks[1] == 4, name
    V = np.hstack([g[f"V{i}"][:] for i in range(3)])
    np.testing.assert_allclose(V.T @ V, np.eye(30), atol=1e-12)  # one orthonormal Krylov basis
    np.testing.assert_allclose(g["Y2"][:], A @ g["V1"][:], rtol=1e-12, atol=1e-12)


def test_seigh_passes_float32_accuracy():
    A, eigs, _ = poly_decay(400, R=5, p=1.5, seed=8, signs=True)
    res = sk.seigh(A.astype(np.float32), 12, passes=3, seed=0, client=False, progress=False, n_probes=0)
    true = np.sort(eigs[np.argsort(-np.abs(eigs))][:5])
    np.testing.assert_allclose(np.sort(res.eigenvalues[:5]), true, rtol=2e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("algorithm", ["seigh", "ssvd"])
def test_gpu_passes_match_cpu(tmp_path, algorithm):
    """gpu=True: the passes' TSQRs (the lazy Krylov extension too), Gram and Ritz vectors on CuPy blocks
    give the CPU result (float64)."""
    A, *_ = exp_decay(300, R=1, q=0.2, seed=3, signs=algorithm == "seigh")
    run = getattr(sk, algorithm)
    cpu = run(A, 10, passes=2, store=tmp_path / "cpu", **RUN)
    gpu = run(A, 10, passes=2, store=tmp_path / "gpu", gpu=True, **RUN)
    key = "eigenvalues" if algorithm == "seigh" else "S"
    np.testing.assert_allclose(getattr(gpu, key), getattr(cpu, key), rtol=1e-10, atol=1e-12)
    vec = (lambda r: r.eigenvectors.compute()) if algorithm == "seigh" else (lambda r: r.U.compute())
    _same_vectors(vec(gpu), vec(cpu), 1e-8)
