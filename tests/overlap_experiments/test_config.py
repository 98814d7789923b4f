"""Run configuration: the problems' defaults, the quick / paper presets, steps, validation."""
import pytest

from overlap_experiments import config
from overlap_experiments.checkpoints import dense_schedule
from overlap_experiments.data import DataNotFoundError

pytest.importorskip("torch")  # device checks


def test_mnist16_defaults_are_the_paper_run():
    c = config.make_config("mnist16")
    assert (c.steps, c.n_outer, c.n_inner, c.lr, c.batch_size) == (1000, 355, 711, 0.3, 500)
    assert c.hessian_samples == {"train": 500, "test": 500} and c.splits == ("train", "test")
    assert c.exact_steps == [0, 100, 1000] and c.exact_splits == ("train",)
    assert c.sketch_steps == [0, 10, 50, 100, 250, 500, 1000]
    assert c.checkpoint_steps == dense_schedule(1000)  # Figs. 15-16: every 5th step to 250, log-spaced after
    assert (c.exact_method, c.k_max_exact, c.exact_dtype) == ("lapack", 1406, "float32")  # ρ = 20 % of D
    assert (c.device, c.hvp_block, c.hvp_batch, c.chunk, c.blas_threads, c.train_threads) == ("cpu", 256, None, 256,
                                                                                               1, 1)
    assert c.label == "real data"


def test_mnist16_presets():
    q = config.make_config("mnist16", quick=True)
    assert (q.steps, q.n_outer, q.n_inner, q.hessian_samples) == (100, 20, 41, {"train": 50, "test": 50})
    assert q.checkpoint_steps == list(range(0, 101, 5)) and q.sketch_steps == [0, 100] and q.exact_steps == [100]
    assert (q.exact_method, q.k_max_exact) == ("lanczos", 40)
    q60 = config.make_config("mnist16", quick=True, steps=60)  # the preset's steps fitted to a shorter run
    assert q60.sketch_steps == [0, 60] and q60.exact_steps == [60] and q60.checkpoint_steps[-1] == 60
    p = config.make_config("mnist16", paper=True)
    assert p.exact_steps == p.sketch_steps == p.checkpoint_steps and p.exact_splits == ("train", "test")
    with pytest.raises(ValueError, match="mutually exclusive"):
        config.make_config("mnist16", quick=True, paper=True)


def test_steps_of_a_shorter_run_and_given_steps():
    c = config.make_config("mnist16", steps=500)
    assert c.sketch_steps == [0, 10, 50, 100, 250, 500] and c.exact_steps == [0, 100, 500]
    c = config.make_config("mnist16", checkpoints=[0, 50, 100])
    assert c.steps == 100 and c.sketch_steps == [0, 50, 100] and c.exact_steps == [0, 100]
    c = config.make_config("mnist16", sketch_steps=[7], exact_steps=[3], steps=10)
    assert c.sketch_steps == [7] and c.exact_steps == [3] and {0, 3, 7, 10} <= set(c.checkpoint_steps)
    with pytest.raises(ValueError, match="exact_steps"):
        config.make_config("mnist16", steps=100, exact_steps=[200])
    with pytest.raises(ValueError, match="n_inner"):
        config.make_config("mnist16", n_outer=30, n_inner=10)
    with pytest.raises(ValueError, match="exact_splits"):
        config.make_config("mnist16", splits=["test"], exact_splits=["train"])


def test_large_problem_defaults():
    c = config.make_config("imagenet_resnet18", synthetic=True)
    assert (c.checkpoint_steps, c.steps, c.n_outer, c.n_inner) == ([0, 2000, 4000, 8000], 8000, 1500, 3001)
    assert c.sketch_steps == c.checkpoint_steps and c.exact_steps == [] and c.k_max_exact is None
    assert c.hessian_samples == {"test": 5000} and c.batch_size == 150 and c.lr == 0.1 and c.augment
    assert (c.hvp_block, c.hvp_batch, c.chunk, c.device, c.blas_threads) == (16, 16, 16, "auto", None)
    assert c.label == "SYNTHETIC data"
    c = config.make_config("cifar10_3c3d", synthetic=True, steps=3000)
    assert c.checkpoint_steps == [0, 2000, 3000] and c.hessian_samples == {"train": 500, "test": 500}
    assert config.make_config("cifar100_allcnnc", synthetic=True).hessian_samples == {"test": 1000}
    q = config.make_config("imagenet_resnet18", synthetic=True, quick=True)
    assert (q.steps, q.checkpoint_steps, q.sketch_steps, q.n_outer, q.image_size) == (4, [0, 2, 4], [0, 2, 4], 8, 32)
    w = config.make_config("cifar10_3c3d", synthetic=True, workers=4)
    assert w.chunk == 16  # a vmapped block per task, at most
    assert config.make_config("mnist16", workers=2).chunk == 178  # ≥ two tasks per worker: ceil(711 / 4)


def test_large_problem_errors():
    with pytest.raises(DataNotFoundError, match="--data-root"):
        config.make_config("cifar10_3c3d")
    with pytest.raises(ValueError, match="checkpoints"):
        config.make_config("cifar10_3c3d", synthetic=True, steps=10, checkpoints=[20])
    with pytest.raises(ValueError, match="n.a."):
        config.make_config("cifar100_allcnnc", synthetic=True, splits=["train"])
    with pytest.raises(ValueError, match="32×32"):
        config.make_config("cifar10_3c3d", synthetic=True, image_size=16)
    with pytest.raises(ValueError, match="not both"):
        config.make_config("cifar10_3c3d", synthetic=True, scheduler="tcp://x:1", workers=2)
    with pytest.raises(ValueError, match="tcp://"):
        config.make_config("cifar10_3c3d", synthetic=True, scheduler="localhost")
    with pytest.raises(ValueError, match="sketch_steps"):
        config.make_config("cifar10_3c3d", synthetic=True, sketch_steps=[9000])
    with pytest.raises(ValueError, match="exact Hessians"):
        config.make_config("cifar10_3c3d", synthetic=True, exact_steps=[0])
    with pytest.raises(ValueError, match="no synthetic data"):
        config.make_config("mnist16", synthetic=True)
    with pytest.raises(ValueError, match="synthetic data only"):
        config.make_config("cifar10_3c3d", data_root="/x", image_size=32)


def test_passes_replace_n_inner_by_rounds_of_n_outer():
    c = config.make_config("mnist16", passes=1, n_outer=355)
    assert (c.passes, c.n_outer, c.n_inner, c.hvps) == (1, 355, None, 710)  # the default run's 711 HVPs, less one
    assert config.make_config("mnist16").hvps == 711
    with pytest.raises(ValueError, match="n_inner=711 applies to a single-pass sketch"):
        config.make_config("mnist16", passes=1, n_inner=711)
    with pytest.raises(ValueError, match="passes"):
        config.make_config("mnist16", passes=-1)
    with pytest.raises(ValueError, match="exceeds D"):
        config.make_config("mnist16", passes=3, n_outer=2000)
