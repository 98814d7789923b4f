"""Fixtures for the measurement tests: a shared 2-worker LocalCluster (real processes)."""
import cloudpickle
import pytest

from . import _measure_ops

# workers import sketchla (installed) but not the tests: ship the helpers by value
cloudpickle.register_pickle_by_value(_measure_ops)


@pytest.fixture(scope="session")
def cluster_client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=40)
    client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
