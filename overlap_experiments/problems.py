"""Registry of the paper's problems (paper Table 1) with their hyperparameters.

``problems.get(name)`` returns a :class:`Problem`; ``problem.build_model(seed)``
returns the network. Names:

============================  ============================  =========  =======  ====  ======  =============  ====
name                          model                         D          η        B     T       N_train/test   n_O
============================  ============================  =========  =======  ====  ======  =============  ====
``mnist16``                   tanh-MLP (Martens & Grosse)   7030       0.3      500   100     500/500        355
``cifar10_3c3d``              3c3d-CNN (DeepOBS)            895,210    0.0226   128   312     500/500        1000
``cifar100_allcnnc``          All-CNN-C                     1,387,108  0.1658   256   156     n.a./1000      1000
``imagenet_resnet18``         ResNet-18                     11,689,512 0.1      150   8207    n.a./5000      1500
============================  ============================  =========  =======  ====  ======  =============  ====

All four can be built: ``mnist16`` runs with :mod:`overlap_experiments.run_mnist`,
the three larger problems (§6.2; models in :mod:`overlap_experiments.convnets`,
data in :mod:`overlap_experiments.image_data`) with
:mod:`overlap_experiments.run_large`.

Inner sketch size n_I
---------------------
SEIGH (paper Alg. 2) makes n_I operator applications; its outer sketch of
n_O columns plays the role of the range sketch ``k`` of Tropp, Yurtsever,
Udell & Cevher (2019) and the inner sketch that of their core sketch ``s``.
Their a-priori parameter guidance (2019, Eq. 5.3) is ``s = 2k + α`` with
``α = 1`` for real matrices, so we take

    n_I = 2·n_O + 1        (mnist16: n_O = 355 → n_I = 711 Hessian-vector products)

(:func:`tropp_n_inner`); the core sketch is then large enough that the core
least-squares problems of Alg. 2 lines 5–6 are well conditioned.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["Problem", "get", "names", "tropp_n_inner", "PROBLEMS"]


def tropp_n_inner(n_outer: int) -> int:
    """Inner sketch size ``n_I = 2·n_O + 1`` (Tropp et al. 2019, Eq. 5.3, s = 2k + α, α = 1)."""
    if not isinstance(n_outer, int) or isinstance(n_outer, bool) or n_outer < 1:
        raise ValueError(f"n_outer={n_outer!r} must be a positive int")
    return 2 * n_outer + 1


@dataclass(frozen=True)
class Problem:
    """One row of paper Table 1.

    Attributes
    ----------
    name : registry key.
    title : human-readable problem name.
    model_name : architecture (paper's citation).
    arch : key of :data:`overlap_experiments.models.ARCHITECTURES`, or ``None``
        when the model is not built in this package yet.
    n_params : D, the number of parameters (checked by :meth:`build_model`).
    lr, batch_size : SGD learning rate η and mini-batch size B.
    steps_per_epoch : T (paper Table 1; on the default data it differs, see
        :mod:`overlap_experiments.data`).
    total_steps : last training step analysed in the paper.
    paper_accuracy : test accuracy the paper reports at ``total_steps``.
    n_hessian_train, n_hessian_test : N_train / N_test, the fixed Hessian
        samples (balanced over classes); ``None`` = not used ("n.a.").
    n_outer : n_O of SEIGH; ``n_inner`` = :func:`tropp_n_inner` (n_O).
    num_classes : classes of the data set (Hessian samples are balanced over them).
    """

    name: str
    title: str
    model_name: str
    arch: str | None
    n_params: int
    lr: float
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    paper_accuracy: float
    n_hessian_train: int | None
    n_hessian_test: int | None
    n_outer: int
    num_classes: int

    @property
    def n_inner(self) -> int:
        """n_I = 2·n_O + 1 (see module docstring)."""
        return tropp_n_inner(self.n_outer)

    @property
    def buildable(self) -> bool:
        """Whether :meth:`build_model` works in this version."""
        return self.arch is not None

    def build_model(self, seed: int | None = None):
        """The network, with its parameter count checked against ``n_params``."""
        if self.arch is None:
            raise NotImplementedError(
                f"problem {self.name!r} ({self.model_name}) is registered with the paper's "
                "hyperparameters only; its model and data are not implemented yet"
            )
        from . import models

        model = models.build(self.arch, seed)
        D = models.count_parameters(model)
        if D != self.n_params:
            raise RuntimeError(f"{self.name}: model has {D} parameters, expected {self.n_params}")
        return model

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["n_inner"] = self.n_inner
        return d


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem("mnist16", "16×16 MNIST", "tanh-MLP (Martens & Grosse, 2015)", "mnist_mlp",
                7030, 0.3, 500, 100, 1000, 0.9578, 500, 500, 355, 10),
        Problem("cifar10_3c3d", "CIFAR-10", "3c3d-CNN (Schneider et al., 2019)", "cifar10_3c3d",
                895_210, 0.0226, 128, 312, 8000, 0.7452, 500, 500, 1000, 10),
        Problem("cifar100_allcnnc", "CIFAR-100", "All-CNN-C (Springenberg et al., 2015)", "cifar100_allcnnc",
                1_387_108, 0.1658, 256, 156, 8000, 0.4050, None, 1000, 1000, 100),
        Problem("imagenet_resnet18", "ImageNet", "ResNet-18 (He et al., 2016)", "imagenet_resnet18",
                11_689_512, 0.1, 150, 8207, 8000, 0.1733, None, 5000, 1500, 1000),
    )
}


def names() -> tuple[str, ...]:
    """Registered problem names."""
    return tuple(PROBLEMS)


def get(name: str) -> Problem:
    """The problem called ``name``; an unknown name raises ``ValueError`` listing the names."""
    if not isinstance(name, str):
        raise TypeError(f"problem name must be a string, got {type(name).__name__}")
    try:
        return PROBLEMS[name]
    except KeyError:
        raise ValueError(f"unknown problem {name!r}; known problems: {', '.join(PROBLEMS)}") from None
