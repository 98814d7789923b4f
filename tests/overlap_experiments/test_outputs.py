"""The output folder: disk use by part, and ``clean`` (SEIGH stores deleted, stores in use kept)."""
import pytest

from overlap_experiments import cli, outputs


def _file(path, n):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * n)


@pytest.fixture
def run_folder(tmp_path):
    _file(tmp_path / "seigh" / "train_step000000_aaa.zarr" / "Y" / "c" / "0", 3000)
    _file(tmp_path / "seigh" / "train_step000000_aaa.zarr" / "zarr.json", 100)
    _file(tmp_path / "seigh" / "test_step000000_bbb.zarr" / "Y" / "c" / "0", 2000)
    _file(tmp_path / "analysis" / "exact_train_step000000.npz", 700)
    _file(tmp_path / "checkpoints" / "step_000000.pt", 50)
    _file(tmp_path / "results.json", 20)
    _file(tmp_path / "fig01_left_overlap_vs_step.png", 5)
    return tmp_path


def test_disk_use_by_part(run_folder):
    use = outputs.disk_use(run_folder)
    assert use["parts"] == {"seigh": 5100, "analysis": 700, "checkpoints": 50, "files": 25}
    assert use["total"] == 5875
    assert outputs.describe_use(use) == "5.9 kB: seigh 5.1 kB, analysis 700 B, checkpoints 50 B, files 25 B"


@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (24_300, "24 kB"), (438_000_000, "438 MB"),
                                     (1_234_000_000, "1.2 GB")])
def test_format_bytes(n, text):
    assert outputs.format_bytes(n) == text


def test_clean_deletes_stores_but_not_one_in_use(run_folder, capsys):
    (run_folder / "seigh" / "test_step000000_bbb.zarr" / "_lock").mkdir()  # a run is writing it
    dry = outputs.clean(run_folder, dry_run=True)
    assert dry == {"stores": 1, "bytes": 3100}
    assert (run_folder / "seigh" / "train_step000000_aaa.zarr").is_dir()
    assert cli.main(["clean", str(run_folder)]) == 0
    assert "deleted 1 SEIGH stores, 3.1 kB" in capsys.readouterr().out
    assert not (run_folder / "seigh" / "train_step000000_aaa.zarr").exists()
    assert (run_folder / "seigh" / "test_step000000_bbb.zarr" / "Y").is_dir()  # kept
    assert (run_folder / "analysis" / "exact_train_step000000.npz").is_file()  # everything else stays
    assert outputs.clean(run_folder) == {"stores": 0, "bytes": 0}


def test_clean_of_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["clean", str(tmp_path / "nope")]) == 2
    assert "DIR=" in capsys.readouterr().err
