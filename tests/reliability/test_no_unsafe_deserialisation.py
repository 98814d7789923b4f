"""No unsafe deserialisation: nothing in the code base unpickles a file, and a store crafted to
carry a pickle payload is refused without running it.

The static check walks the syntax tree of every module of ``sketchla``,
``overlap_experiments`` and ``benchmarks`` and rejects calls that can execute
code from data: ``pickle``/``cloudpickle``/``dill``/``marshal``/``shelve``/
``joblib`` loaders, ``pandas.read_pickle``, ``yaml.load``/``unsafe_load``,
``numpy.load(..., allow_pickle=<not False>)`` and ``torch.load`` without a
literal ``weights_only=True``. (Dask's network protocol pickles task data between
processes of one cluster: that is messages between trusted processes, not files.)
"""
import ast
import json
import os
import pickle
import shutil

import pytest

import sketchla as sk
from sketchla.store import RunStore, StoreCorruptError

from . import _helpers as h

PACKAGES = ("sketchla", "overlap_experiments", "benchmarks")
_LOADER_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "marshal", "joblib", "jsonpickle"}
_LOADERS = {"load", "loads", "Unpickler", "decode"}


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _kw(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_calls(source: str, filename: str = "<src>") -> list[str]:
    """``file:line: what`` for every call/import in ``source`` that may unpickle data."""
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _LOADER_MODULES:
            bad = [a.name for a in node.names if a.name in _LOADERS]
            if bad:
                out.append(f"{filename}:{node.lineno}: from {node.module} import {', '.join(bad)}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        mod, _, fn = name.rpartition(".")
        root = mod.split(".")[0]
        where = f"{filename}:{node.lineno}: {name}(...)"
        if root in _LOADER_MODULES and fn in _LOADERS:
            out.append(where)
        elif name in ("shelve.open", "pd.read_pickle", "pandas.read_pickle", "yaml.unsafe_load", "yaml.full_load"):
            out.append(where)
        elif name == "yaml.load":
            loader = _kw(node, "Loader")
            if loader is None or "Safe" not in _dotted(loader):
                out.append(where + " without Loader=yaml.SafeLoader")
        elif fn == "load" and root in ("np", "numpy"):
            ap = _kw(node, "allow_pickle")
            if ap is not None and not (isinstance(ap, ast.Constant) and ap.value is False):
                out.append(where + " with allow_pickle")
        elif fn == "load" and root == "torch":
            wo = _kw(node, "weights_only")
            if not (isinstance(wo, ast.Constant) and wo.value is True):
                out.append(where + " without weights_only=True")
    return out


def test_scanner_catches_what_it_should():
    bad = """
import pickle, torch, numpy as np, yaml
from cloudpickle import loads
pickle.load(open("f", "rb"))
torch.load("ckpt.pt")
torch.load("ckpt.pt", weights_only=False)
np.load("a.npy", allow_pickle=True)
yaml.load(s)
"""
    good = """
import torch, numpy as np, pickle, yaml
torch.load("ckpt.pt", weights_only=True, map_location="cpu")
np.load("a.npy")
np.load("a.npy", allow_pickle=False)
pickle.dumps(3)
yaml.load(s, Loader=yaml.SafeLoader)
"""
    assert len(unsafe_calls(bad)) == 6
    assert unsafe_calls(good) == []


def test_no_module_unpickles_files():
    found, n_files = [], 0
    for pkg in PACKAGES:
        for root, _, files in os.walk(os.path.join(h.ROOT, pkg)):
            for f in files:
                if f.endswith(".py"):
                    p = os.path.join(root, f)
                    with open(p, encoding="utf-8") as fh:
                        found += unsafe_calls(fh.read(), os.path.relpath(p, h.ROOT))
                    n_files += 1
    assert n_files > 20
    assert found == [], "unsafe deserialisation:\n" + "\n".join(found)


class _Payload:
    """Unpickling this creates a marker file: proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_store_carrying_a_pickle_payload_is_refused_unexecuted(tmp_path, reference):
    """A finished run's store whose 'eigenvalues' array was replaced by a Zarr v2 array of
    pickled objects: opening it fails, and the payload never runs."""
    import numpy as np

    path = str(tmp_path / "run")
    shutil.copytree(reference[1], path)
    marker = str(tmp_path / "PAYLOAD_RAN")
    arr = os.path.join(path, "eigenvalues")
    os.remove(os.path.join(arr, "zarr.json"))
    with open(os.path.join(arr, ".zarray"), "w") as f:
        json.dump({"zarr_format": 2, "shape": [1], "chunks": [1], "dtype": "|O", "compressor": None,
                   "fill_value": None, "order": "C", "filters": [{"id": "pickle", "protocol": 5}]}, f)
    with open(os.path.join(arr, "0"), "wb") as f:
        f.write(pickle.dumps(np.array([_Payload(marker)], dtype=object)))
    with pytest.raises(StoreCorruptError, match=r"stage 'core' .* damaged: eigenvalues/zarr.json is missing"):
        sk.open_result(path, mode="r")
    with pytest.raises(Exception):
        RunStore.open(path, mode="r").group["eigenvalues"][...]
    import zarr

    with pytest.raises(Exception):  # even Zarr itself, asked directly, refuses the pickle codec
        zarr.open_array(arr, mode="r")[...]
    assert not os.path.exists(marker)
