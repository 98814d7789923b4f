"""Fixtures for the sketchla.linalg tests (TSQR, lstsq, thin products); helpers in ``_linalg_helpers``."""
import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    # a stable per-test seed, so failures reproduce
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
