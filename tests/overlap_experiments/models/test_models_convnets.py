"""The larger networks of paper Table 1: parameter counts, shapes, seeding, bad input."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from overlap_experiments.models import convnets as cn  # noqa: E402
from overlap_experiments.models import count_parameters  # noqa: E402


@pytest.mark.parametrize("name, shape, classes", [
    ("cifar10_3c3d", (2, 3, 32, 32), 10),
    ("cifar100_allcnnc", (2, 3, 32, 32), 100),
    ("imagenet_resnet18", (2, 3, 64, 64), 1000),
])
def test_paper_parameter_counts_and_output_shapes(name, shape, classes):
    model = getattr(cn, name)(seed=0).eval()
    assert count_parameters(model) == cn.PARAMETER_COUNTS[name]
    with torch.no_grad():
        assert model(torch.randn(shape)).shape == (shape[0], classes)


def test_3c3d_same_pooling_sizes():
    """32 → conv5 28 → pool 14 → conv3 12 → pool 6 → conv3(same) 6 → pool 3 (TF 'same' pooling)."""
    model = cn.cifar10_3c3d(seed=0)
    x = torch.randn(1, 3, 32, 32)
    sizes = []
    for layer in model:
        x = layer(x)
        if x.ndim == 4:
            sizes.append(x.shape[-1])
    assert sizes == [28, 28, 14, 12, 12, 6, 6, 6, 3]


def test_seed_makes_initialisation_reproducible_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a, b, c = cn.cifar100_allcnnc(seed=3), cn.cifar100_allcnnc(seed=3), cn.cifar100_allcnnc(seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_fewer_classes_for_dry_runs():
    model = cn.imagenet_resnet18(num_classes=7, seed=0).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)


@pytest.mark.parametrize("bad", [1, 0, 2.5, True, "10"])
def test_bad_num_classes(bad):
    with pytest.raises(ValueError, match="num_classes"):
        cn.cifar10_3c3d(num_classes=bad)


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        cn.cifar10_3c3d(seed=-1)
