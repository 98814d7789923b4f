"""Shared fixtures of the overlap_experiments tests (CPU, small and fast)."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("curvlinops")
pytest.importorskip("sklearn")


@pytest.fixture(scope="session")
def digits():
    from overlap_experiments import data

    return data.load()


@pytest.fixture
def tiny_model():
    """An MLP with D = 5·4+4 + 4·3+3 = 39 parameters (float64) for dense references."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()


@pytest.fixture
def tiny_sample():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(12, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=g)
    return X, y
