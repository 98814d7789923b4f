"""Loading a stand-alone script (``benchmarks/*.py``, ``examples/*.py``) as a module, for tests that call
its ``main``: the script's folder is on ``sys.path`` while it loads, so its sibling helpers import."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(folder: str, name: str):
    """The module of ``ROOT/folder/name.py``."""
    where = ROOT / folder
    spec = importlib.util.spec_from_file_location(f"_{folder}_{name}", where / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(where))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(where))
    return mod
