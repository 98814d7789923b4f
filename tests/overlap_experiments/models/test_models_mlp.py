"""The 7030-parameter tanh MLP of the 16×16 MNIST problem and the architecture registry."""
import pytest

torch = pytest.importorskip("torch")

from overlap_experiments import models  # noqa: E402


def test_mlp_has_exactly_7030_parameters_and_tanh_layers():
    m = models.mnist_mlp(seed=0)
    assert models.count_parameters(m) == 7030 == models.MNIST_MLP_PARAMETERS
    linears = [l for l in m if isinstance(l, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [
        (256, 20), (20, 20), (20, 20), (20, 20), (20, 20), (20, 10)]
    assert sum(isinstance(l, torch.nn.Tanh) for l in m) == 5
    assert m(torch.zeros(3, 16, 16)).shape == (3, 10)
    assert models.flat_parameters(m).shape == (7030,)


def test_seeded_init_is_deterministic_and_default_scaled():
    a, b, c = models.mnist_mlp(seed=3), models.mnist_mlp(seed=3), models.mnist_mlp(seed=4)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))
    w = a[1].weight.detach()  # first Linear: U(-1/16, 1/16)
    assert float(w.abs().max()) <= 1 / 16 and float(w.abs().max()) > 0.9 / 16
    with pytest.raises(ValueError, match="seed"):
        models.mnist_mlp(seed=-1)
    with pytest.raises(ValueError, match="arch"):
        models.build("resnet1000")
