"""SGD training: determinism under a seed, resumption, the data protocol, evaluation."""
import json
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from overlap_experiments import problems  # noqa: E402
from overlap_experiments.checkpoints import checkpoint_path, existing_checkpoints  # noqa: E402
from overlap_experiments.train import evaluate, train  # noqa: E402

PROB = replace(problems.get("mnist16"), batch_size=64)  # small batches: fast tests


def _params(path):
    return torch.cat([v.reshape(-1) for v in torch.load(path, weights_only=True).values()])


def test_training_is_deterministic_under_a_seed(tmp_path, digits):
    ck = [0, 5, 12]
    a = train(PROB, digits, tmp_path / "a", steps=12, seed=1, checkpoint_steps=ck, progress=False)
    b = train(PROB, digits, tmp_path / "b", steps=12, seed=1, checkpoint_steps=ck, progress=False)
    c = train(PROB, digits, tmp_path / "c", steps=12, seed=2, checkpoint_steps=ck, progress=False)
    assert a["losses"] == b["losses"] and len(a["losses"]) == 12
    assert a["losses"] != c["losses"]
    for s in ck:
        assert torch.equal(_params(checkpoint_path(tmp_path / "a", s)), _params(checkpoint_path(tmp_path / "b", s)))
    assert not torch.equal(_params(checkpoint_path(tmp_path / "a", 12)), _params(checkpoint_path(tmp_path / "c", 12)))
    assert existing_checkpoints(tmp_path / "a") == ck


def test_zero_steps_with_default_checkpoints_keeps_the_initial_model(tmp_path, digits):
    res = train(PROB, digits, tmp_path / "z", steps=0, seed=0, progress=False)
    assert res["trained_steps"] == 0 and res["losses"] == []
    assert existing_checkpoints(tmp_path / "z") == [0]


def test_resume_continues_exactly(tmp_path, digits):
    full = train(PROB, digits, tmp_path / "full", steps=40, seed=0, checkpoint_steps=[0, 10, 20, 30, 40],
                 progress=False)
    # an interrupted run: stopped at step 20, then asked for 40 steps
    part = train(PROB, digits, tmp_path / "part", steps=20, seed=0, checkpoint_steps=[0, 10, 20], progress=False)
    assert part["trained_steps"] == 20
    res = train(PROB, digits, tmp_path / "part", steps=40, seed=0, checkpoint_steps=[0, 10, 20, 30, 40],
                progress=False)
    assert res["resumed_from"] == 20 and res["trained_steps"] == 20
    assert res["losses"] == full["losses"]
    torch.testing.assert_close(_params(checkpoint_path(tmp_path / "part", 40)),
                               _params(checkpoint_path(tmp_path / "full", 40)), rtol=0, atol=0)
    # a crash after step 30's checkpoint but before its log entry: resumed from the last logged checkpoint
    log = tmp_path / "part" / "train_log.json"
    losses = json.loads(log.read_text())["losses"]
    log.write_text(json.dumps({"losses": losses[:25]}))
    again = train(PROB, digits, tmp_path / "part", steps=40, seed=0, checkpoint_steps=[0, 10, 20, 30, 40],
                  progress=False)
    assert again["resumed_from"] == 20 and again["losses"] == full["losses"]
    # nothing left to do
    done = train(PROB, digits, tmp_path / "part", steps=40, seed=0, progress=False,
                 checkpoint_steps=[0, 10, 20, 30, 40])
    assert done["trained_steps"] == 0 and done["resumed_from"] == 40


def test_checkpoint_folder_with_other_settings_is_refused(tmp_path, digits):
    train(PROB, digits, tmp_path, steps=2, seed=0, checkpoint_steps=[0, 2], progress=False)
    with pytest.raises(ValueError, match="other settings"):
        train(PROB, digits, tmp_path, steps=2, seed=5, checkpoint_steps=[0, 2], progress=False)
    with pytest.raises(ValueError, match="checkpoint_steps"):
        train(PROB, digits, tmp_path / "x", steps=2, checkpoint_steps=[3], progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        train(replace(PROB, batch_size=10_000), digits, tmp_path / "y", steps=2, progress=False)


def test_evaluate_in_batches_and_from_numpy(digits):
    model = PROB.build_model(seed=0)
    X, y = digits.split("test").batch(np.arange(500))
    loss, acc = evaluate(model, X, y)
    assert 0 < loss and 0 <= acc <= 1
    assert evaluate(model, X.numpy(), y.numpy(), batch=7, device="cpu") == pytest.approx((loss, acc), rel=1e-6)
