"""Fixtures for the measurement tests: a shared 2-worker LocalCluster (real processes)."""
import cloudpickle
import pytest

from _cluster import local_client  # tests/ is on sys.path (pytest rootdir conftest)

from . import _measure_ops

# workers import sketchla (installed) but not the tests: ship the helpers by value
cloudpickle.register_pickle_by_value(_measure_ops)


@pytest.fixture(scope="session")
def cluster_client():
    yield from local_client(2)
