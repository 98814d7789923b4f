"""Adapters of every input kind against a dense reference; recipes; setup; bad input."""
import os
import pickle

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl

import sketchla as sk
from sketchla.operators import (
    CallableOperator, LinearOperator, RecipeOperator, aslinearoperator, clear_recipe_cache,
)

from . import _measure_ops as ops

RNG = np.random.default_rng(0)
A = RNG.standard_normal((7, 5))
X = RNG.standard_normal((5, 3))
Yb = RNG.standard_normal((7, 3))


def _inputs():
    return {
        "numpy": (A, True),
        "numpy-int": (np.arange(35).reshape(7, 5), True),
        "dask": (da.from_array(A, chunks=(3, 2)), True),
        "csr_matrix": (sp.csr_matrix(A), True),
        "coo_array": (sp.coo_array(A), True),
        "scipy-LinearOperator": (spl.aslinearoperator(A), True),
        "scipy-custom-noadjoint": (spl.LinearOperator((7, 5), matvec=lambda v: A @ v, dtype=np.float64), False),
        "scipy-custom-adjoint": (spl.LinearOperator((7, 5), matvec=lambda v: A @ v,
                                                    rmatvec=lambda v: A.T @ v, dtype=np.float64), True),
    }


@pytest.mark.parametrize("kind", list(_inputs()))
def test_adapters_match_dense_reference(kind):
    x, adj = _inputs()[kind]
    dense = np.asarray(x.toarray() if sp.issparse(x) else (x.compute() if kind == "dask" else
                       (A if "scipy" in kind else x)), dtype=np.float64)
    op = aslinearoperator(x)
    assert op.shape == (7, 5) and op.dtype == np.float64
    np.testing.assert_allclose(op.matmat(X), dense @ X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op @ X[:, 0], (dense @ X[:, :1]), rtol=1e-12, atol=1e-12)  # 1-D -> column
    assert op.has_adjoint is adj
    if adj:
        np.testing.assert_allclose(op.rmatmat(Yb), dense.T @ Yb, rtol=1e-12, atol=1e-12)
    else:
        with pytest.raises(TypeError, match="adjoint"):
            op.rmatmat(Yb)


def test_callable_with_and_without_adjoint():
    op = aslinearoperator(lambda Z: A @ Z, shape=(7, 5), rmatmat=lambda Z: A.T @ Z, dtype="float64")
    assert isinstance(op, CallableOperator) and op.has_adjoint
    np.testing.assert_allclose(op.matmat(X), A @ X)
    np.testing.assert_allclose(op.rmatmat(Yb), A.T @ Yb)
    op32 = aslinearoperator(lambda Z: A @ Z, shape=(7, 5))
    assert op32.dtype == np.float32 and not op32.has_adjoint


def test_callable_wrong_output_shape_names_expected_and_got():
    op = aslinearoperator(lambda Z: Z[:4], shape=(7, 5))
    with pytest.raises(ValueError, match=r"returned shape \(4, 3\); expected \(7, 3\)"):
        op.matmat(X)


def test_wrong_input_block_shape():
    op = aslinearoperator(A)
    with pytest.raises(ValueError, match=r"X has shape \(4, 3\); expected \(5, b\)"):
        op.matmat(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"Y has shape"):
        op.rmatmat(np.ones((5, 3)))


def test_duck_typed_object_and_existing_operator():
    class Duck:
        shape = (7, 5)
        dtype = np.float64

        def __init__(self):
            self.setups = 0

        def setup(self):
            self.setups += 1

        def matmat(self, Z):
            return A @ Z

    d = Duck()
    op = aslinearoperator(d)
    np.testing.assert_allclose(op.matmat(X), A @ X)
    op.matmat(X)
    assert d.setups == 1 and not op.has_adjoint
    assert aslinearoperator(op) is op
    sym = aslinearoperator(aslinearoperator(A @ A.T), symmetric=True)
    assert sym.symmetric and sym.has_adjoint


def test_symmetric_declaration():
    S = A @ A.T
    assert not aslinearoperator(S).symmetric  # never assumed
    op = aslinearoperator(S, symmetric=True)
    assert op.symmetric and op.has_adjoint
    np.testing.assert_allclose(op.rmatmat(Yb), S @ Yb)
    f = aslinearoperator(lambda Z: S @ Z, shape=(7, 7), symmetric=True)
    np.testing.assert_allclose(f.rmatmat(Yb), S @ Yb)  # adjoint falls back to matmat
    with pytest.raises(ValueError, match="not symmetric"):
        aslinearoperator(A[:5, :5], symmetric=True)
    with pytest.raises(ValueError, match="not symmetric"):
        aslinearoperator(sp.csr_matrix(A[:5, :5]), symmetric=True)
    with pytest.raises(ValueError, match="not square"):
        aslinearoperator(A, symmetric=True)
    with pytest.raises(ValueError, match="not square"):
        aslinearoperator(lambda Z: Z, shape=(3, 4), symmetric=True)


@pytest.mark.parametrize("bad,kwargs,exc,match", [
    (lambda Z: Z, {}, ValueError, "shape"),
    (lambda Z: Z, {"shape": (0, 3)}, ValueError, "shape"),
    (lambda Z: Z, {"shape": (3, 3), "dtype": "int32"}, ValueError, "dtype"),
    (A.astype(np.complex128), {}, ValueError, "dtype"),
    (A, {"shape": (5, 7)}, ValueError, "shape"),
    (A, {"rmatmat": lambda Z: Z}, ValueError, "rmatmat"),
    (lambda Z: Z, {"shape": (3, 3), "rmatmat": 3}, TypeError, "rmatmat"),
    ("not an operator", {}, TypeError, "cannot make a linear operator"),
    (np.ones(4), {}, ValueError, "2-D"),
])
def test_bad_input(bad, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        aslinearoperator(bad, **kwargs)


def test_lazy_public_names():
    assert sk.aslinearoperator is aslinearoperator and sk.LinearOperator is LinearOperator


def test_setup_runs_once_per_instance_and_pickles_without_state(tmp_path):
    op = ops.SetupCounter(ops.sparse_matrix(6, 4), str(tmp_path))
    for _ in range(3):
        op.matmat(np.ones((4, 2)))
    assert len(os.listdir(tmp_path)) == 1
    op2 = pickle.loads(pickle.dumps(op))  # a new process/instance sets up again
    op2.matmat(np.ones((4, 2)))
    assert len(os.listdir(tmp_path)) == 2


def test_recipe_built_once_per_process_and_ships_cheaply(tmp_path):
    clear_recipe_cache()
    rec = RecipeOperator(ops.build_sparse, 40, 30, 3, str(tmp_path), shape=(40, 30), dtype="float64")
    assert rec.has_adjoint is True  # found out by building once, locally
    ref = ops.sparse_matrix(40, 30, 3).toarray()
    Z = RNG.standard_normal((30, 4))
    for _ in range(3):
        np.testing.assert_allclose(rec.matmat(Z), ref @ Z)
    clone = pickle.loads(pickle.dumps(rec))
    np.testing.assert_allclose(clone.rmatmat(np.ones((40, 2))), ref.T @ np.ones((40, 2)))
    assert len(os.listdir(tmp_path)) == 1  # the clone reuses this process's build
    assert "_built" not in clone.__dict__ and len(pickle.dumps(rec)) < 2000
    # same recipe -> same token; other args -> other token
    assert RecipeOperator(ops.build_sparse, 40, 30, 3, str(tmp_path), shape=(40, 30)).token != \
        RecipeOperator(ops.build_sparse, 40, 30, 4, str(tmp_path), shape=(40, 30)).token
    clear_recipe_cache()


def test_recipe_shape_mismatch_and_bad_factory(tmp_path):
    clear_recipe_cache()
    rec = RecipeOperator(ops.build_sparse, 40, 30, 3, str(tmp_path), shape=(30, 40), has_adjoint=True)
    with pytest.raises(ValueError, match="shape"):
        rec.matmat(np.ones((40, 1)))
    with pytest.raises(TypeError, match="factory"):
        RecipeOperator(3, shape=(2, 2))
    clear_recipe_cache()


def test_recipe_with_callable_factory_result():
    clear_recipe_cache()
    rec = RecipeOperator(_make_callable, 2.0, shape=(5, 5), dtype="float64", symmetric=True)
    np.testing.assert_allclose(rec.matmat(np.ones((5, 2))), 2 * np.ones((5, 2)))
    np.testing.assert_allclose(rec.rmatmat(np.ones((5, 2))), 2 * np.ones((5, 2)))
    clear_recipe_cache()


def _make_callable(scale):
    return lambda Z: scale * Z


@pytest.mark.gpu
def test_cupy_blocks_round_trip():
    import cupy

    for x in (A, cupy.asarray(A), sp.csr_matrix(A)):
        op = aslinearoperator(x)
        out = op.matmat(cupy.asarray(X))
        assert isinstance(out, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(out), A @ X, rtol=1e-12)
        out_np = op.matmat(X)
        assert isinstance(out_np, np.ndarray)


def test_recipe_thread_safe_false_serialises_applications(tmp_path):
    """thread_safe=False: concurrent Dask threads never enter the built operator at once."""
    from sketchla.measure import measure
    from sketchla.random import TestMatrix
    from sketchla.store import RunStore

    rec = RecipeOperator(ops.NonReentrant, 16, shape=(16, 16), dtype="float64", symmetric=True,
                         thread_safe=False)
    om = TestMatrix((16, 12), seed=0, name="omega", dtype="float64")
    st = RunStore.open(str(tmp_path / "run"), {"t": 1})
    Y = measure(rec, om, st, "Y", chunk=1, client="threads", progress=False)
    np.testing.assert_array_equal(Y[...], 2.0 * om.toarray())
    # and the same operator without the lock does get entered concurrently (so the test can fail)
    loose = RecipeOperator(ops.NonReentrant, 16, shape=(16, 16), dtype="float64", symmetric=True, token="loose")
    st2 = RunStore.open(str(tmp_path / "run2"), {"t": 2})
    with pytest.raises(Exception, match="concurrent"):
        with dask.config.set(num_workers=4):
            measure(loose, om, st2, "Y", chunk=1, client="threads", progress=False)
