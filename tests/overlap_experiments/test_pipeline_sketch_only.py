"""The pipeline on the three large problems (paper §6.2, sketched only) on tiny synthetic data.

The networks have their paper sizes (D = 895,210 / 1,387,108 / 11,689,512);
only the data (synthetic, 16–32 px), N (8 images) and the sketch (n_O = 4,
n_I = 9) are tiny. The overlap curves written to results.json are checked
against a brute-force recomputation from the SEIGH store and the
checkpoint, and the recipe operator against a directly built one.
"""
import dataclasses
import json
import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("curvlinops")

from overlap_experiments import cli, config, pipeline, problems  # noqa: E402
from overlap_experiments.checkpoints import checkpoint_path, load_model  # noqa: E402
from overlap_experiments.figures import sketch_only as figures  # noqa: E402
from overlap_experiments.hessian import HessianOperator  # noqa: E402
from overlap_experiments.models import flat_parameters  # noqa: E402

pytestmark = pytest.mark.slow  # training runs and SEIGH of networks with 0.9M-11.7M parameters


def _tiny_cfg(problem, **kw):
    base = dict(synthetic=True, steps=2, checkpoints=[2], hessian_samples=8, n_outer=4, n_inner=9, batch_size=8,
                synthetic_train=32, synthetic_test=32, hvp_block=9, train_threads=1)
    base.update(kw)
    return config.make_config(problem, **base)


def _brute_overlap(order, V, k):
    return float(np.sum(V[order[:k], :k].astype(np.float64) ** 2) / k)


@pytest.fixture(scope="module")
def c10_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("c10")
    cfg = _tiny_cfg("cifar10_3c3d")
    res = pipeline.run(out, cfg, progress=False)
    return out, cfg, res


def test_cifar10_3c3d_end_to_end(c10_run, caplog, check_png, read_report):
    import sketchla as sk

    out, cfg, res = c10_run
    D = 895_210
    assert res["n_params"] == D == problems.get("cifar10_3c3d").n_params
    assert res["synthetic"] is True and res["label"] == "SYNTHETIC data"
    assert res["data_source"]["kind"] == "synthetic"
    assert "SYNTHETIC data" in figures.figure_caption(res, k="k = 1")
    assert cfg.checkpoint_steps == [0, 2] and cfg.splits == ("train", "test")
    assert res["parameters"]["lr"] == 0.0226 and res["seeds"]["sketch"] == 0
    assert len(res["training"]["losses"]) == 2 and all(np.isfinite(res["training"]["losses"]))
    for s in (0, 2):
        assert checkpoint_path(out / "checkpoints", s).is_file()
    assert sorted(res["overlap"]) == ["test", "train"]
    for split in ("train", "test"):
        hs = res["hessian_samples"][split]
        assert hs["n"] == 8 and len(set(hs["indices"])) == 8
        for step in ("0", "2"):
            e = res["overlap"][split][step]
            k = np.arange(1, 5)
            np.testing.assert_allclose(e["chance"], k / D, rtol=1e-12)
            np.testing.assert_allclose(e["ratio"], np.asarray(e["overlap"]) / (k / D), rtol=1e-12)
            lam = np.asarray(e["eigenvalues"])
            assert lam.shape == (4,) and np.all(np.diff(np.abs(lam)) <= 1e-12)
            t = e["timings"]
            assert t["per_hvp"] > 0 and t["measurement"] > 0 and t["rest"] > 0
            # brute force from the stored sketch and the checkpoint's magnitude order
            r = sk.open_result(e["store"])
            np.testing.assert_allclose(r.eigenvalues, lam, rtol=1e-12)
            V = np.asarray(r.eigenvectors.compute(scheduler="threads"))
            np.testing.assert_allclose(V.T @ V, np.eye(4), atol=1e-4)
            order = np.argsort(-np.abs(flat_parameters(load_model(problems.get(cfg.problem),
                                                                  checkpoint_path(out / "checkpoints", int(step))))),
                               kind="stable")
            want = [_brute_overlap(order, V, kk) for kk in range(1, 5)]
            np.testing.assert_allclose(e["overlap"], want, rtol=1e-5, atol=1e-12)
    for f in res["figures"]:
        assert (out / f.split("/")[-1]).stat().st_size > 10_000
        check_png(out / f.split("/")[-1])
    r = read_report(out)
    assert sorted(r.figures) == ["fig03_overlap_vs_k", "fig04_overlap_vs_step"]
    assert r.values["ratio@test/2/k4"] == res["overlap"]["test"]["2"]["ratio"][3]
    assert r.values["ratio@train/2/k1"] == res["overlap"]["train"]["2"]["ratio"][0]
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["overlap"]["test"]["2"]["overlap"] == res["overlap"]["test"]["2"]["overlap"]


def test_recipe_operator_is_the_hessian_of_the_checkpoint_on_the_sample(c10_run):
    """The recipe (files on disk) gives the same H v as an operator built from the data directly."""
    out, cfg, res = c10_run
    data = pipeline.load_data(cfg, augment=False)
    X, y = data.split("test").batch(res["hessian_samples"]["test"]["indices"])
    model = load_model(problems.get(cfg.problem), checkpoint_path(out / "checkpoints", 2))
    direct = HessianOperator(model, X, y, block=3)
    sample = json.loads((out / "hessian_samples" / "test.json").read_text())
    recipe = pipeline.checkpoint_hessian(cfg, checkpoint_path(out / "checkpoints", 2), sample)
    v = np.random.default_rng(0).standard_normal((direct.shape[0], 2)).astype(np.float32)
    a, b = direct.matmat(v), np.asarray(recipe.matmat(v))
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * np.abs(a).max())
    assert np.abs(a).max() > 0


def test_rerun_skips_finished_work(c10_run, caplog):
    out, cfg, res = c10_run
    stores = sorted((out / "seigh").iterdir())
    mtimes = {p: p.stat().st_mtime_ns for p in stores}
    with caplog.at_level(logging.INFO, logger="overlap_experiments"):
        again = pipeline.run(out, cfg, progress=False, figures=False)
    assert again["training"]["trained_steps"] == 0 and again["training"]["resumed_from"] == 2
    assert again["overlap"]["train"]["2"]["overlap"] == res["overlap"]["train"]["2"]["overlap"]
    assert again["timings"]["seigh"] == 0.0
    assert {p: p.stat().st_mtime_ns for p in stores} == mtimes
    assert "analysis reused" in caplog.text and "SYNTHETIC" in caplog.text


def test_cifar100_allcnnc_end_to_end(tmp_path):
    cfg = _tiny_cfg("cifar100_allcnnc", image_size=16)
    assert cfg.augment and cfg.splits == ("test",) and cfg.n_outer == 4
    res = pipeline.run(tmp_path, cfg, progress=False, figures=False, keep_stores=False)
    # keep_stores=False (--no-keep-stores): each store went once its analysis was cached
    assert not any((tmp_path / "seigh").iterdir()) and res["disk"]["parts"]["seigh"] == 0
    assert res["n_params"] == 1_387_108 and res["synthetic"]
    assert res["data_source"]["augment"] is True
    assert sorted(res["overlap"]["test"], key=int) == ["0", "2"]
    for e in res["overlap"]["test"].values():
        assert len(e["overlap"]) == 4 and all(0 <= v <= 1 for v in e["overlap"])
        assert np.all(np.isfinite(e["eigenvalues"]))
    y = np.load(tmp_path / "hessian_samples" / "test_y.npy")
    assert len(np.unique(y)) == 8  # 8 images, 100 classes: 8 distinct classes


def test_imagenet_resnet18_end_to_end_via_cli(tmp_path, capsys):
    rc = cli.main(["run", "imagenet_resnet18", "--synthetic", "--image-size", "8", "--steps", "1",
                   "--checkpoints", "1", "--sketch-steps", "1", "--hessian-samples", "8", "--n-outer", "3",
                   "--n-inner", "5", "--batch-size", "8", "--hvp-block", "5", "--train-threads", "1",
                   "--out", str(tmp_path), "--no-progress", "--no-figures"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["n_params"] == 11_689_512 and res["synthetic"] is True
    assert res["parameters"]["checkpoints"] == [0, 1] and list(res["overlap"]["test"]) == ["1"]
    assert checkpoint_path(tmp_path / "checkpoints", 0).is_file()
    e = res["overlap"]["test"]["1"]
    np.testing.assert_allclose(e["chance"][-1], 3 / 11_689_512)
    assert len(e["overlap"]) == 3 and len(e["eigenvalues"]) == 3
    assert e["timings"]["per_hvp"] > 0


def test_real_cifar10_layout_end_to_end(tmp_path):
    """A CIFAR-10 folder in torchvision's layout (tiny fake batches) goes through the real-data path."""
    import pickle

    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(20, 3072), dtype=np.uint8)
        labels = [i % 10 for i in range(20)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f, protocol=2)
    cfg = config.make_config("cifar10_3c3d", data_root=tmp_path / "data", steps=1, checkpoints=[1],
                                      sketch_steps=[1], splits=["test"], hessian_samples=10, n_outer=2,
                                      n_inner=5, batch_size=4, hvp_block=5, train_threads=1)
    res = pipeline.run(tmp_path / "out", cfg, progress=False, figures=False)
    assert res["synthetic"] is False and res["label"] == "real data"
    assert res["data_source"]["name"] == "CIFAR-10" and res["data_source"]["n_train"] == 100
    y = np.load(tmp_path / "out" / "hessian_samples" / "test_y.npy")
    assert np.array_equal(np.bincount(y, minlength=10), np.ones(10))  # balanced: one image per class
    assert len(res["overlap"]["test"]["1"]["overlap"]) == 2


def test_other_sample_size_gets_its_own_store(c10_run):
    """Changing N (another Hessian) must not reuse the finished SEIGH stores of the first run."""
    out, cfg, res = c10_run
    before = {p.name for p in (out / "seigh").iterdir()}
    cfg2 = dataclasses.replace(cfg, hessian_samples={"train": 6, "test": 6}, sketch_steps=[2], splits=("test",))
    res2 = pipeline.run(out, cfg2, progress=False, figures=False)
    after = {p.name for p in (out / "seigh").iterdir()}
    assert before < after and len(after - before) == 1
    assert res2["overlap"]["test"]["2"]["eigenvalues"] != res["overlap"]["test"]["2"]["eigenvalues"]
    # and the first configuration still finds its own results
    again = pipeline.run(out, cfg, progress=False, figures=False)
    assert again["overlap"]["test"]["2"]["overlap"] == res["overlap"]["test"]["2"]["overlap"]
