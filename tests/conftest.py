"""Shared pytest configuration: the ``gpu`` marker skips without CuPy + CUDA."""
import pytest

from sketchla.backend import cupy_available


def pytest_collection_modifyitems(config, items):
    if cupy_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CuPy and a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
