"""The paper's nets as the HVP benchmarks use them (shared by hvp_batching.py and gpu_check.py)."""
from __future__ import annotations

#: net → (architecture, input shape without N, classes, Table 1 N, default curvlinops mini-batch)
NETS = {
    "mnist_mlp": ("mnist_mlp", (16, 16), 10, 500, None),
    "3c3d": ("cifar10_3c3d", (3, 32, 32), 10, 500, 250),
    "allcnnc": ("cifar100_allcnnc", (3, 32, 32), 100, 1000, 100),
    "resnet18": ("imagenet_resnet18", (3, 224, 224), 1000, 5000, 16),
}
#: the convnets of paper Table 1
CONVNETS = ("3c3d", "allcnnc", "resnet18")


def sample(shape, classes: int, n: int, seed: int = 0, device="cpu"):
    """A reproducible synthetic batch: ``n`` standard-normal inputs of ``shape``, labels ``i mod classes``.

    Drawn on ``device`` (a CUDA generator draws 5000 ImageNet-sized images in
    milliseconds where the CPU takes seconds); the same seed gives the same
    batch in every process on the same kind of device.
    """
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    X = torch.randn((n, *shape), generator=g, device=device)
    return X, torch.arange(n, device=device) % classes


def synthetic_hessian(net: str, n: int, seed: int = 0, *, image_size=None, batch_size=None, device="auto",
                      block: int = 8):
    """The loss Hessian of net ``net`` (seeded initial weights) on ``n`` synthetic samples.

    A :class:`overlap_experiments.hessian.HessianOperator` (D × D, float32);
    a module-level function, so a :class:`sketchla.RecipeOperator`
    can ship it to Dask workers (each builds it once, on its own GPU with
    ``device="auto"`` under ``dask-cuda``). ``image_size`` replaces the side of
    a square image input (e.g. 32 for a quick ResNet-18).
    """
    from overlap_experiments import models
    from overlap_experiments.hessian import HessianOperator, resolve_device

    arch, shape, classes, _, _ = NETS[net]
    if image_size is not None and len(shape) == 3:
        shape = (shape[0], image_size, image_size)
    dev = resolve_device(device)
    model = models.build(arch, seed=seed)
    X, y = sample(shape, classes, n, seed=seed, device=dev)
    return HessianOperator(model, X, y, block=block, batch_size=batch_size, device=str(dev), vectorize=True)
