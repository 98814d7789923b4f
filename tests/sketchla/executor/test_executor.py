"""Scheduler resolution: explicit client, address, threads, embedded LocalCluster (closed after),
client=None never starting processes; BLAS threads of local schedulers."""
import importlib.util

import dask
import numpy as np
import pytest

import sketchla as sk
from sketchla import executor
from sketchla.executor import client_context, get_client


def test_no_cluster_options():
    with client_context(False) as c:
        assert c == "threads"
    with client_context(address="threads") as c:
        assert c == "threads"
    with client_context(address="sync") as c:
        assert c == "sync"
    with client_context("threads") as c:
        assert c == "threads"
    with client_context(None) as c:
        assert c == "threads"


@pytest.mark.slow
def test_explicit_client_used_and_not_closed(cluster_client):
    with client_context(cluster_client) as c:
        assert c is cluster_client
    assert cluster_client.status == "running"


@pytest.mark.slow
def test_address_connects_and_closes_own_client(cluster_client):
    addr = cluster_client.scheduler.address
    with client_context(address=addr) as c:
        assert c is not cluster_client and c.scheduler.address == addr
        assert c.submit(sum, [1, 2]).result() == 3
    assert c.status == "closed" and cluster_client.status == "running"


@pytest.mark.slow
def test_embedded_cluster_is_created_and_closed():
    with client_context(n_workers=1, processes=False, threads_per_worker=1) as c:
        assert len(c.scheduler_info()["workers"]) == 1
        cluster = c.cluster
    assert c.status == "closed" and cluster.status.name == "closed"
    c, close = get_client(n_workers=1, processes=False)
    assert c.submit(abs, -2).result() == 2
    close()
    assert c.status == "closed"


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(client=3), TypeError, "client"),
    (dict(address=5), TypeError, "address"),
    (dict(address="nowhere"), ValueError, "address"),
    (dict(client="tcp://a:1", address="tcp://b:2"), ValueError, "address"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        with client_context(**kwargs):
            pass


@pytest.mark.skipif(importlib.util.find_spec("dask_cuda") is not None, reason="dask-cuda installed")
def test_gpu_without_dask_cuda_is_a_clear_error():
    with pytest.raises(ImportError, match="dask-cuda"):
        with client_context(gpu=True):
            pass


@pytest.mark.gpu
def test_local_cuda_cluster():
    pytest.importorskip("dask_cuda")
    with client_context(gpu=True, n_workers=1) as c:
        assert len(c.scheduler_info()["workers"]) == 1


def test_top_level_names():
    assert sk.client_context is client_context and sk.get_client is get_client


def test_none_never_starts_processes(monkeypatch, tmp_path):
    """client=None: the default Client if one exists, else threads -- whatever the work; an
    operator built on the workers is then built here. Processes only when asked."""
    def no_cluster(*args, **kwargs):
        raise AssertionError("an embedded cluster was started without being asked for")

    monkeypatch.setattr(executor, "_embedded_cluster", no_cluster)
    rec = sk.RecipeOperator(np.eye, 4, shape=(4, 4), dtype="float64", symmetric=True)
    with client_context(None) as c:
        assert c == "threads"
    with executor.run_schedulers(None) as (for_measure, for_linalg):
        assert for_measure == "threads" and for_linalg is None
    store = sk.store.RunStore.open(tmp_path / "run", {"x": 1})
    big = sk.TestMatrix((4, 3), seed=0, name="omega", dtype="float64")
    Y = sk.measure(rec, big, store, "Y", progress=False)  # a recipe: was an embedded cluster before
    np.testing.assert_array_equal(Y[:], big.toarray())


def test_processes_and_n_workers_ask_for_a_cluster(monkeypatch):
    asked = []
    monkeypatch.setattr(executor, "_embedded_cluster", lambda *a: (asked.append(a) or "cluster", None))
    for kwargs in (dict(client="processes"), dict(address="processes"), dict(n_workers=2), dict(gpu=True)):
        with client_context(**kwargs) as c:
            assert c == "cluster"
    gpu, n_workers = zip(*[(a[0], a[1]) for a in asked])
    assert gpu == (False, False, False, True) and n_workers == (None, None, 2, None)
    assert executor.check_client("processes") == "processes"


@pytest.mark.parametrize("value,exc", [(3, TypeError), (True, TypeError), ("process", ValueError),
                                       ("", ValueError), (object(), TypeError)])
def test_check_client_refuses_before_anything(value, exc):
    with pytest.raises(exc, match="client"):
        executor.check_client(value)


@pytest.mark.slow
def test_processes_runs_on_worker_processes(tmp_path):
    """client="processes" (listed in the README) starts a LocalCluster of worker processes and closes it."""
    import os

    with client_context("processes", n_workers=1, threads_per_worker=1) as c:
        assert c.submit(os.getpid).result() != os.getpid()
        cluster = c.cluster
    assert c.status == "closed" and cluster.status.name == "closed"
    A = np.diag([8.0, -7.0, 0, 0, 0, 0, 0, 0])  # rank 2: a 2-of-4 sketch is exact
    res = sk.seigh(A, 2, 4, store=str(tmp_path / "run"), client="processes", dtype="float64", progress=False)
    np.testing.assert_allclose(res.eigenvalues, [8.0, -7.0], rtol=1e-8)


def test_worker_threads_of_local_schedulers():
    with dask.config.set(scheduler="sync"):
        assert executor._worker_threads(None) == (1, True)
    with dask.config.set(scheduler="threads", num_workers=3):
        assert executor._worker_threads(None) == (3, True)
