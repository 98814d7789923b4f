"""The paper's nets as the HVP benchmarks use them (shared by hvp_batching.py and gpu_resnet18.py)."""
from __future__ import annotations

#: net → (architecture, input shape without N, classes, Table 1 N, default curvlinops mini-batch)
NETS = {
    "mnist_mlp": ("mnist_mlp", (16, 16), 10, 500, None),
    "3c3d": ("cifar10_3c3d", (3, 32, 32), 10, 500, 250),
    "allcnnc": ("cifar100_allcnnc", (3, 32, 32), 100, 1000, 100),
    "resnet18": ("imagenet_resnet18", (3, 224, 224), 1000, 5000, 16),
}
#: the convnets of paper Table 1 (what the GPU benchmark times)
CONVNETS = ("3c3d", "allcnnc", "resnet18")


def sample(shape, classes: int, n: int, seed: int = 0):
    """A reproducible synthetic batch: ``n`` standard-normal inputs of ``shape``, labels ``i mod classes``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=g), torch.arange(n) % classes
