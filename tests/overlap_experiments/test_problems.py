"""The problem registry (paper Table 1) and how each problem runs."""
import pytest

from overlap_experiments import data, models, problems


def test_registry_names_hyperparameters_and_errors():
    assert problems.names() == ("mnist16", "cifar10_3c3d", "cifar100_allcnnc", "imagenet_resnet18")
    p = problems.get("mnist16")
    assert (p.lr, p.batch_size, p.n_hessian_train, p.n_hessian_test, p.n_outer) == (0.3, 500, 500, 500, 355)
    assert p.n_inner == 711 == problems.tropp_n_inner(355)
    assert problems.get("imagenet_resnet18").n_params == 11_689_512
    with pytest.raises(ValueError, match="mnist16, cifar10_3c3d, cifar100_allcnnc, imagenet_resnet18"):
        problems.get("mnist")
    with pytest.raises(TypeError):
        problems.get(16)
    for name in problems.names():
        p = problems.get(name)  # built and counted in tests/overlap_experiments/models
        assert p.arch in models.ARCHITECTURES and p.dataset in data.SOURCES
        assert set(p.hessian_samples) <= {"train", "test"} and p.sketch_steps[-1] == p.total_steps
    with pytest.raises(ValueError, match="n_outer"):
        problems.tropp_n_inner(0)
    pytest.importorskip("torch")
    assert models.count_parameters(problems.get("mnist16").build_model(seed=0)) == 7030


def test_table1_record_and_run_settings():
    p = problems.get("mnist16")
    assert list(p.as_dict()) == [*problems.TABLE1_FIELDS, "n_inner"]  # results.json's "problem" record
    assert p.exact_steps == (0, 100, 1000) and p.hessian_samples == {"train": 500, "test": 500}
    assert not problems.get("cifar10_3c3d").exact_steps  # D = 895,210: sketched only
    assert problems.get("cifar100_allcnnc").hessian_samples == {"test": 1000}
