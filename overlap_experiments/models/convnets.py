"""The three larger networks of paper Table 1 (§6.2).

* :func:`cifar10_3c3d` — DeepOBS "3c3d" (Schneider et al., 2019) for 32×32×3
  CIFAR-10: three conv layers (64 5×5 valid, 96 3×3 valid, 128 3×3 same), each
  followed by ReLU and 3×3 max-pooling with stride 2 ("same" padding), then
  fully connected 1152→512→256→10 with ReLU. **895,210** parameters.
* :func:`cifar100_allcnnc` — All-CNN-C (Springenberg et al., 2015) as in
  DeepOBS for CIFAR-100: dropout 0.2; conv 96 3×3 ×2, conv 96 3×3 stride 2;
  dropout 0.5; conv 192 3×3 ×2, conv 192 3×3 stride 2; dropout 0.5; conv 192
  3×3 valid, conv 192 1×1, conv 100 1×1; ReLU after every conv; global average
  pooling. **1,387,108** parameters.
* :func:`imagenet_resnet18` — torchvision's ResNet-18 (He et al., 2016), 1000
  classes, no pretrained weights. **11,689,512** parameters.

Each builder takes ``num_classes`` (tests and dry runs may shrink it; the
parameter count is asserted only for the paper's class count) and an optional
``seed`` that draws the initial weights from a private generator, so a
problem's step-0 network is reproducible without touching torch's global RNG.
"""
from __future__ import annotations

from .parameters import count_parameters

__all__ = ["PARAMETER_COUNTS", "cifar10_3c3d", "cifar100_allcnnc", "imagenet_resnet18"]

#: Parameter counts of paper Table 1, checked whenever the paper's class count is used.
PARAMETER_COUNTS = {"cifar10_3c3d": 895_210, "cifar100_allcnnc": 1_387_108, "imagenet_resnet18": 11_689_512}


def _maxpool_same(kernel: int = 3, stride: int = 2):
    """TensorFlow-style "same" max-pooling (as DeepOBS): output ``ceil(n / stride)``.

    For the even sizes of 3c3d (28, 12, 6) "same" pads one row/column at the
    bottom/right only; PyTorch's symmetric ``padding`` cannot express that, so
    an explicit ``ZeroPad2d`` is used (values after ReLU are ≥ 0, so a zero
    pad never wins a max that a ``-inf`` pad would not).
    """
    from torch import nn  # torch: optional dependency (the experiments extra)

    return nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.MaxPool2d(kernel, stride))


def _check_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes={num_classes!r} must be an int ≥ 2")
    return num_classes


def _seeded(build, seed):
    """Build the network with torch's global RNG seeded by ``seed`` inside a fork.

    Every layer draws its default initialisation while being constructed, so
    the weights are a pure function of ``seed`` and the caller's global RNG
    state is restored afterwards. ``seed=None`` uses the global RNG as is.
    """
    import torch  # optional dependency

    if seed is None:
        return build()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _assert_count(model, name: str, num_classes: int, paper_classes: int):
    if num_classes == paper_classes:
        D = count_parameters(model)
        if D != PARAMETER_COUNTS[name]:
            raise AssertionError(f"{name} has {D:,} parameters, paper Table 1 says {PARAMETER_COUNTS[name]:,}")
    return model


def cifar10_3c3d(num_classes: int = 10, seed: int | None = None):
    """DeepOBS 3c3d: (N, 3, 32, 32) images → (N, num_classes) logits; 895,210 parameters for 10 classes."""
    from torch import nn  # optional dependency

    k = _check_classes(num_classes)
    model = _seeded(lambda: nn.Sequential(
        nn.Conv2d(3, 64, 5), nn.ReLU(), _maxpool_same(),          # 32 → 28 → 14
        nn.Conv2d(64, 96, 3), nn.ReLU(), _maxpool_same(),         # 14 → 12 → 6
        nn.Conv2d(96, 128, 3, padding=1), nn.ReLU(), _maxpool_same(),  # 6 → 6 → 3
        nn.Flatten(),
        nn.Linear(3 * 3 * 128, 512), nn.ReLU(),
        nn.Linear(512, 256), nn.ReLU(),
        nn.Linear(256, k),
    ), seed)
    return _assert_count(model, "cifar10_3c3d", k, 10)


def cifar100_allcnnc(num_classes: int = 100, seed: int | None = None):
    """All-CNN-C: (N, 3, 32, 32) images → (N, num_classes) logits; 1,387,108 parameters for 100 classes.

    Dropout layers make the forward pass random in ``train()`` mode; Hessians
    are taken in ``eval()`` mode (deterministic), as the paper's H_test.
    """
    from torch import nn  # optional dependency

    k = _check_classes(num_classes)

    def conv(c_in, c_out, size, stride=1, padding=1):
        return [nn.Conv2d(c_in, c_out, size, stride=stride, padding=padding), nn.ReLU()]

    model = _seeded(lambda: nn.Sequential(
        nn.Dropout(0.2),
        *conv(3, 96, 3), *conv(96, 96, 3), *conv(96, 96, 3, stride=2),       # 32 → 16
        nn.Dropout(0.5),
        *conv(96, 192, 3), *conv(192, 192, 3), *conv(192, 192, 3, stride=2),  # 16 → 8
        nn.Dropout(0.5),
        *conv(192, 192, 3, padding=0),                                        # 8 → 6
        *conv(192, 192, 1, padding=0),
        *conv(192, k, 1, padding=0),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ), seed)
    return _assert_count(model, "cifar100_allcnnc", k, 100)


def imagenet_resnet18(num_classes: int = 1000, seed: int | None = None):
    """torchvision ResNet-18, random init: (N, 3, H, W) → (N, num_classes); 11,689,512 parameters for 1000 classes.

    BatchNorm layers hold running statistics: Hessians are taken in ``eval()``
    mode, so they use the running statistics and are a fixed linear operator.
    """
    from torchvision.models import resnet18  # torchvision: optional dependency

    k = _check_classes(num_classes)
    model = _seeded(lambda: resnet18(weights=None, num_classes=k), seed)
    return _assert_count(model, "imagenet_resnet18", k, 1000)
