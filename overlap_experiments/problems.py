"""The paper's problems (paper Table 1): one entry each, all the pipeline needs to run it.

``problems.get(name)`` returns a :class:`Problem`; ``problem.build_model(seed)``
returns the network. Table 1:

============================  ============================  =========  =======  ====  ======  =============  ====
name                          model                         D          η        B     T       N_train/test   n_O
============================  ============================  =========  =======  ====  ======  =============  ====
``mnist16``                   tanh-MLP (Martens & Grosse)   7030       0.3      500   100     500/500        355
``cifar10_3c3d``              3c3d-CNN (DeepOBS)            895,210    0.0226   128   312     500/500        1000
``cifar100_allcnnc``          All-CNN-C                     1,387,108  0.1658   256   156     n.a./1000      1000
``imagenet_resnet18``         ResNet-18                     11,689,512 0.1      150   8207    n.a./5000      1500
============================  ============================  =========  =======  ====  ======  =============  ====

Besides its Table 1 row, an entry says how this package runs the problem:
its data set (a key of :data:`overlap_experiments.data.SOURCES`), the steps
analysed by default, whether D is small enough for exact Hessians (then the
run adds the exact analysis of §6.1 / App. B.1 and reports exact and
sketched side by side), how Hessian-vector products are batched, and its
``--quick`` preset. A fifth problem is one more entry here (plus a model
builder in :mod:`overlap_experiments.models` and a data source in
:mod:`overlap_experiments.data` when they are new).

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

from dataclasses import dataclass, field

from . import models
from .checkpoints import dense_schedule

__all__ = ["Problem", "get", "names", "tropp_n_inner", "PROBLEMS", "TABLE1_FIELDS"]

#: the fields of a Problem that are paper Table 1 (written to results.json as ``problem``)
TABLE1_FIELDS = ("name", "title", "model_name", "arch", "n_params", "lr", "batch_size", "steps_per_epoch",
                 "total_steps", "paper_accuracy", "n_hessian_train", "n_hessian_test", "n_outer", "num_classes")


def tropp_n_inner(n_outer: int) -> int:
    """Inner sketch size ``n_I = 2·n_O + 1`` (Tropp et al. 2019, Eq. 5.3, s = 2k + α, α = 1)."""
    if not isinstance(n_outer, int) or isinstance(n_outer, bool) or n_outer < 1:
        raise ValueError(f"n_outer={n_outer!r} must be a positive int")
    return 2 * n_outer + 1


@dataclass(frozen=True)
class Problem:
    """One row of paper Table 1 and how the pipeline runs it.

    Table 1
    -------
    name : registry key.
    title : human-readable problem name.
    model_name : architecture (paper's citation).
    arch : key of :data:`overlap_experiments.models.ARCHITECTURES`.
    n_params : D, the number of parameters (checked by :meth:`build_model`).
    lr, batch_size : SGD learning rate η and mini-batch size B.
    steps_per_epoch : T (paper Table 1; on the default data it may differ).
    total_steps : last training step analysed in the paper (the default ``--steps``).
    paper_accuracy : test accuracy the paper reports at ``total_steps``.
    n_hessian_train, n_hessian_test : N_train / N_test, the fixed Hessian
        samples (balanced over classes); ``None`` = not used ("n.a.").
    n_outer : n_O of SEIGH; ``n_inner`` = :func:`tropp_n_inner` (n_O).
    num_classes : classes of the data set.

    How it runs (defaults of :func:`overlap_experiments.config.make_config`)
    -----------------------------------------------------------------------
    dataset : key of :data:`overlap_experiments.data.SOURCES`.
    sketch_steps : steps analysed with SEIGH (written for ``total_steps``;
        a shorter run keeps those it reaches, plus its last step).
    exact_steps : steps with dense Hessians and their eigendecomposition;
        non-empty only where D is small. Then the run is reported as exact vs
        sketched (paper §6.1), else as sketched only (§6.2).
    checkpoints : further steps saved by default (the dense schedule of the
        §6.1 training figures).
    augment : random crop + flip of the training images (DeepOBS).
    hvp_block, hvp_batch : columns per vmapped Hessian-vector product and
        samples per curvlinops mini-batch (``None``: all N at once).
    device, train_threads, blas_threads : torch device of training and HVPs;
        torch threads while training and OpenBLAS threads (``None``: the
        library's setting).
    fixed_input_size : the network only takes the data set's native image size.
    sample_stream : ``spawn_key`` of the Hessian-sample draw
        (:func:`overlap_experiments.data.balanced_sample`).
    quick : the ``--quick`` preset: options filled in when not given.
    """

    name: str
    title: str
    model_name: str
    arch: str
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
    dataset: str
    sketch_steps: tuple
    exact_steps: tuple = ()
    checkpoints: tuple = ()
    augment: bool = False
    hvp_block: int = 16
    hvp_batch: int | None = None
    device: str = "auto"
    train_threads: int | None = None
    blas_threads: int | None = None
    fixed_input_size: bool = False
    sample_stream: tuple = (7,)
    quick: dict = field(default_factory=dict, hash=False)

    @property
    def n_inner(self) -> int:
        """n_I = 2·n_O + 1 (see module docstring)."""
        return tropp_n_inner(self.n_outer)

    @property
    def hessian_samples(self) -> dict:
        """N per split of Table 1 (``{"train": N_train, "test": N_test}``, "n.a." left out)."""
        return {s: n for s, n in (("train", self.n_hessian_train), ("test", self.n_hessian_test)) if n is not None}

    def build_model(self, seed: int | None = None):
        """The network, with its parameter count checked against ``n_params``."""
        model = models.build(self.arch, seed)
        D = models.count_parameters(model)
        if D != self.n_params:
            raise RuntimeError(f"{self.name}: model has {D} parameters, expected {self.n_params}")
        return model

    def as_dict(self) -> dict:
        """The Table 1 row and n_I (the ``problem`` record of results.json)."""
        d = {f: getattr(self, f) for f in TABLE1_FIELDS}
        d["n_inner"] = self.n_inner
        return d


#: ``--quick`` of the §6.2 problems: 4 SGD steps, N = 32 per split, n_O = 8, 32×32 synthetic images
_QUICK_LARGE = {"steps": 4, "checkpoints": (2, 4), "n_outer": 8, "hessian_samples": 32, "image_size": 32}
#: the steps of paper Figs. 3–4
_LARGE_STEPS = (0, 2000, 4000, 8000)

PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem("mnist16", "16×16 MNIST", "tanh-MLP (Martens & Grosse, 2015)", "mnist_mlp",
                7030, 0.3, 500, 100, 1000, 0.9578, 500, 500, 355, 10,
                dataset="mnist16", sketch_steps=(0, 10, 50, 100, 250, 500, 1000), exact_steps=(0, 100, 1000),
                checkpoints=tuple(dense_schedule(1000)), hvp_block=256, device="cpu", train_threads=1,
                blas_threads=1, sample_stream=(7,),
                # half a minute: 100 steps, 5 samples per class, n_O = 20, one exact H by Lanczos
                quick={"steps": 100, "n_outer": 20, "hessian_samples": 50, "checkpoints": tuple(range(0, 101, 5)),
                       "sketch_steps": (0, 100), "exact_steps": (100,), "exact_method": "lanczos"}),
        Problem("cifar10_3c3d", "CIFAR-10", "3c3d-CNN (Schneider et al., 2019)", "cifar10_3c3d",
                895_210, 0.0226, 128, 312, 8000, 0.7452, 500, 500, 1000, 10,
                dataset="cifar10", sketch_steps=_LARGE_STEPS, hvp_batch=250, fixed_input_size=True,
                sample_stream=(7, 10), quick=_QUICK_LARGE),
        Problem("cifar100_allcnnc", "CIFAR-100", "All-CNN-C (Springenberg et al., 2015)", "cifar100_allcnnc",
                1_387_108, 0.1658, 256, 156, 8000, 0.4050, None, 1000, 1000, 100,
                dataset="cifar100", sketch_steps=_LARGE_STEPS, augment=True, hvp_batch=100,
                sample_stream=(7, 100), quick=_QUICK_LARGE),
        Problem("imagenet_resnet18", "ImageNet", "ResNet-18 (He et al., 2016)", "imagenet_resnet18",
                11_689_512, 0.1, 150, 8207, 8000, 0.1733, None, 5000, 1500, 1000,
                dataset="imagenet", sketch_steps=_LARGE_STEPS, augment=True, hvp_batch=16,
                sample_stream=(7, 1000), quick=_QUICK_LARGE),
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
