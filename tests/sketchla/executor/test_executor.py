"""Scheduler resolution: explicit client, address, threads, embedded LocalCluster (closed after);
the small-work rule; BLAS threads of local schedulers."""
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
    with client_context(None, small=True) as c:
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


def test_small_work_rule():
    op = sk.aslinearoperator(np.eye(4))
    assert executor.is_small(op, executor.SMALL_WORK_BYTES)
    assert not executor.is_small(op, executor.SMALL_WORK_BYTES + 1)
    assert not executor.is_small(None, 0)
    rec = sk.RecipeOperator(np.eye, 4, shape=(4, 4), dtype="float64", symmetric=True)
    assert not executor.is_small(rec, 0) and not executor.is_small(rec.H, 0)  # built on the workers
    with executor.run_schedulers(None, op, 10) as (for_measure, for_linalg):
        assert for_measure == "threads" and for_linalg is None


def test_worker_threads_of_local_schedulers():
    with dask.config.set(scheduler="sync"):
        assert executor._worker_threads(None) == (1, True)
    with dask.config.set(scheduler="threads", num_workers=3):
        assert executor._worker_threads(None) == (3, True)
