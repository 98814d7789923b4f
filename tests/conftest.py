"""Shared pytest configuration.

* The ``gpu`` marker skips without CuPy + CUDA.
* BLAS runs one thread per process: the test matrices are small and the CI
  machine has 2 cores shared by several processes, where a multi-threaded BLAS
  spends most of its time fighting for cores (a 2048×102 QR went from 0.03 s
  to 2 s).
"""
import pytest

from sketchla.backend import cupy_available

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl is in the test extra
    threadpool_limits = None


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
