"""Shared pytest configuration.

* ``tests/`` mirrors the packages: ``tests/sketchla/<module>/`` holds the tests
  of ``sketchla/<module>``; those folders are no Python packages, so their
  test files are imported by their (unique) names with their folder on
  ``sys.path``, and the shared helpers here (``_cluster``, ``_operators``)
  are imported by name too.
* The ``gpu`` marker skips without CuPy + CUDA; ``slow`` marks tests that
  start clusters or processes (``pytest -m "not slow"`` is the quick loop).
* ``cluster_client``: one 2-process ``LocalCluster`` for the whole session.
* BLAS runs one thread per process: the test matrices are small and the CI
  machine has 2 cores shared by several processes, where a multi-threaded BLAS
  spends most of its time fighting for cores (a 2048×102 QR went from 0.03 s
  to 2 s).
"""
import os
import sys

# ``tests/sketchla`` is a folder without ``__init__.py`` and pytest puts ``tests/`` first on
# sys.path, so a plain ``pytest`` (no checkout on sys.path, the library installed in
# editable mode) would import that folder as an empty namespace package ``sketchla``:
# the checkout these tests belong to goes first.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cloudpickle  # noqa: E402
import pytest  # noqa: E402

import _operators  # noqa: E402
from _cluster import local_client  # noqa: E402
from sketchla.backend import cupy_available  # noqa: E402

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl is in the test extra
    threadpool_limits = None


# workers import sketchla (installed) but not the tests: ship the helpers by value
cloudpickle.register_pickle_by_value(_operators)


@pytest.fixture(scope="session")
def cluster_client():
    """A LocalCluster of 2 worker processes (1 thread each) shared by the tests that need one."""
    yield from local_client(2)


@pytest.fixture(autouse=True, scope="session")
def _single_threaded_blas():
    if threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def pytest_collection_modifyitems(config, items):
    if cupy_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CuPy and a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
