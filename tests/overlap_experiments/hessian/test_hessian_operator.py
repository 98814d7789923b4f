"""HessianOperator against a dense autograd Hessian: products, dtypes, vmapped blocks, devices, pickling."""
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("curvlinops")

from overlap_experiments.hessian import HessianOperator, resolve_device  # noqa: E402


def _tiny():
    """A conv + linear net with D = 3·2·3·3+2 + 2·4·4·3+3 = 56 + 99 = 155 parameters (float64)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.Tanh(),
                                    torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))
        X = torch.randn(6, 3, 8, 8)
        y = torch.tensor([0, 1, 2, 0, 1, 2])
    return model.double(), X.double(), y


@pytest.mark.slow  # a dense Hessian by 7030 products per dtype (~10 s in float64)
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 2e-5)])
def test_vectorize_true_and_false_match_dense_hessian(dtype, rtol, dense_hessian):
    model, X, y = _tiny()
    H = dense_hessian(model, X, y)
    D = H.shape[0]
    assert D == 155
    V = np.random.default_rng(0).standard_normal((D, 7)).astype(dtype)
    ref = H @ V.astype(np.float64)
    scale = np.abs(ref).max()
    outs = {}
    for vec, block in ((True, 3), (True, 16), (False, 3)):
        op = HessianOperator(model, X, y, dtype=dtype, block=block, vectorize=vec, device="cpu")
        R = op.matmat(V)
        assert R.dtype == np.dtype(dtype) and R.shape == (D, 7)
        assert op.n_products == 7
        np.testing.assert_allclose(R, ref, rtol=0, atol=rtol * scale * 10)
        outs[(vec, block)] = R
    # vmapped blocks and one-column products agree with each other to rounding
    np.testing.assert_allclose(outs[(True, 3)], outs[(False, 3)], rtol=0, atol=rtol * scale * 10)
    # a wrong Hessian would be far off: the check above is tight relative to H V itself
    assert np.abs(ref).max() > 1e-3


def test_auto_device_is_cpu_here_and_cuda_without_gpu_raises():
    model, X, y = _tiny()
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert resolve_device("auto") == torch.device("cpu")
    op = HessianOperator(model, X, y, device="auto")
    assert op.device == "cpu"
    with pytest.raises(ValueError, match="CUDA"):
        HessianOperator(model, X, y, device="cuda")
    with pytest.raises(ValueError, match="CUDA"):
        resolve_device("cuda:1")
    with pytest.raises(ValueError, match="torch device"):
        resolve_device("gpu0")
    with pytest.raises(TypeError):
        resolve_device(0)
    with pytest.raises(TypeError, match="vectorize"):
        HessianOperator(model, X, y, vectorize="yes")


def test_pickled_operator_applies_the_same():
    model, X, y = _tiny()
    op = HessianOperator(model, X, y, dtype="float64", block=4, vectorize=False)
    V = np.random.default_rng(1).standard_normal((op.shape[0], 3))
    R = op.matmat(V)
    op2 = pickle.loads(pickle.dumps(op))
    assert op2.vectorize is False and op2.device == "cpu"
    np.testing.assert_allclose(op2.matmat(V), R, rtol=1e-12, atol=1e-14)


def test_hvp_operator_matches_dense(tiny_model, tiny_sample, dense_hessian):
    X, y = tiny_sample
    ref = dense_hessian(tiny_model, X, y)
    rng = np.random.default_rng(0)
    V = rng.standard_normal((39, 17))
    op64 = HessianOperator(tiny_model, X, y, dtype="float64", block=5)
    np.testing.assert_allclose(op64.matmat(V), ref @ V, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(op64.rmatmat(V[:, :3]), ref @ V[:, :3], rtol=1e-10, atol=1e-12)
    op32 = HessianOperator(tiny_model, X, y, dtype="float32", batch_size=5)  # 3 mini-batches
    out = op32.matmat(V.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref @ V, rtol=1e-4, atol=1e-5 * np.abs(ref @ V).max())
    # pickling ships the recipe state, not the curvlinops object
    op2 = pickle.loads(pickle.dumps(op64))
    np.testing.assert_allclose(op2.matmat(V[:, :2]), ref @ V[:, :2], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="same non-zero number"):
        HessianOperator(tiny_model, X, y[:3])
