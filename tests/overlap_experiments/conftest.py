"""Shared fixtures of the overlap_experiments tests (CPU, small and fast).

Modules that need the experiments extra skip themselves with
``pytest.importorskip`` (torch, curvlinops, torchvision); the synthetic study
and the pure-NumPy parts need only the core dependencies.

The folders here mirror the package but are not packages (no ``__init__.py``):
as packages they would be imported as ``overlap_experiments.…`` and shadow the
package under test. So every test file has a unique name, and a helper module
(``_synthetic_grids``) is imported by its plain name from its folder, which
pytest puts on ``sys.path``; helpers several folders need are fixtures here.
"""
import pytest


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as the 16×16 MNIST data set (three in-memory splits)."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from overlap_experiments.data import mnist

    return mnist.load()


@pytest.fixture
def tiny_model():
    """An MLP with D = 5·4+4 + 4·3+3 = 39 parameters (float64) for dense references."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()


@pytest.fixture
def tiny_sample():
    """12 samples (float64, 5 features) with labels in 0..2 for :func:`tiny_model`."""
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(1)
    X = torch.randn(12, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=g)
    return X, y


def _functional(model):
    """``(theta, f)``: the model's flat trainable parameters θ (D,) and ``f(t, X)``, its output on
    inputs X at flat parameters ``t`` (``model.parameters()`` order; torch.func)."""
    import torch

    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def f(t, X):
        params = {n: v.reshape(s) for n, v, s in zip(names, torch.split(t, sizes), shapes)}
        return torch.func.functional_call(model, params, (X,))

    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]), f


@pytest.fixture
def functional():
    """:func:`_functional`: a network as a function of its flat parameters."""
    pytest.importorskip("torch")
    return _functional


@pytest.fixture
def dense_hessian():
    """``dense_hessian(model, X, y)``: the reference D × D Hessian (NumPy) of the mean cross-entropy,
    by torch.autograd, that the Hessian operators are checked against."""
    torch = pytest.importorskip("torch")

    def hessian(model, X, y):
        theta, f = _functional(model)
        loss = lambda t: torch.nn.functional.cross_entropy(f(t, X), y)  # noqa: E731
        return torch.autograd.functional.hessian(loss, theta, vectorize=True).numpy()

    return hessian
