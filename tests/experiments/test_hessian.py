"""Hessian operators (curvlinops) against torch.autograd, exact eigendecomposition against NumPy."""
import pickle

import numpy as np
import pytest
import torch
from torch.func import functional_call

from overlap_experiments import hessian, problems
from overlap_experiments.train import checkpoint_path, train


def _reference_hessian(model, X, y):
    """Dense Hessian of the mean cross-entropy w.r.t. the flat parameters (torch.autograd)."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(flat):
        params = {n: t.reshape(s) for n, t, s in zip(names, flat.split(sizes), shapes)}
        return torch.nn.functional.cross_entropy(functional_call(model, params, (X,)), y)

    return torch.autograd.functional.hessian(loss, flat0).numpy()


def test_exact_hessian_matches_autograd(tiny_model, tiny_sample):
    X, y = tiny_sample
    ref = _reference_hessian(tiny_model, X, y)
    op = hessian.HessianOperator(tiny_model, X, y, dtype="float64", block=7)
    assert op.shape == (39, 39) and op.symmetric
    H = hessian.exact_hessian(op, block=10, progress=False)
    np.testing.assert_allclose(H, ref, rtol=1e-10, atol=1e-12)
    assert np.abs(ref).max() > 1e-2  # a non-trivial Hessian
    assert np.linalg.eigvalsh(ref).min() < -1e-6  # indefinite: not a Gauss-Newton matrix


def test_hvp_operator_matches_dense(tiny_model, tiny_sample):
    X, y = tiny_sample
    ref = _reference_hessian(tiny_model, X, y)
    rng = np.random.default_rng(0)
    V = rng.standard_normal((39, 17))
    op64 = hessian.HessianOperator(tiny_model, X, y, dtype="float64", block=5)
    np.testing.assert_allclose(op64.matmat(V), ref @ V, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(op64.rmatmat(V[:, :3]), ref @ V[:, :3], rtol=1e-10, atol=1e-12)
    op32 = hessian.HessianOperator(tiny_model, X, y, dtype="float32", batch_size=5)  # 3 mini-batches
    out = op32.matmat(V.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref @ V, rtol=1e-4, atol=1e-5 * np.abs(ref @ V).max())
    # pickling ships the recipe state, not the curvlinops object
    op2 = pickle.loads(pickle.dumps(op64))
    np.testing.assert_allclose(op2.matmat(V[:, :2]), ref @ V[:, :2], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="same non-zero number"):
        hessian.HessianOperator(tiny_model, X, y[:3])


def test_exact_eigh_sorted_by_magnitude_matches_numpy(tiny_model, tiny_sample):
    X, y = tiny_sample
    H = _reference_hessian(tiny_model, X, y)
    vals, vecs = hessian.exact_eigh(H, k_max=10, dtype="float64")
    w, V = np.linalg.eigh(H)
    order = np.argsort(-np.abs(w))
    np.testing.assert_allclose(vals, w[order], rtol=1e-10, atol=1e-12)
    assert np.all(np.diff(np.abs(vals)) <= 1e-15) and vecs.shape == (39, 10)
    # eigenvectors: same up to sign (the top eigenvalues are simple here)
    np.testing.assert_allclose(np.abs(np.sum(vecs * V[:, order[:10]], axis=0)), 1.0, atol=1e-8)
    np.testing.assert_allclose(H @ vecs, vecs * vals[:10], atol=1e-10)
    v32, q32 = hessian.exact_eigh(H, k_max=5)  # float32 default
    assert q32.dtype == np.float32
    np.testing.assert_allclose(v32[:5], vals[:5], rtol=1e-4)
    with pytest.raises(ValueError, match="k_max"):
        hessian.exact_eigh(H, k_max=40)
    with pytest.raises(ValueError, match="square"):
        hessian.exact_eigh(H[:5])


@pytest.fixture(scope="module")
def mnist_checkpoint(tmp_path_factory, digits):
    from dataclasses import replace

    d = tmp_path_factory.mktemp("ck")
    prob = replace(problems.get("mnist16"), batch_size=100)
    train(prob, digits, d, steps=5, seed=0, checkpoint_steps=[5], progress=False)
    return checkpoint_path(d, 5)


def test_recipe_operator_builds_the_same_hessian(mnist_checkpoint, digits):
    from sketchla.operators import clear_recipe_cache

    from overlap_experiments.train import load_model

    prob = problems.get("mnist16")
    idx = np.array([0, 3, 10, 11, 50, 99])
    rec = hessian.hessian_recipe(prob, mnist_checkpoint, None, "test", idx)
    assert rec.shape == (7030, 7030) and rec.symmetric and rec.has_adjoint
    direct = hessian.HessianOperator(load_model(prob, mnist_checkpoint), digits.X_test[idx], digits.y_test[idx])
    V = np.random.default_rng(1).standard_normal((7030, 3)).astype(np.float32)
    shipped = pickle.loads(pickle.dumps(rec))  # what a Dask worker receives
    clear_recipe_cache()
    np.testing.assert_allclose(shipped.matmat(V), direct.matmat(V), rtol=1e-5, atol=1e-7)
    # symmetric: <u, H v> = <H u, v>
    Hv = rec.matmat(V)
    assert abs(float(V[:, 0] @ Hv[:, 1]) - float(Hv[:, 0] @ V[:, 1])) < 1e-4 * np.abs(Hv).max()
    # another checkpoint at the same path is detected on the worker
    other = hessian.hessian_recipe(prob, mnist_checkpoint, None, "train", idx)
    assert other.token != rec.token
    with pytest.raises(ValueError, match="differs"):
        hessian.build_hessian_operator("mnist16", str(mnist_checkpoint), None, "test", idx, checkpoint_digest="0" * 64)
    with pytest.raises(ValueError, match="indices"):
        hessian.build_hessian_operator("mnist16", str(mnist_checkpoint), None, "test", [10_000])
    clear_recipe_cache()


def test_time_hvp_is_positive(tiny_model, tiny_sample):
    X, y = tiny_sample
    op = hessian.HessianOperator(tiny_model, X, y, dtype="float64")
    assert 0 < hessian.time_hvp(op, n=4) < 10
