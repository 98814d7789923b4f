"""``op.H``: the adjoint as an operator of its own, declared (never guessed) by each adapter."""
import pickle
import warnings

import numpy as np
import pytest
from dask.base import tokenize

import _operators as ops
import sketchla as sk
from sketchla.operators import AdjointOperator, LinearOperator, RecipeOperator, clear_recipe_cache
from sketchla.random import TestMatrix
from sketchla.store import RunStore

RNG = np.random.default_rng(1)
A = RNG.standard_normal((7, 5))
Y = RNG.standard_normal((7, 3))
X = RNG.standard_normal((5, 3))


def test_adjoint_operator_is_the_transpose_and_round_trips():
    op = sk.aslinearoperator(A)
    H = op.H
    assert isinstance(H, AdjointOperator) and H.shape == (5, 7) and H.dtype == op.dtype
    np.testing.assert_allclose(H.matmat(Y), A.T @ Y, rtol=1e-12)
    np.testing.assert_allclose(H @ Y, op.rmatmat(Y), rtol=0)
    np.testing.assert_allclose(H.rmatmat(X), A @ X, rtol=1e-12)
    assert H.H is op and H.has_adjoint
    with pytest.raises(ValueError, match=r"X has shape \(5, 3\); expected \(7, b\)"):
        H.matmat(X)


def test_no_adjoint_is_refused_when_asked_for():
    op = sk.aslinearoperator(lambda Z: A @ Z, shape=(7, 5))
    assert not op.has_adjoint
    with pytest.raises(TypeError, match="no adjoint"):
        op.H
    sym = sk.aslinearoperator(lambda Z: 2.0 * Z, shape=(4, 4), symmetric=True)
    np.testing.assert_allclose(sym.H.matmat(np.ones((4, 2))), 2.0 * np.ones((4, 2)))


class _Undeclared(LinearOperator):
    """Implements _rmatmat but does not declare it: no adjoint (declared, never guessed)."""

    def _matmat(self, X):
        return A @ X

    def _rmatmat(self, Y):
        return A.T @ Y


class _Declared(_Undeclared):
    rmatmat_implemented = True


def test_subclasses_declare_their_adjoint():
    assert not _Undeclared((7, 5), "float64").has_adjoint
    with pytest.raises(TypeError, match="rmatmat_implemented"):
        _Undeclared((7, 5), "float64").H
    op = _Declared((7, 5), "float64")
    np.testing.assert_allclose(op.H.matmat(Y), A.T @ Y)


def test_adjoint_of_a_recipe_is_built_on_workers_and_pickles(tmp_path):
    clear_recipe_cache()
    rec = RecipeOperator(ops.build_sparse, 40, 30, 3, str(tmp_path), shape=(40, 30), dtype="float64",
                         has_adjoint=True)
    H = pickle.loads(pickle.dumps(rec.H))
    assert H.built_on_workers and H.shape == (30, 40)
    ref = ops.sparse_matrix(40, 30, 3).toarray()
    np.testing.assert_allclose(H.matmat(np.ones((40, 2))), ref.T @ np.ones((40, 2)))
    clear_recipe_cache()


def test_tokens_of_an_operator_and_its_adjoint():
    op = sk.aslinearoperator(A)
    assert tokenize(op.H) == tokenize(op.H) == tokenize(sk.aslinearoperator(A.copy()).H)
    assert tokenize(op.H) != tokenize(op)
    assert tokenize(sk.aslinearoperator(2 * A)) != tokenize(op)


def test_measure_takes_the_adjoint_operator_and_records_it(tmp_path):
    S = ops.sparse_matrix(30, 20, seed=2)
    ups = TestMatrix((30, 6), seed=5, name="Upsilon", dtype="float64")
    store = RunStore.open(tmp_path / "run", {"seed": 5})
    W = sk.measure(sk.aslinearoperator(S).H, ups, store, "W", chunk=4, client="sync", progress=False)
    assert W.shape == (20, 6)
    np.testing.assert_allclose(W[:], S.T @ ups.toarray(), rtol=1e-12)
    assert W.attrs["sketchla_measure"]["adjoint"] is True
    assert W.attrs["sketchla_measure"]["op_shape"] == [30, 20]  # the operator's, as before op.H existed
    # the deprecated flag gives the same array, with a warning
    old = RunStore.open(tmp_path / "old", {"seed": 5})
    with pytest.warns(DeprecationWarning, match="op.H"):
        W2 = sk.measure(S, ups, old, "W", adjoint=True, chunk=4, client="sync", progress=False)
    assert np.array_equal(W2[:], W[:]) and dict(W2.attrs) == dict(W.attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # resuming with op.H accepts the store made with the flag
        sk.measure(sk.aslinearoperator(S).H, ups, old, "W", client="sync", progress=False)
