"""The package's face: the documented top-level names, lazy imports, and the layers (imports go downward)."""
import ast
import os
import subprocess
import sys

import pytest

import sketchla as sk

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PACKAGE = os.path.join(ROOT, "sketchla")

#: top-level names the experiments, the benchmarks and the README use (docs/ARCHITECTURE.md, "Public API")
PUBLIC = ["LinearOperator", "RecipeOperator", "clear_recipe_cache", "aslinearoperator", "TestMatrix", "measure",
          "tsqr", "lstsq", "inner", "inner_products", "matmul", "seigh", "ssvd", "open_result", "seigh_core",
          "ssvd_core", "BlockPlan", "client_context", "get_client", "get_array_module", "json_default", "grassmann",
          "TailDominatedWarning", "IllConditionedCoreWarning"]

#: the layers of docs/ARCHITECTURE.md, top down: a module imports only from its own row's package or lower rows
LAYERS = [
    {"decompositions"},
    {"measurement", "linalg"},
    {"store", "projection"},
    {"operators", "random", "graph_keys", "grassmann"},
    {"executor", "blocking", "backend", "_version"},
]


def test_public_names_resolve_and_are_listed():
    for name in PUBLIC:
        assert getattr(sk, name) is not None and name in sk.__all__ and name in dir(sk)
    assert callable(sk.measure) and sk.measure.__module__ == "sketchla.measurement"
    with pytest.raises(AttributeError):
        sk.no_such_name


def test_import_is_lazy():
    code = "import sys, sketchla; print(sorted(m for m in ('dask', 'zarr', 'distributed') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def _top(module_path: str) -> str:
    """First component below sketchla/ of a file path ("linalg", "measurement", ...)."""
    rel = os.path.relpath(module_path, PACKAGE)
    return rel.split(os.sep)[0].removesuffix(".py")


def _imported_tops(path: str):
    """Names of sketchla's top-level modules/packages that ``path`` imports (relative or absolute)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    depth = len(os.path.relpath(path, PACKAGE).split(os.sep)) - 1  # 0: sketchla/x.py, 1: sketchla/pkg/x.py
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.split(".")[0] == "sketchla":
                    parts = node.module.split(".")[1:]
                    yield from ([parts[0]] if parts else [a.name for a in node.names])
            elif node.level - 1 == depth:  # relative to sketchla/
                if node.module:
                    yield node.module.split(".")[0]
                else:
                    yield from (a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "sketchla" and "." in a.name:
                    yield a.name.split(".")[1]


def test_layers_import_downward_only():
    row = {name: i for i, names in enumerate(LAYERS) for name in names}
    bad = []
    for dirpath, _, files in os.walk(PACKAGE):
        for f in files:
            if not f.endswith(".py") or os.path.join(dirpath, f) == os.path.join(PACKAGE, "__init__.py"):
                continue
            path = os.path.join(dirpath, f)
            me = _top(path)
            assert me in row, f"{me} is on no layer of docs/ARCHITECTURE.md"
            for other in set(_imported_tops(path)) - {me, "__version__"}:
                if row.get(other, -1) <= row[me]:
                    bad.append(f"{os.path.relpath(path, ROOT)} imports sketchla.{other}")
    assert not bad, "imports that do not go downward:\n" + "\n".join(sorted(bad))
