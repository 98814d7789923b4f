"""Bad input to the experiments' command line and checkpoint loader: a clear message, exit
status 2, no work started; a checkpoint that is not a state dict is refused without
running any pickled code (``torch.load(weights_only=True)``)."""
import pickle

import pytest

torch = pytest.importorskip("torch")

from overlap_experiments import checkpoints, cli  # noqa: E402


def _run_cli(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # refused by the parser
        code = exc.code
    return code, capsys.readouterr().err


def test_cli_unknown_problem(tmp_path, capsys):
    code, err = _run_cli(["run", "resnet9000", "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert "invalid choice: 'resnet9000'" in err and "mnist16" in err and "imagenet_resnet18" in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_cli_missing_data_path(tmp_path, capsys):
    missing = tmp_path / "no-such-mnist"
    code, err = _run_cli(["run", "mnist16", "--quick", "--out", str(tmp_path / "out"),
                          "--data-root", str(missing)], capsys)
    assert code == 2
    assert f"data_root={str(missing)!r} does not exist" in err
    assert not (tmp_path / "out").exists()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("content", ["list", "non-tensor values", "pickled object", "garbage bytes", "empty dict"])
def test_checkpoint_that_is_not_a_state_dict(tmp_path, content):
    path, marker = tmp_path / "step_000010.pt", tmp_path / "PAYLOAD_RAN"
    if content == "list":
        torch.save([torch.zeros(3)], path)
    elif content == "non-tensor values":
        torch.save({"w": [1.0, 2.0]}, path)
    elif content == "pickled object":
        with open(path, "wb") as f:
            pickle.dump({"w": _Payload(str(marker))}, f)
    elif content == "garbage bytes":
        path.write_bytes(b"\x80\x04not a checkpoint")
    else:
        torch.save({}, path)
    with pytest.raises(ValueError, match=r"checkpoint .* is not a (plain )?state dict"):
        checkpoints.load_checkpoint(path)
    assert not marker.exists()


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*step_000001.pt' does not exist"):
        checkpoints.load_checkpoint(tmp_path / "step_000001.pt")
