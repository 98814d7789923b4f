"""Where a store lives (sketchla/store/location.py): paths, file:// and other URLs, the
StoreURL that carries storage_options to workers, clear errors for schemes nothing can
open; and a whole run through fsspec's in-memory filesystem (the generic, non-S3 path)."""
import os
import pickle

import numpy as np
import pytest

import sketchla as sk
from sketchla.store import RunStore, StoreLockedError, StoreURL, store_path
from sketchla.store.lease import LeaseLock
from sketchla.store.location import FsspecLocation, LocalLocation, key_parts, resolve
from sketchla.store.lock import DirectoryLock, writer_lock

from reliability import _helpers as h  # tests/ is on sys.path (pytest rootdir conftest)


def test_paths_and_file_urls_are_local_stores(tmp_path):
    for given in (tmp_path / "a", str(tmp_path / "a"), f"file://{tmp_path}/a", f"FILE://localhost{tmp_path}/a"):
        loc = resolve(given)
        assert isinstance(loc, LocalLocation) and loc.path == str(tmp_path / "a")
    s = RunStore.open(f"file://{tmp_path}/run", {"seed": 0})
    assert s.path == str(tmp_path / "run") and type(s.path) is str  # the local store, as before
    assert isinstance(writer_lock(s.path), DirectoryLock)
    with pytest.raises(ValueError, match="storage_options are for URLs"):
        RunStore.open(tmp_path / "run", {"seed": 0}, storage_options={"anon": True})
    with pytest.raises(ValueError, match="local file URL"):
        resolve(f"file://{tmp_path}/x", {"anon": True})
    with pytest.raises(ValueError, match="must name a local path"):
        resolve("file://otherhost/x")
    with pytest.raises(TypeError, match="storage_options must be a dict"):
        resolve("s3://b/x", ["endpoint"])


def test_store_url_carries_its_options_and_hides_them():
    u = store_path("s3://bucket/run/", {"endpoint_url": "http://h:1", "secret": "s3cr3t"})
    assert isinstance(u, StoreURL) and u == "s3://bucket/run" and str(u) == "s3://bucket/run"
    assert "s3cr3t" not in repr(u) and "s3cr3t" not in f"{u!r} {u}"
    v = pickle.loads(pickle.dumps(u))
    assert v == u and v.storage_options == u.storage_options
    loc = resolve(v, {"anon": False})  # options given again are merged
    assert isinstance(loc, FsspecLocation) and loc.storage_options["anon"] is False
    assert loc.storage_options["endpoint_url"] == "http://h:1"
    assert pickle.loads(pickle.dumps(loc)).storage_options == loc.storage_options


def test_unknown_or_uninstalled_schemes_fail_before_anything(tmp_path, monkeypatch):
    import importlib

    reg = importlib.import_module("fsspec.registry")  # the module (fsspec.registry is a mapping)

    with pytest.raises(ValueError, match=r"store URL 'nosuchscheme://b/run': no fsspec filesystem knows"):
        RunStore.open("nosuchscheme://b/run", {"seed": 0})
    monkeypatch.setitem(reg.known_implementations, "sktest",
                        {"class": "sketchla_no_such_module.FS", "err": "Install sketchla-no-such-module"})
    calls = []
    op = sk.aslinearoperator(lambda X: calls.append(1) or h.A @ X, shape=h.A.shape, symmetric=True)
    with pytest.raises(ImportError, match=r"store URL 'sktest://b/run': no filesystem for 'sktest://' is "
                                          r"installed \(Install sketchla-no-such-module\); install the fsspec"):
        sk.seigh(op, 2, 4, store="sktest://b/run", client="sync", progress=False)
    assert calls == []


@pytest.mark.parametrize("key,ok", [("c/0/1", True), ("zarr.json", True), ("c.0.1", True), ("../x", False),
                                    ("c/../../x", False), ("/etc/passwd", False), ("", False), ("c//0", False),
                                    ("c\\..\\x", False), (3, False), ("c/./0", False)])
def test_key_parts(key, ok):
    assert (key_parts(key) is not None) == ok


def test_a_run_through_fsspec_memory_filesystem(tmp_path):
    """The generic fsspec path (no conditional writes: check-then-write and read-back)
    gives the local result, a lease lock, records, manifests and verify."""
    import fsspec

    url = f"memory://sketchla-tests/{os.getpid()}-{tmp_path.name}/run"
    ref = sk.seigh(h.A, h.N_OUTER, h.N_INNER, store=str(tmp_path / "ref"), client="sync", **h.RUN)
    res = sk.seigh(h.A, h.N_OUTER, h.N_INNER, store=url, client="threads", **h.RUN)
    assert np.array_equal(res.eigenvalues, ref.eigenvalues)
    s = RunStore.open(url, mode="r+")
    assert isinstance(s.location, FsspecLocation) and not s.location.conditional_writes
    assert isinstance(writer_lock(s.path), LeaseLock)
    assert s.verify("full") == {} and s.lock_owner() is None and s.done_keys("Y") == {str(j) for j in range(10)}
    with s.lock():
        owner = s.lock_owner()
        assert owner["pid"] == os.getpid() and owner["expires"] > owner["lease_seconds"]
        with pytest.raises(StoreLockedError, match="is being written by another run"):
            LeaseLock(resolve(url)).acquire()
    fs = fsspec.filesystem("memory")
    chunk = s.location.join("Y/c/0/3")
    n = len(fs.cat_file(chunk))
    fs.pipe_file(chunk, fs.cat_file(chunk)[:-1])  # truncated
    assert s.verify_done("Y") == {"3": f"Y/c/0/3 has {n - 1} bytes, {n} were written"}
    RunStore.delete(url)
    assert not fs.exists(s.location.join())


def _memory_store(tmp_path, name):
    return f"memory://sketchla-tests/{os.getpid()}-{tmp_path.name}/{name}"


def test_lease_expiry_takeover_and_loss(tmp_path, monkeypatch, caplog):
    """The lease on the generic path: an expired record is taken over, a live one refused,
    and a lease taken from a run while it holds it is reported when the run gives it back."""
    import json
    import logging
    import time

    import fsspec

    from sketchla.store.lease import RECORD

    monkeypatch.setenv("SKETCHLA_LEASE_SECONDS", "0.4")
    url = _memory_store(tmp_path, "lease")
    s = RunStore.open(url, {"seed": 0})
    fs, rec = fsspec.filesystem("memory"), s.location.join(RECORD)

    def plant(expires, token="t" * 32):
        owner = {"pid": 4242, "host": "elsewhere.example", "since": "then", "token": token,
                 "lease_seconds": 0.4, "expires": expires}
        fs.pipe_file(rec, json.dumps({"attributes": {"sketchla_lock": owner}, "zarr_format": 3,
                                      "node_type": "group"}).encode())

    plant(time.time() + 30)
    with pytest.raises(StoreLockedError, match=r"pid 4242 on host 'elsewhere.example'.*lease runs until"):
        with s.lock():
            pass
    plant(time.time() - 1)  # its owner stopped renewing it
    with caplog.at_level(logging.WARNING, logger="sketchla.store"):
        with s.lock():
            assert s.lock_owner()["pid"] == os.getpid()
            time.sleep(0.5)  # longer than the lease: the heartbeat keeps it
            assert s.lock_owner()["pid"] == os.getpid() and s.lock_owner()["beats"] >= 1
    assert "taking over the expired lease of pid 4242" in caplog.text and s.lock_owner() is None
    with pytest.raises(StoreLockedError, match="this run lost its lease while it ran"):
        with s.lock():
            plant(time.time() + 30, token="u" * 32)  # another run took it (as after a stall)
            time.sleep(0.3)
    assert s.lock_owner()["token"] == "u" * 32  # the other run's lock is left alone
    with pytest.raises(ValueError, match="SKETCHLA_LEASE_SECONDS"):
        monkeypatch.setenv("SKETCHLA_LEASE_SECONDS", "soon")
        with RunStore.open(_memory_store(tmp_path, "other"), {"seed": 0}).lock():
            pass
