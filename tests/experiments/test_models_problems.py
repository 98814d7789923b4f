"""The 7030-parameter tanh MLP and the problem registry (paper Table 1)."""
import pytest
import torch

from overlap_experiments import models, problems


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


def test_registry_names_hyperparameters_and_errors():
    assert problems.names() == ("mnist16", "cifar10_3c3d", "cifar100_allcnnc", "imagenet_resnet18")
    p = problems.get("mnist16")
    assert (p.lr, p.batch_size, p.n_hessian_train, p.n_hessian_test, p.n_outer) == (0.3, 500, 500, 500, 355)
    assert p.n_inner == 711 == problems.tropp_n_inner(355)
    assert models.count_parameters(p.build_model(seed=0)) == 7030
    assert problems.get("imagenet_resnet18").n_params == 11_689_512
    with pytest.raises(ValueError, match="mnist16, cifar10_3c3d, cifar100_allcnnc, imagenet_resnet18"):
        problems.get("mnist")
    with pytest.raises(TypeError):
        problems.get(16)
    for name in ("cifar10_3c3d", "cifar100_allcnnc", "imagenet_resnet18"):
        p = problems.get(name)  # built and counted in tests/convnets and tests/large
        assert p.buildable and p.arch in models.ARCHITECTURES
    with pytest.raises(ValueError, match="n_outer"):
        problems.tropp_n_inner(0)
