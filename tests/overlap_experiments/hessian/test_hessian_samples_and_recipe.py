"""Stored Hessian samples and the Hessian recipe a Dask worker builds from a checkpoint and a sample."""
import json
import pickle
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("curvlinops")

import sketchla as sk  # noqa: E402

from overlap_experiments import hessian, problems  # noqa: E402
from overlap_experiments.checkpoints import checkpoint_path, load_model  # noqa: E402
from overlap_experiments.fileio import file_digest  # noqa: E402
from overlap_experiments.train import train  # noqa: E402

IDX = np.array([0, 3, 10, 11, 50, 99])


@pytest.fixture(scope="module")
def mnist_checkpoint(tmp_path_factory, digits):
    d = tmp_path_factory.mktemp("ck")
    prob = replace(problems.get("mnist16"), batch_size=100)
    train(prob, digits, d, steps=5, seed=0, checkpoint_steps=[5], progress=False)
    return checkpoint_path(d, 5)


def test_stored_sample_holds_the_samples_and_is_reused(tmp_path, digits):
    rec = hessian.store_sample(digits, "test", IDX, tmp_path)
    assert rec["n"] == 6 and rec["indices"] == IDX.tolist() and rec["source"] == "digits"
    assert json.loads((tmp_path / "test.json").read_text()) == rec
    X, y = hessian.load_sample(rec)
    assert torch.equal(X, digits.split("test").X[IDX]) and torch.equal(y, digits.split("test").y[IDX])
    Xm, ym = hessian.load_sample(rec, mmap=True)
    np.testing.assert_array_equal(Xm, X.numpy())
    mtime = (tmp_path / "test_X.npy").stat().st_mtime_ns
    assert hessian.store_sample(digits, "test", IDX, tmp_path) == rec  # the same indices: reused as is
    assert (tmp_path / "test_X.npy").stat().st_mtime_ns == mtime
    other = hessian.store_sample(digits, "test", IDX[:3], tmp_path)  # other indices: rewritten
    assert other["n"] == 3 and other["digest_X"] != rec["digest_X"]
    np.save(tmp_path / "test_X.npy", np.zeros((3, 16, 16), np.float32))  # changed on disk: rewritten
    again = hessian.store_sample(digits, "test", IDX[:3], tmp_path)
    assert again["digest_X"] == other["digest_X"] == file_digest(tmp_path / "test_X.npy")


@pytest.mark.slow  # trains a checkpoint and builds the Hessian twice (~4 s)
def test_recipe_operator_builds_the_same_hessian(tmp_path, mnist_checkpoint, digits):
    prob = problems.get("mnist16")
    sample = hessian.store_sample(digits, "test", IDX, tmp_path)
    rec = hessian.hessian_recipe(prob, mnist_checkpoint, sample, device="cpu")
    assert rec.shape == (7030, 7030) and rec.symmetric
    X, y = digits.split("test").batch(IDX)
    direct = hessian.HessianOperator(load_model(prob, mnist_checkpoint), X, y)
    V = np.random.default_rng(1).standard_normal((7030, 3)).astype(np.float32)
    shipped = pickle.loads(pickle.dumps(rec))  # what a Dask worker receives
    sk.clear_recipe_cache()
    np.testing.assert_allclose(shipped.matmat(V), direct.matmat(V), rtol=1e-5, atol=1e-7)
    # symmetric: <u, H v> = <H u, v>
    Hv = rec.matmat(V)
    assert abs(float(V[:, 0] @ Hv[:, 1]) - float(Hv[:, 0] @ V[:, 1])) < 1e-4 * np.abs(Hv).max()
    # another sample is another recipe; a changed checkpoint or sample is detected on the worker
    other = hessian.hessian_recipe(prob, mnist_checkpoint, hessian.store_sample(digits, "train", IDX, tmp_path))
    assert other.token != rec.token
    args = ("mnist16", str(mnist_checkpoint), sample["X"], sample["y"])
    with pytest.raises(ValueError, match="checkpoint .* differs"):
        hessian.build_hessian_operator(*args, checkpoint_digest="0" * 64, sample_digest=sample["digest_X"])
    with pytest.raises(ValueError, match="sample .* differs"):
        hessian.build_hessian_operator(*args, checkpoint_digest=file_digest(mnist_checkpoint), sample_digest="0")
    sk.clear_recipe_cache()
