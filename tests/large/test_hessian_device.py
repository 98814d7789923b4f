"""HessianOperator's ``vectorize`` and ``device`` options against a dense autograd Hessian."""
import numpy as np
import pytest
import torch

from overlap_experiments.hessian import HessianOperator, resolve_device


def _tiny():
    """A conv + linear net with D = 3·2·3·3+2 + 2·4·4·3+3 = 56 + 99 = 155 parameters (float64)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.Tanh(),
                                    torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))
        X = torch.randn(6, 3, 8, 8)
        y = torch.tensor([0, 1, 2, 0, 1, 2])
    return model.double(), X.double(), y


def _dense_hessian(model, X, y):
    """H of the mean cross-entropy via torch.autograd.functional.hessian on the flat parameter vector."""
    params = [p.detach().clone() for p in model.parameters()]
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    names = [n for n, _ in model.named_parameters()]

    def loss(flat):
        chunks = torch.split(flat, sizes)
        p = {n: c.reshape(s) for n, c, s in zip(names, chunks, shapes)}
        out = torch.func.functional_call(model, p, (X,))
        return torch.nn.functional.cross_entropy(out, y)

    theta = torch.cat([p.reshape(-1) for p in params])
    return torch.autograd.functional.hessian(loss, theta, vectorize=True).numpy()


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 2e-5)])
def test_vectorize_true_and_false_match_dense_hessian(dtype, rtol):
    model, X, y = _tiny()
    H = _dense_hessian(model, X, y)
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
    import pickle

    model, X, y = _tiny()
    op = HessianOperator(model, X, y, dtype="float64", block=4, vectorize=False)
    V = np.random.default_rng(1).standard_normal((op.shape[0], 3))
    R = op.matmat(V)
    op2 = pickle.loads(pickle.dumps(op))
    assert op2.vectorize is False and op2.device == "cpu"
    np.testing.assert_allclose(op2.matmat(V), R, rtol=1e-12, atol=1e-14)
