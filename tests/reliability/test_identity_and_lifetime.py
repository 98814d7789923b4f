"""A store answers only for its own operator, and what a result hands out stays valid (issue 16).

* Operator identity: a store made with one operator, reopened with another (``-A``, another
  matrix, a finished or a half-measured run, SEIGH, SSVD, ``measure``, ``estimate_error``), is
  refused with ``StoreMismatchError`` before anything is computed or written; the same operator
  passes, within the stated tolerance; ``operator_id=`` is recorded and is the caller's override.
* Lifetime: the lazy factors of a temporary store (``store=None``) stay valid after the result
  object is dropped, and the directory goes when they do.
"""
import gc
import glob
import operator
import os
import tempfile

import numpy as np
import pytest
import scipy.sparse as sp

import sketchla as sk
from sketchla.measurement import OPERATOR_RTOL, measure
from sketchla.random import TestMatrix
from sketchla.store import RunStore, StoreMismatchError

import _operators as mops

from . import _helpers as h

N = h.N_INNER


def _seigh(op, store, **kw):
    return sk.seigh(op, h.N_OUTER, h.N_INNER, store=str(store), client=kw.pop("client", "sync"), **{**h.RUN, **kw})


def _interrupted(tmp_path):
    """A seigh store of h.A whose measurement stopped after N - 2 chunks."""
    store = tmp_path / "run"
    with pytest.raises(RuntimeError, match="injected failure"):
        _seigh(h.counting_op(tmp_path / "log0", raise_after=N - 2), store)
    assert len(h.done_chunks(store)) == N - 2
    return store


# --------------------------------------------------------------------------- another operator
@pytest.mark.parametrize("other", ["negated", "another matrix", "scaled by 1.05"])
def test_finished_store_refuses_another_operator_untouched(tmp_path, reference, other):
    path = reference[1]
    before = h.snapshot(path)
    B = {"negated": -h.A, "another matrix": h.sym_matrix(seed=4), "scaled by 1.05": 1.05 * h.A}[other]
    log = tmp_path / "log"
    os.makedirs(log)
    with pytest.raises(StoreMismatchError, match=r"the operator differs from the one that measured 'Y' in store "
                                                 r".*applied to column 0 of its test matrix"):
        _seigh(mops.CountingOp(B, str(log)), path)
    assert len(mops.read_calls(str(log))) == 1  # the check: one column, nothing else
    assert h.snapshot(path) == before  # not a byte, not an mtime changed (no lock was taken)
    assert np.array_equal(_seigh(h.A, path).eigenvalues, reference[0])  # the right operator still passes


def test_half_measured_store_refuses_another_operator_before_measuring(tmp_path):
    """The case that mixed two operators in one sketch: a resumed run with another operator."""
    store = _interrupted(tmp_path)
    done, before = h.done_chunks(store), h.snapshot(store)
    log = tmp_path / "log1"
    os.makedirs(log)
    with pytest.raises(StoreMismatchError, match="the operator differs"):
        _seigh(mops.CountingOp(-h.A, str(log)), store)
    assert len(mops.read_calls(str(log))) == 1 and h.done_chunks(store) == done
    assert h.snapshot(store) == before
    res = _seigh(h.counting_op(tmp_path / "log2"), store)  # the same operator resumes
    assert h.calls_to_columns(tmp_path / "log2") == sorted([*(set(range(N)) - done), min(done)])
    ref = sk.seigh(h.A, h.N_OUTER, h.N_INNER, client="sync", **h.RUN)
    assert np.array_equal(res.eigenvalues, ref.eigenvalues)


class _Noisy(sk.LinearOperator):
    """``A X`` times ``1 + noise`` with fresh relative noise each call: an operator whose products are
    reproducible only to ``noise`` (batch-size dependent sums, TF32 on GPUs)."""

    def __init__(self, A, noise, dtype):
        super().__init__(A.shape, dtype)
        self.A, self.noise = sp.csr_array(A), noise

    def _matmat(self, X):
        rng = np.random.default_rng()
        return np.asarray(self.A @ X) * (1 + self.noise * rng.standard_normal((self.shape[0], X.shape[1])))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tolerance_of_the_operator_check(tmp_path, dtype):
    """Products that agree to a tenth of the tolerance pass; ten times the tolerance is refused."""
    rtol = OPERATOR_RTOL[dtype]
    store = tmp_path / "run"
    kw = dict(dtype=dtype, chunk=3)
    _seigh(h.A, store, **kw)
    _seigh(_Noisy(h.A, rtol / 10, dtype), store, **kw)
    with pytest.raises(StoreMismatchError, match=rf"\(tolerance {rtol:g};"):
        _seigh(_Noisy(h.A, rtol * 10, dtype), store, **kw)


def test_operator_id_is_recorded_and_is_the_callers_word(tmp_path):
    store = tmp_path / "run"
    _seigh(h.A, store, operator_id="hessian@step100")
    assert RunStore.open(store, mode="r").get_stage("operator") == {"operator_id": "hessian@step100"}
    with pytest.raises(StoreMismatchError, match=r"operator_id='hessian@step100', not 'hessian@step200'"):
        _seigh(h.A, store, operator_id="hessian@step200")
    log = tmp_path / "log"
    res = _seigh(h.counting_op(log), store, operator_id="hessian@step100")
    assert not os.path.exists(log) or os.listdir(log) == []  # the caller's word: nothing applied
    assert res.eigenvalues.shape == (h.N_OUTER,)
    with pytest.raises(StoreMismatchError, match="the operator differs"):  # without it: the check
        _seigh(-h.A, store)


def test_store_without_a_record_opens_and_takes_an_operator_id(tmp_path, reference):
    """A store made before this check existed (or without operator_id) holds no record: the same
    operator opens it (checked on its measurements), another is refused; an operator_id given later
    is recorded without a check."""
    path = tmp_path / "old"
    assert "operator" not in RunStore.open(reference[1], mode="r").stages()
    _seigh(h.A, path)
    assert "operator" not in RunStore.open(path, mode="r").stages()
    assert np.array_equal(_seigh(h.A, path).eigenvalues, reference[0])
    with pytest.raises(StoreMismatchError):
        _seigh(-h.A, path)
    _seigh(h.A, path, operator_id="A")
    assert RunStore.open(path, mode="r").get_stage("operator") == {"operator_id": "A"}


def test_ssvd_refuses_another_operator(tmp_path):
    R = mops.sparse_matrix(60, 40, seed=1)
    kw = dict(seed=2, client="sync", dtype="float64", chunk=2, progress=False, store=str(tmp_path / "run"))
    ref = sk.ssvd(R, 3, 6, **kw)
    with pytest.raises(StoreMismatchError, match=r"measured 'Y' in store"):
        sk.ssvd(mops.sparse_matrix(60, 40, seed=7), 3, 6, **kw)
    assert np.array_equal(sk.ssvd(R, 3, 6, **kw).S, ref.S)


class _NoForward(sk.LinearOperator):
    """A sparse matrix whose forward products fail: an SSVD store with only ``Y_left`` = Aᵀ Υ measured."""

    rmatmat_implemented = True

    def __init__(self, A):
        super().__init__(A.shape, "float64")
        self.A = sp.csr_array(A)

    def _matmat(self, X):
        raise RuntimeError("injected failure of A X")

    def _rmatmat(self, Y):
        return np.asarray(self.A.T @ Y)


def test_ssvd_store_with_only_the_adjoint_sketch_is_checked_by_the_adjoint(tmp_path):
    R = mops.sparse_matrix(60, 40, seed=1)
    kw = dict(seed=2, client="sync", dtype="float64", chunk=2, progress=False, store=str(tmp_path / "run"))
    with pytest.raises(RuntimeError, match="injected failure of A X"):
        sk.ssvd(_NoForward(R), 3, 6, **kw)
    assert h.done_chunks(kw["store"], "Y") == set() and h.done_chunks(kw["store"], "Y_left") == {0, 1}
    with pytest.raises(StoreMismatchError, match=r"measured 'Y_left' in store"):
        sk.ssvd(_NoForward(2 * R), 3, 6, **kw)
    res = sk.ssvd(R, 3, 6, **kw)
    assert np.array_equal(res.S, sk.ssvd(R, 3, 6, **{**kw, "store": None}).S)


def test_measure_refuses_another_operator_unless_told(tmp_path):
    store = RunStore.open(tmp_path / "run", {"seed": 0})
    om = h.omega()
    measure(h.A, om, store, "Y", chunk=4, client="sync", progress=False)
    before = h.snapshot(store.path)
    with pytest.raises(StoreMismatchError, match=r"check_operator=False to measure"):
        measure(2 * h.A, om, store, "Y", client="sync", progress=False)
    assert h.snapshot(store.path) == before
    B = np.asarray((2 * h.A).todense())
    Y = measure(B, om, store, "Y", client="sync", progress=False, check_operator=False)  # told: reused as is
    np.testing.assert_allclose(Y[:], h.A @ om.toarray(), rtol=1e-12)
    mem = np.random.default_rng(0).standard_normal((h.D, 3))  # an in-memory test matrix is checked too
    measure(h.A, mem, store, "Z", client="sync", progress=False)
    with pytest.raises(StoreMismatchError, match="'Z'"):
        measure(B, mem, store, "Z", client="sync", progress=False)


def test_error_estimate_refuses_another_operator(tmp_path, reference):
    res = _seigh(h.A, tmp_path / "run")
    first = res.estimate_error(h.A, 3, progress=False, client="sync")
    with pytest.raises(StoreMismatchError, match=r"measured 'probe3_s11'"):
        sk.open_result(str(tmp_path / "run")).estimate_error(-h.A, 3, progress=False, client="sync")
    again = sk.open_result(str(tmp_path / "run")).estimate_error(h.A, 3, progress=False, client="sync")
    assert again.frobenius == first.frobenius


@pytest.mark.slow
def test_operator_built_on_workers_is_checked_there(tmp_path, cluster):
    """A RecipeOperator is applied for the check on the run's cluster, where it is built."""
    store = tmp_path / "run"
    A = sk.RecipeOperator(sp.csr_array, h.A, shape=h.A.shape, dtype="float64", symmetric=True)
    minus_A = sk.RecipeOperator(operator.neg, h.A, shape=h.A.shape, dtype="float64", symmetric=True)
    ref = _seigh(A, store, client=cluster)
    with pytest.raises(StoreMismatchError, match="the operator differs"):
        _seigh(minus_A, store, client=cluster)
    assert np.array_equal(_seigh(A, store, client=cluster).eigenvalues, ref.eigenvalues)


# --------------------------------------------------------------------------- lifetime of lazy arrays
def _run_dirs():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "sketchla-run-*")))


def test_eigenvectors_of_a_dropped_result_stay_valid():
    before = _run_dirs()
    res = sk.seigh(h.A, h.N_OUTER, h.N_INNER, client="sync", **h.RUN)
    expect = res.eigenvectors.compute()
    del res
    V = sk.seigh(h.A, h.N_OUTER, h.N_INNER, client="sync", **h.RUN).eigenvectors  # the result is dropped
    gc.collect()
    assert len(_run_dirs() - before) == 1  # V keeps its store
    assert np.array_equal(V.compute(), expect)  # were zeros: Zarr's fill values of a removed store
    np.testing.assert_allclose(V.T.compute() @ V.compute(), np.eye(h.N_OUTER), atol=1e-12)
    del V
    gc.collect()
    assert _run_dirs() - before == set()  # and the directory goes with it


def test_factors_of_a_dropped_ssvd_result_stay_valid():
    R = mops.sparse_matrix(60, 40, seed=1)
    kw = dict(seed=2, client="sync", dtype="float64", chunk=2, progress=False)
    res = sk.ssvd(R, 3, 6, **kw)
    U_ref, Vh_ref, Q_ref = res.U.compute(), res.Vh.compute(), res.Q[:]
    del res
    U = sk.ssvd(R, 3, 6, **kw).U
    Vh = sk.ssvd(R, 3, 6, **kw).Vh
    Q = sk.ssvd(R, 3, 6, **kw).Q  # the Zarr array itself keeps its store too
    gc.collect()
    assert np.array_equal(U.compute(), U_ref) and np.array_equal(Vh.compute(), Vh_ref)
    assert np.array_equal(Q[:], Q_ref)


@pytest.mark.slow
def test_eigenvectors_of_a_dropped_result_computed_on_a_cluster(cluster):
    res = sk.seigh(h.A, h.N_OUTER, h.N_INNER, client="sync", **h.RUN)
    expect = res.eigenvectors.compute()
    del res
    V = sk.seigh(h.A, h.N_OUTER, h.N_INNER, client="sync", **h.RUN).eigenvectors
    gc.collect()
    assert np.array_equal(cluster.compute(V).result(), expect)
