"""The README's promises: its library example runs and is right, and CI runs its test command."""
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_example_runs_and_finds_the_spectrum(tmp_path, monkeypatch, capsys):
    code = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    top = np.sort(np.abs(ns["lam"]))[::-1][:30]
    np.testing.assert_allclose(np.abs(ns["res"].eigenvalues[:30]), top, rtol=1e-4)
    np.testing.assert_allclose(ns["res2"].eigenvalues, ns["res"].eigenvalues)
    Q, R, A = ns["Q"], ns["R"], ns["A"]
    np.testing.assert_allclose(np.asarray(Q[:]) @ R, A[:], atol=1e-4)
    assert (tmp_path / "run.zarr").is_dir() and (tmp_path / "Q.zarr").is_dir()


def test_ci_runs_the_readme_test_command():
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    test_cmd = blocks[1].strip()
    assert test_cmd == "python -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1].strip() == test_cmd


def test_readme_and_executor_agree_on_the_client_values():
    """Every scheduler name the README offers is accepted, and every name the code accepts is offered."""
    import pytest

    from sketchla import executor

    start = README.index("Where the\nwork runs")
    para = README[start:README.index("\n\n", start)]
    named = set(re.findall(r'`"([a-z]+)"`', para))
    assert named == {"threads", "sync", "processes"}
    for name in named:
        assert executor.check_client(name) == name
    assert set(executor.LOCAL_SCHEDULERS) - {"synchronous"} | {executor.PROCESSES} == named
    assert "`None`" in para or "`client=None`" in para
    for value in (None, False, "tcp://127.0.0.1:8786"):
        assert executor.check_client(value) == value
    with pytest.raises(ValueError):
        executor.check_client("process")
