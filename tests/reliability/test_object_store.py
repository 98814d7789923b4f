"""Run stores on object storage (issue 21), against a real S3 API over HTTP.

moto's server mode runs as a subprocess (``tests/_s3server.py``, one per
module, a fresh bucket per test); ``s3fs`` talks to it as to AWS. Each test
drives one promise of issue 21: the same result as on local disk, a killed run
resumed after its lease expires, a second run refused while the first one
renews its lease, damaged objects found, a distributed run (``LocalCluster``,
and a scheduler and workers started as separate ``dask`` processes) writing
one store, and clear errors naming the URL before any work.
"""
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import zarr

import sketchla as sk
from sketchla.store import RunStore, StoreCorruptError, StoreLockedError, store_path
from sketchla.store.lease import LeaseLock
from sketchla.store.location import resolve

from _s3server import s3, s3_endpoint, subprocess_env  # noqa: F401 (fixtures)
from . import _helpers as h

N = h.N_INNER


def _seigh(s3, name="run", log=None, **kw):
    op = h.A if log is None else h.counting_op(log)
    return sk.seigh(op, h.N_OUTER, h.N_INNER, store=s3.url(name), storage_options=s3.options,
                    client=kw.pop("client", "sync"), **{**h.RUN, **kw})


def _done(s3, name="run", fs=None):
    """Chunks of Y with a completion record in the bucket."""
    fs = fs or s3.fs()
    prefix = f"{s3.bucket}/{name}/_done/Y/"
    try:
        objs = fs.find(prefix)
    except FileNotFoundError:
        return set()
    tails = [o[len(prefix):] for o in objs]
    return {int(t.split("/")[0]) for t in tails if t.count("/") == 1 and t.endswith("/zarr.json")}


_CHILD = textwrap.dedent("""
    import json, logging, sys, traceback
    sys.path.insert(0, {tests!r})
    logging.basicConfig(level=logging.WARNING)
    import sketchla as sk
    from reliability import _helpers as h
    op = h.counting_op({log!r}, sleep={sleep!r})
    try:
        res = sk.seigh(op, h.N_OUTER, h.N_INNER, store={url!r}, storage_options={options!r}, client="sync", **h.RUN)
        out = {{"ok": True, "eigenvalues": res.eigenvalues.tolist()}}
    except BaseException as exc:
        out = {{"ok": False, "type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}}
    with open({result!r}, "w") as f:
        json.dump(out, f)
""")


def _start_child(tmp_path, s3, log, sleep, lease, tag="child"):
    result = str(tmp_path / f"{tag}.json")
    script = _CHILD.format(tests=h.TESTS, log=str(log), sleep=sleep, url=s3.url(), options=s3.options, result=result)
    env = {**subprocess_env(), "SKETCHLA_LEASE_SECONDS": str(lease),
           "PYTHONPATH": os.pathsep.join([h.ROOT, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=h.ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, result


# --------------------------------------------------------------------------- same result as on disk
def test_seigh_on_s3_equals_local_and_reopens(s3, reference):
    res = _seigh(s3)
    assert np.array_equal(res.eigenvalues, reference[0])
    assert type(res.store.path).__name__ == "StoreURL" and res.store.path == s3.url()
    again = sk.open_result(s3.url(), mode="r", storage_options=s3.options)
    local = sk.open_result(reference[1], mode="r")
    assert np.array_equal(again.eigenvalues, reference[0])
    assert np.array_equal(np.asarray(again.eigenvectors), np.asarray(local.eigenvectors))
    assert again.store.verify("full") == {} and again.store.lock_owner() is None
    objs = set(s3.fs().find(f"{s3.bucket}/run"))
    assert {f"{s3.bucket}/run/{k}" for k in ("zarr.json", "Y/c/0/0", "_done/Y/9/zarr.json", "_stages/core/zarr.json",
                                             "Q/zarr.json")} <= objs
    assert not any("/_lock" in o for o in objs)  # the lease was given back
    assert _seigh(s3).eigenvalues.tolist() == reference[0].tolist()  # finished: reopened, nothing recomputed


def test_ssvd_and_tsqr_outputs_on_s3(s3, tmp_path):
    rng = np.random.default_rng(0)
    B = rng.standard_normal((60, 40))
    loc = sk.ssvd(B, 3, 8, seed=1, store=str(tmp_path / "ssvd"), client="sync", progress=False)
    rem = sk.ssvd(B, 3, 8, seed=1, store=s3.url("ssvd"), storage_options=s3.options, client="sync", progress=False)
    assert np.allclose(rem.S, loc.S, rtol=1e-6) and np.allclose(np.asarray(rem.U), np.asarray(loc.U), atol=1e-6)
    # tsqr: A read from S3, Q written to a new array at an S3 URL
    A = zarr.create_array(store=resolve(s3.url("A.zarr"), s3.options).zarr_store(), shape=(500, 6),
                          chunks=(128, 6), dtype="float64")
    A[:] = rng.standard_normal((500, 6))
    Q, R = sk.tsqr(A, out=s3.url("Q.zarr"), storage_options=s3.options)
    assert isinstance(Q, zarr.Array) and Q.shape == (500, 6)
    Qa = zarr.open_array(store=resolve(s3.url("Q.zarr"), s3.options).zarr_store(read_only=True), mode="r")[:]
    assert np.allclose(Qa @ R, A[:], atol=1e-10) and np.allclose(Qa.T @ Qa, np.eye(6), atol=1e-12)


# --------------------------------------------------------------------------- kill, lease, resume
def test_killed_run_is_taken_over_after_its_lease_expires(s3, tmp_path, reference, caplog, monkeypatch):
    """measure -> SIGKILL -> a second run is refused while the dead run's lease lasts, takes the
    store over once it expired, computes only the missing chunks and gives the identical result."""
    lease = 2.0
    monkeypatch.setenv("SKETCHLA_LEASE_SECONDS", str(lease))
    proc, _ = _start_child(tmp_path, s3, tmp_path / "log1", sleep=0.3, lease=lease)
    fs = s3.fs()  # one client, polled (a listing takes milliseconds; the child's chunks 0.3 s each)
    h.wait_for(lambda: len(_done(s3, fs=fs)) >= N // 2, proc=proc, what="half of the chunks", timeout=120)
    h.sigkill(proc)
    done = _done(s3)
    assert N // 2 <= len(done) < N
    ro = RunStore.open(s3.url(), mode="r", storage_options=s3.options)
    owner = ro.lock_owner()  # the dead run's lease is left behind ...
    assert owner["pid"] == proc.pid and owner["lease_seconds"] == lease
    assert ro.verify("full") == {}  # ... and every recorded chunk is intact
    if owner["expires"] - time.time() > 0.5:  # (always, unless this machine stalled for seconds)
        with pytest.raises(StoreLockedError, match=rf"pid {proc.pid} .*its lease runs until"):
            _seigh(s3, log=tmp_path / "refused")
        assert not (tmp_path / "refused").exists() or not os.listdir(tmp_path / "refused")
    time.sleep(max(0.0, owner["expires"] - time.time()) + 0.1)
    with caplog.at_level(logging.WARNING, logger="sketchla.store"):
        res = _seigh(s3, log=tmp_path / "log2")
    assert "taking over the expired lease" in caplog.text
    # only the missing ones, and the first recorded column again: the operator check
    assert h.calls_to_columns(tmp_path / "log2") == sorted([*(set(range(N)) - done), min(done)])
    assert np.array_equal(res.eigenvalues, reference[0])
    assert RunStore.open(s3.url(), mode="r", storage_options=s3.options).lock_owner() is None


def test_second_run_is_refused_while_the_first_renews_its_lease(s3, tmp_path, reference, monkeypatch):
    lease = 0.6
    monkeypatch.setenv("SKETCHLA_LEASE_SECONDS", str(lease))
    proc, result = _start_child(tmp_path, s3, tmp_path / "log1", sleep=0.25, lease=lease)
    fs = s3.fs()
    h.wait_for(lambda: len(_done(s3, fs=fs)) >= 1, proc=proc, what="a measured chunk", timeout=120)
    with pytest.raises(StoreLockedError, match=rf"being written by another run: pid {proc.pid}"):
        _seigh(s3)
    time.sleep(2 * lease)  # longer than the lease: only the heartbeat keeps it
    assert proc.poll() is None, "the first run ended too early for this test"
    with pytest.raises(StoreLockedError, match=rf"pid {proc.pid}"):
        _seigh(s3)
    out = h.finish(proc, result)
    assert out["ok"], out
    assert out["eigenvalues"] == reference[0].tolist()


def test_conditional_writes_of_the_s3_server_and_simultaneous_lease_takers(s3):
    """What moto does with S3's conditional writes, and that the lease ends with one holder."""
    fs = s3.fs()
    p = f"{s3.bucket}/cond"
    fs.pipe_file(p, b"1", mode="create")
    with pytest.raises(FileExistsError):  # If-None-Match: * on an existing key: 412
        fs.pipe_file(p, b"2", mode="create")
    loc = resolve(s3.url("objects"), s3.options)
    assert loc.conditional_writes
    etag = loc.replace_if("x", b"a", None)
    assert loc.replace_if("x", b"b", '"not-the-etag"') is None  # If-Match refused: 412
    assert loc.replace_if("x", b"c", etag) and fs.cat_file(f"{s3.bucket}/objects/x") == b"c"
    assert loc.create_exclusive("x", b"d") is None and loc.create_exclusive("y", b"e") is not None
    RunStore.open(s3.url(), {"seed": 0}, storage_options=s3.options)
    for _trial in range(3):
        barrier = threading.Barrier(8)
        won, refused = [], []

        def take():
            lock = LeaseLock(resolve(s3.url(), s3.options))
            barrier.wait()
            try:
                won.append((lock, lock.acquire()))
            except StoreLockedError:
                refused.append(1)

        threads = [threading.Thread(target=take) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(won) == 1 and len(refused) == 7
        lock, token = won[0]
        lock.release(token)
        assert lock.owner() is None


# --------------------------------------------------------------------------- damage
def test_damaged_objects_are_found_and_recomputed(s3, reference):
    _seigh(s3)
    fs, run = s3.fs(), f"{s3.bucket}/run"
    ro = RunStore.open(s3.url(), mode="r", storage_options=s3.options)
    y3 = fs.cat_file(f"{run}/Y/c/0/3")
    fs.pipe_file(f"{run}/Y/c/0/3", y3[:100] + bytes([y3[100] ^ 0xFF]) + y3[101:])  # same size, one byte changed
    fs.pipe_file(f"{run}/Y/c/0/5", fs.cat_file(f"{run}/Y/c/0/5")[:-8])  # truncated
    fs.rm_file(f"{run}/Q/c/0/0")  # missing
    assert set(ro.verify("size")) == {"Y/5", "stage Q", "stage core"}
    full = ro.verify("full")
    assert set(full) == {"Y/3", "Y/5", "stage Q", "stage core"} and "CRC-32" in full["Y/3"]
    assert "Q/c/0/0 is missing" in full["stage Q"]
    with pytest.raises(StoreCorruptError, match=r"stage 'core' of store 's3://.*' is damaged: Q/c/0/0 is missing"):
        sk.open_result(s3.url(), mode="r", storage_options=s3.options)
    res = _seigh(s3, verify="full")  # damaged chunks and stages are recomputed, never used
    assert np.array_equal(res.eigenvalues, reference[0])
    assert ro.verify("full") == {}


# --------------------------------------------------------------------------- clusters
def test_local_cluster_processes_write_one_s3_store(s3, cluster, reference):
    res = _seigh(s3, client=cluster)
    assert np.array_equal(res.eigenvalues, reference[0])
    assert res.store.verify("full") == {}
    workers = {w for w, _ in cluster.run(os.getpid).items()}
    assert len(workers) == 2


@pytest.mark.slow
def test_scheduler_and_workers_as_separate_processes(s3, reference):
    """``dask scheduler`` and two ``dask worker`` processes (as on several hosts) write one S3 store."""
    from _s3server import free_port

    env = {**subprocess_env(), "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "error",
           "PYTHONPATH": os.pathsep.join([h.ROOT, os.environ.get("PYTHONPATH", "")])}
    address = f"tcp://127.0.0.1:{free_port()}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", address.rsplit(":", 1)[1], "--dashboard-address", ":0"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1",
                 "--no-dashboard", "--host", "127.0.0.1"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=60) as c:
            c.wait_for_workers(2, timeout=60)
            pids = set(c.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        res = _seigh(s3, client=address)  # client="tcp://...": the README's multi-host set-up
        assert np.array_equal(res.eigenvalues, reference[0])
        assert res.store.verify("full") == {}
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


# --------------------------------------------------------------------------- bad input
class _CountingCallable:
    def __init__(self):
        self.calls = 0

    def __call__(self, X):
        self.calls += 1
        return h.A @ X


def _op(counter):
    return sk.aslinearoperator(counter, shape=h.A.shape, symmetric=True)


def _no_credentials(monkeypatch, tmp_path):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
              "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
              "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_bad_endpoint_credentials_bucket_give_clear_errors_before_any_work(s3, tmp_path, monkeypatch):
    from _s3server import free_port

    counter = _CountingCallable()
    url = s3.url("run")
    dead = {"endpoint_url": f"http://127.0.0.1:{free_port()}", "key": "k", "secret": "s"}
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match=rf"store URL '{url}'.*cannot reach the object store"):
        sk.seigh(_op(counter), h.N_OUTER, h.N_INNER, store=url, storage_options=dead, client="sync", **h.RUN)
    assert time.perf_counter() - t0 < 30  # s3fs's retries: ~4 s here
    pattern = r"store URL 's3://no-such-bucket-x/{}'.*bucket 'no-such-bucket-x' does not exist"
    with pytest.raises(FileNotFoundError, match=pattern.format("run")):
        sk.seigh(_op(counter), h.N_OUTER, h.N_INNER, store="s3://no-such-bucket-x/run", storage_options=s3.options,
                 client="sync", **h.RUN)
    with pytest.raises(FileNotFoundError, match=pattern.format("run")):
        sk.open_result("s3://no-such-bucket-x/run", storage_options=s3.options)
    with pytest.raises(FileNotFoundError, match=pattern.format("Q.zarr")):
        sk.tsqr(zarr.zeros((8, 2)), out="s3://no-such-bucket-x/Q.zarr", storage_options=s3.options)
    _no_credentials(monkeypatch, tmp_path)
    with pytest.raises(PermissionError, match=rf"store URL '{url}'.*no credentials were found"):
        sk.seigh(_op(counter), h.N_OUTER, h.N_INNER, store=url, storage_options={"endpoint_url": s3.endpoint},
                 client="sync", **h.RUN)
    assert counter.calls == 0
    monkeypatch.undo()
    assert s3.fs().find(s3.bucket) == []  # nothing was written anywhere


@pytest.mark.skipif(__import__("importlib").util.find_spec("gcsfs") is not None, reason="gcsfs is installed here")
def test_scheme_without_its_filesystem_installed():
    with pytest.raises(ImportError, match=r"store URL 'gs://bucket/run': no filesystem for 'gs://' is installed.*"
                                          r"pip install 'sketchla\[cloud\]' \(or gcsfs\)"):
        sk.seigh(h.A, h.N_OUTER, h.N_INNER, store="gs://bucket/run", client="sync", **h.RUN)
    assert store_path("s3://b/r") == "s3://b/r"
