"""Fixtures for the sketchla.grassmann tests.

The shared CI machine has 2 cores and several test processes at once; a
multi-threaded BLAS then spends most of its time fighting for cores (a
2048×102 QR went from 0.03 s to 2 s), so these small-matrix tests pin BLAS to
one thread.
"""
import pytest

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
    threadpool_limits = None


@pytest.fixture(autouse=True, scope="package")
def _single_threaded_blas():
    if threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield

