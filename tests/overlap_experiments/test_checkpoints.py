"""Checkpoints on disk: the dense schedule, plain state dicts loaded with ``weights_only=True``."""
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from overlap_experiments import problems  # noqa: E402
from overlap_experiments.checkpoints import (  # noqa: E402
    checkpoint_path, dense_schedule, load_checkpoint, load_model,
)
from overlap_experiments.train import train  # noqa: E402

PROB = replace(problems.get("mnist16"), batch_size=64)


def test_dense_schedule():
    s = dense_schedule(1000)
    assert s[0] == 0 and s[-1] == 1000 and s == sorted(set(s))
    assert set(range(0, 251, 5)) <= set(s)  # every 5th step early (Figs. 15-16)
    assert {1, 2, 3, 500, 1000} <= set(s)  # log-spaced over the whole run
    with pytest.raises(ValueError, match="every"):
        dense_schedule(100, every=0)


def test_checkpoint_round_trip_with_weights_only(tmp_path, digits):
    train(PROB, digits, tmp_path, steps=3, seed=0, checkpoint_steps=[3], progress=False)
    path = checkpoint_path(tmp_path, 3)
    state = torch.load(path, weights_only=True)  # a plain state dict: no pickled code
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    model = load_model(PROB, path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])
    assert sum(v.numel() for v in state.values()) == 7030


class _NotAStateDict:
    pass


def test_bad_checkpoints_are_refused(tmp_path):
    model = PROB.build_model(seed=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt", model)
    p = tmp_path / "obj.pt"
    torch.save({"model": _NotAStateDict()}, p)  # arbitrary pickled object: refused by weights_only
    with pytest.raises(ValueError, match="weights_only"):
        load_checkpoint(p, model)
    torch.save([torch.zeros(3)], p)
    with pytest.raises(ValueError, match="not a state dict"):
        load_checkpoint(p, model)
    torch.save({"0.weight": torch.zeros(3)}, p)
    with pytest.raises(ValueError, match="keys"):
        load_checkpoint(p, model)
    bad = {k: torch.zeros(1) for k in model.state_dict()}
    torch.save(bad, p)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_checkpoint(p, model)
    p.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a plain state dict"):
        load_checkpoint(p, model)
