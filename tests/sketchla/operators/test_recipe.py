"""Operators built once per worker process from a recipe; setup once per instance."""
import os
import pickle

import dask
import numpy as np
import pytest

import _operators as ops
from sketchla import measure
from sketchla.operators import RecipeOperator, clear_recipe_cache
from sketchla.random import TestMatrix
from sketchla.store import RunStore

RNG = np.random.default_rng(0)


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


def test_recipe_thread_safe_false_serialises_applications(tmp_path):
    """thread_safe=False: concurrent Dask threads never enter the built operator at once."""
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
