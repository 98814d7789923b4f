"""SEIGH's inner sketch accumulated in the measurement tasks (issue 18.4) against the stored one and dense references."""
import os
import time

import numpy as np
import pytest

import sketchla as sk
from sketchla.decompositions import _inner
from sketchla.store import StoreMismatchError

from _decompositions_helpers import Counting
from spectra import exp_decay, poly_decay

RUN = dict(client=False, progress=False, n_probes=0)


def _bytes(path):
    return sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(path) for f in fs)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_accumulated_equals_stored_and_dense(tmp_path, dtype):
    A, lam, _ = poly_decay(300, R=5, p=2.0, seed=3, signs=True)
    stored = sk.seigh(A, 20, 41, seed=4, store=str(tmp_path / "s"), dtype=dtype, inner_sketch="store", **RUN)
    acc = sk.seigh(A, 20, 41, seed=4, store=str(tmp_path / "a"), dtype=dtype, inner_sketch="accumulate", **RUN)
    # the same M_I up to rounding: float64 sums agree to 1e-12, float32 GEMMs to float32 rounding
    np.testing.assert_allclose(acc.eigenvalues, stored.eigenvalues, rtol=1e-10 if dtype == "float64" else 2e-4,
                               atol=1e-12 if dtype == "float64" else 1e-5)
    # and the sketch is accurate against the exact spectrum (top 5: the flat part of poly_decay)
    top = lam[np.argsort(-np.abs(lam))][:5]
    np.testing.assert_allclose(np.sort(acc.eigenvalues[:5]), np.sort(top), rtol=1e-2)  # its sketching error
    V, W = acc.eigenvectors.compute(), stored.eigenvectors.compute()
    np.testing.assert_allclose(np.abs(np.sum(V[:, :5] * W[:, :5], axis=0)), 1.0, atol=1e-6 if dtype == "float64" else 2e-3)


def test_store_holds_only_the_outer_sketch_and_the_small_projection(tmp_path):
    A, *_ = exp_decay(2000, R=4, q=0.3, seed=1, signs=True)
    acc = sk.seigh(A, 16, 33, store=str(tmp_path / "a"), dtype="float64", inner_sketch="accumulate", **RUN)
    stored = sk.seigh(A, 16, 33, store=str(tmp_path / "s"), dtype="float64", inner_sketch="store", **RUN)
    run = sk.store.RunStore.open(str(tmp_path / "a"), mode="r")
    assert run["Y"].shape == (2000, 16) and run["UY"].shape == (33, 17)
    assert run.get_stage("inner_sketch")["mode"] == "accumulate"
    # the inner-only columns (D · 17 float64 = 272 kB) are gone; what remains is ~2·D·n_O + O(n_I²)
    saved = _bytes(tmp_path / "s") - _bytes(tmp_path / "a")
    assert saved >= 2000 * 17 * 8 - 33 * 17 * 8 - 20_000
    assert _bytes(tmp_path / "a") <= 2 * 2000 * 16 * 8 + 33 * 33 * 8 + 60_000  # + metadata, records
    np.testing.assert_allclose(acc.eigenvalues, stored.eigenvalues, rtol=1e-10, atol=1e-13)


def test_accumulated_is_bitwise_independent_of_chunking_and_workers(tmp_path):
    A, *_ = exp_decay(500, R=4, q=0.4, seed=2, signs=True)
    results = [sk.seigh(A, 10, 37, seed=1, chunk=c, client=cl, inner_sketch="accumulate", progress=False,
                        n_probes=0, store=str(tmp_path / f"{c}{cl}")).eigenvalues
               for c, cl in ((3, "threads"), (16, "threads"), (5, "sync"))]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_interrupted_accumulation_resumes_with_the_missing_columns_only(tmp_path):
    A, *_ = exp_decay(300, R=4, q=0.4, seed=7, signs=True)
    op = Counting(A)
    lin = sk.aslinearoperator(op, shape=A.shape, dtype="float64")
    store = str(tmp_path / "run")

    class Dies:
        """The operator, failing once it has been applied to ``limit`` columns."""

        def __init__(self, limit):
            self.limit, self.shape, self.dtype = limit, A.shape, np.dtype("float64")

        def matmat(self, X):
            if op.columns + X.shape[1] > self.limit:
                raise RuntimeError("simulated crash")
            return op.matmat(X)

    with pytest.raises(RuntimeError, match="simulated crash"):  # dies inside UY (columns 12..24)
        sk.seigh(sk.aslinearoperator(Dies(18).matmat, shape=A.shape, dtype="float64"), 12, 25, store=store,
                 chunk=3, dtype="float64", inner_sketch="accumulate", **{**RUN, "client": "sync"})
    done = op.columns
    assert 12 <= done <= 18
    res = sk.seigh(lin, 12, 25, store=store, chunk=3, dtype="float64", **RUN)  # auto: resumes the recorded mode
    assert op.columns == 25 + 1  # the missing columns and one operator check, nothing twice
    fresh = sk.seigh(A, 12, 25, chunk=3, dtype="float64", inner_sketch="accumulate", **RUN)
    np.testing.assert_array_equal(res.eigenvalues, fresh.eigenvalues)


def test_recorded_mode_is_kept_and_a_conflicting_one_refused(tmp_path):
    A, *_ = exp_decay(200, R=3, q=0.4, seed=3, signs=True)
    store = str(tmp_path / "run")
    run = sk.store.RunStore.open(store, {
        "algorithm": "seigh", "shape": [200, 200], "n_outer": 8, "n_inner": 17, "seed": 0, "dtype": "float64",
        "test_kind": "gaussian"})
    run.set_stage(_inner.STAGE, {"mode": "accumulate", "why": "test"})
    del run
    with pytest.raises(StoreMismatchError, match="inner_sketch='store' cannot resume"):
        sk.seigh(A, 8, 17, store=store, dtype="float64", inner_sketch="store", **RUN)
    res = sk.seigh(A, 8, 17, store=store, dtype="float64", **RUN)
    assert sk.store.RunStore.open(store, mode="r")["Y"].shape == (200, 8)
    assert res.eigenvalues.shape == (8,)


def test_auto_rule(tmp_path, monkeypatch):
    A, *_ = exp_decay(400, R=3, q=0.4, seed=4, signs=True)

    def slow(X):
        time.sleep(0.05 * X.shape[1])
        return A @ X

    small = sk.seigh(A, 8, 17, store=str(tmp_path / "small"), dtype="float64", **RUN)
    assert small.store.get_stage("inner_sketch")["mode"] == "store"  # small: nothing timed
    monkeypatch.setattr(_inner, "AUTO_MIN_BYTES", 0)
    cheap = sk.seigh(A, 8, 17, store=str(tmp_path / "cheap"), dtype="float64", chunk=4, **RUN)
    rec = cheap.store.get_stage("inner_sketch")
    assert rec["seconds_per_column"] > 0 and rec["seconds_projection_per_task"] > 0
    assert rec["mode"] == ("accumulate" if rec["seconds_projection_per_task"] <= 0.1 * 4 * rec["seconds_per_column"]
                           else "store")
    costly = sk.seigh(sk.aslinearoperator(slow, shape=A.shape, dtype="float64"), 8, 17, chunk=4,
                      store=str(tmp_path / "costly"), dtype="float64", **RUN)
    assert costly.store.get_stage("inner_sketch")["mode"] == "accumulate"
    monkeypatch.setattr(_inner, "AUTO_MIN_BYTES", 2**40)
    monkeypatch.setattr(_inner, "_free_bytes", lambda path: 1000)  # Y and Q would not fit
    full = sk.seigh(A, 8, 17, store=str(tmp_path / "full"), dtype="float64", **RUN)
    assert full.store.get_stage("inner_sketch")["mode"] == "accumulate"
    assert "are free" in full.store.get_stage("inner_sketch")["why"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(inner_sketch="disk"), "inner_sketch='disk' must be one of"),
    (dict(inner_sketch="accumulate", passes=1), "applies to single-pass runs"),
])
def test_bad_inner_sketch_is_refused_before_any_work(tmp_path, kwargs, match):
    A, *_ = exp_decay(50, R=3, q=0.4, seed=4)
    with pytest.raises(ValueError, match=match):
        sk.seigh(A, 6, store=str(tmp_path / "run"), **RUN, **kwargs)
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- overwrite_sketch: Q replaces M_O
def test_q_replaces_the_outer_sketch(tmp_path):
    A, *_ = exp_decay(2000, R=4, q=0.3, seed=1, signs=True)
    acc = sk.seigh(A, 16, 33, store=str(tmp_path / "a"), dtype="float64", inner_sketch="accumulate", **RUN)
    over = sk.seigh(A, 16, 33, store=str(tmp_path / "o"), dtype="float64", overwrite_sketch=True, **RUN)
    np.testing.assert_allclose(over.eigenvalues, acc.eigenvalues, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(over.eigenvectors.compute(), acc.eigenvectors.compute(), atol=1e-12)
    run = over.store
    assert "Y" not in run and run.get_stage("Q")["replaced"] == "Y" and not run.done_keys("Y")
    # the store: Q (D·n_O) + UY and the small factors — the formula of issue 18.4, plus metadata
    assert _bytes(tmp_path / "o") <= 2000 * 16 * 8 + 2 * 33 * 33 * 8 + 3 * 16 * 16 * 8 + 60_000
    assert _bytes(tmp_path / "o") < _bytes(tmp_path / "a") - 2000 * 16 * 8 * 0.9
    with pytest.raises(StoreMismatchError, match="measured 'UY'"):  # the operator is still checked, on UY
        sk.seigh(-A, 16, 33, store=str(tmp_path / "o"), dtype="float64", **RUN)


def test_interrupted_replacement_resumes_from_the_saved_factor(tmp_path, monkeypatch):
    from sketchla.decompositions import _replace

    D = 70_000  # three row bands of 2**15 (the sketch's Zarr row chunks)
    rng = np.random.default_rng(6)
    V = np.linalg.qr(rng.standard_normal((D, 8)))[0]
    lam, diag = 2.0 ** -np.arange(8), 1e-3 * rng.random(D)

    class LowRankPlusDiagonal:
        columns = 0

        def matmat(self, X):
            self.columns += X.shape[1]
            return V @ (lam[:, None] * (V.T @ X)) + diag[:, None] * X

    op = LowRankPlusDiagonal()
    lin = sk.aslinearoperator(op.matmat, shape=(D, D), dtype="float64")
    A = lin
    store = str(tmp_path / "run")
    real = _replace._replace_band

    def dies_at_band_2(store_path, source, name, n, i, *args):
        if i == 2:
            raise RuntimeError("simulated crash")
        return real(store_path, source, name, n, i, *args)

    monkeypatch.setattr(_replace, "_replace_band", dies_at_band_2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        sk.seigh(lin, 12, 25, store=store, chunk=4, dtype="float64", overwrite_sketch=True,
                 **{**RUN, "client": "sync"})
    run = sk.store.RunStore.open(store, mode="r")
    assert run.get_stage("Q_factor") is not None and run.get_stage("Q") is None
    done = run.done_keys("Q")  # the bands that ran before band 2 (in the scheduler's order)
    assert "2" not in done and not run.done_keys("Y")
    for band in ("0", "1", "2"):  # a recorded band's source files are gone; the others are still there
        folder = os.path.join(store, "Y", "c", band)
        assert bool(os.path.isdir(folder) and os.listdir(folder)) == (band not in done)
    assert op.columns == 25
    monkeypatch.setattr(_replace, "_replace_band", real)
    res = sk.seigh(lin, 12, 25, store=store, chunk=4, dtype="float64", overwrite_sketch=True, **RUN)
    assert op.columns == 26  # nothing measured again (one column: the operator check, on UY)
    fresh = sk.seigh(A, 12, 25, chunk=4, dtype="float64", overwrite_sketch=True, **RUN)
    np.testing.assert_array_equal(res.eigenvalues, fresh.eigenvalues)
    np.testing.assert_array_equal(res.eigenvectors.compute(), fresh.eigenvectors.compute())


def test_sketch_cholesky_qr_refuses_keeps_its_own_q(tmp_path, caplog, monkeypatch):
    """Where Cholesky QR refuses M_O (numerically rank deficient), nothing is deleted: Q is its own array."""
    from sketchla.decompositions import _replace

    def refuses(*args, **kwargs):
        raise ValueError("A is numerically rank deficient (simulated)")

    monkeypatch.setattr(_replace, "cholesky_factor", refuses)
    A, *_ = exp_decay(400, R=4, q=0.4, seed=8, signs=True)
    caplog.set_level("WARNING", logger="sketchla.decompositions.seigh")
    res = sk.seigh(A, 10, 21, store=str(tmp_path / "run"), dtype="float64", overwrite_sketch=True, **RUN)
    assert any("written next to the sketch" in r.getMessage() for r in caplog.records)
    assert "Y" in res.store and res.store.done_keys("Y") and res.store.get_stage("Q_factor") is None
    ref = sk.seigh(A, 10, 21, dtype="float64", inner_sketch="accumulate", **RUN)
    np.testing.assert_allclose(res.eigenvalues, ref.eigenvalues, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(overwrite_sketch=True, inner_sketch="store"), ValueError, "overwrite_sketch=True keeps the inner"),
    (dict(overwrite_sketch=True, passes=1), ValueError, "overwrite_sketch=True applies to single-pass"),
    (dict(overwrite_sketch="yes"), TypeError, "overwrite_sketch must be True or False"),
])
def test_bad_overwrite_is_refused_before_any_work(tmp_path, kwargs, error, match):
    A, *_ = exp_decay(50, R=3, q=0.4, seed=4)
    with pytest.raises(error, match=match):
        sk.seigh(A, 6, store=str(tmp_path / "run"), **RUN, **kwargs)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kwargs", [dict(inner_sketch="accumulate"), dict(overwrite_sketch=True)])
def test_no_inner_only_columns(tmp_path, kwargs):
    """n_inner == n_outer: nothing to accumulate; the result is the stored mode's."""
    A, *_ = exp_decay(300, R=3, q=0.4, seed=9, signs=True)
    with pytest.warns(sk.IllConditionedCoreWarning):
        got = sk.seigh(A, 12, 12, store=str(tmp_path / "a"), dtype="float64", **RUN, **kwargs)
    with pytest.warns(sk.IllConditionedCoreWarning):
        ref = sk.seigh(A, 12, 12, dtype="float64", inner_sketch="store", **RUN)
    np.testing.assert_allclose(got.eigenvalues, ref.eigenvalues, rtol=1e-8, atol=1e-12)


# --------------------------------------------------------------------------- SSVD (paper Alg. 1)
def test_ssvd_accumulated_equals_stored_and_dense(tmp_path):
    rng = np.random.default_rng(11)
    U, _ = np.linalg.qr(rng.standard_normal((900, 60)))
    V, _ = np.linalg.qr(rng.standard_normal((400, 60)))
    s = 2.0 ** -np.arange(60.0)
    A = (U * s) @ V.T
    stored = sk.ssvd(A, 12, 25, store=str(tmp_path / "s"), dtype="float64", inner_sketch="store", **RUN)
    accs = [sk.ssvd(A, 12, 25, store=str(tmp_path / f"a{c}"), dtype="float64", chunk=c, inner_sketch="accumulate",
                    **RUN) for c in (3, 8)]
    np.testing.assert_array_equal(accs[0].S, accs[1].S)  # bitwise, any chunking
    np.testing.assert_allclose(accs[0].S, stored.S, rtol=1e-10)
    np.testing.assert_allclose(accs[0].S[:6], s[:6], rtol=1e-2)  # within the single-pass sketch's own error
    run = accs[0].store
    assert run["Y"].shape == (900, 12) and run["UY"].shape == (25, 25)
    assert _bytes(tmp_path / "s") - _bytes(tmp_path / "a3") >= 0.9 * 900 * 25 * 8


def test_ssvd_bad_inner_sketch(tmp_path):
    A = np.random.default_rng(0).standard_normal((60, 40))
    with pytest.raises(ValueError, match="applies to single-pass runs"):
        sk.ssvd(A, 5, passes=1, inner_sketch="store", store=str(tmp_path / "r"), **RUN)
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- on a GPU (issue 17's kit runs these)
@pytest.mark.gpu
@pytest.mark.parametrize("kwargs", [dict(inner_sketch="accumulate"), dict(overwrite_sketch=True)])
def test_gpu_accumulated_matches_cpu(tmp_path, kwargs):
    """A CuPy operator and gpu=True (QR, thin products on CuPy blocks) give the CPU result (float64); the
    projection runs on the host blocks the measurement hands back."""
    import cupy

    A, *_ = exp_decay(300, R=6, q=0.4, seed=3, signs=True)
    cpu = sk.seigh(A, 10, 21, store=str(tmp_path / "cpu"), dtype="float64", **RUN, **kwargs)
    gpu = sk.seigh(cupy.asarray(A), 10, 21, store=str(tmp_path / "gpu"), dtype="float64", gpu=True, **RUN, **kwargs)
    np.testing.assert_allclose(gpu.eigenvalues, cpu.eigenvalues, rtol=1e-10, atol=1e-12)


@pytest.mark.gpu
def test_gpu_project_columns_matches_numpy():
    import cupy

    from sketchla.projection import project_columns
    from sketchla.random import TestMatrix

    L = TestMatrix((70_000, 300), seed=1, name="upsilon", dtype="float64")
    Y = np.random.default_rng(0).standard_normal((70_000, 7))
    got = project_columns(L, cupy.asarray(Y), 5)
    assert isinstance(got, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(got), project_columns(L, Y, 5), rtol=1e-12, atol=1e-9)
