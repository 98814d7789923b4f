"""Fixtures of the reliability suite: the undisturbed reference run, a 2-process cluster."""
import cloudpickle
import numpy as np
import pytest

import sketchla as sk

from . import _helpers as h

# workers import sketchla (installed) but not the tests: ship the helpers by value
# (tests/_operators is registered by tests/conftest.py)
cloudpickle.register_pickle_by_value(h)


@pytest.fixture(scope="package")
def reference(tmp_path_factory):
    """Eigenvalues (and the store) of an undisturbed, single-process run of the fault-test problem."""
    path = str(tmp_path_factory.mktemp("reference") / "run")
    res = sk.seigh(h.A, h.N_OUTER, h.N_INNER, store=path, client="sync", **h.RUN)
    assert np.all(np.isfinite(res.eigenvalues))
    return res.eigenvalues.copy(), path


@pytest.fixture(scope="package")
def cluster():
    """A LocalCluster of 2 worker processes (1 thread each), shared by this package's tests."""
    yield from h.local_client(2)
