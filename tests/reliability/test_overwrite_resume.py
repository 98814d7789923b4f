"""``seigh(overwrite_sketch=True)`` (issue 18.4) under SIGKILL: a run killed while Q replaces M_O band by
band resumes from the saved Cholesky factor, measures nothing again, and gives the undisturbed result."""
import numpy as np
import pytest

import sketchla as sk
from sketchla import blocking
from sketchla.store import RunStore

from . import _helpers as h

OVERWRITE = dict(overwrite_sketch=True)
#: four row bands of the 240-row sketch, and a pause after each band so the kill lands between them
PRELUDE = """
import time
import sketchla.blocking
sketchla.blocking.SKETCH_ROW_BLOCK = 64
from sketchla.decompositions import _replace
_real_band = _replace._replace_band
def _slow_band(*args):
    out = _real_band(*args)
    time.sleep(1.0)
    return out
_replace._replace_band = _slow_band
"""


@pytest.mark.slow
def test_run_sigkilled_while_q_replaces_the_sketch_resumes_from_the_factor(tmp_path, monkeypatch):
    monkeypatch.setattr(blocking, "SKETCH_ROW_BLOCK", 64)
    ref = sk.seigh(h.A, h.N_OUTER, h.N_INNER, store=str(tmp_path / "ref"), client="sync", **h.RUN, **OVERWRITE)

    store = tmp_path / "run"
    proc, _ = h.start_seigh(tmp_path, store, tmp_path / "log1", prelude=PRELUDE, kwargs=OVERWRITE)
    h.wait_for(lambda: len(h.done_chunks(store, "Q")) >= 1, proc=proc, what="the first band of Q", timeout=120)
    h.sigkill(proc)
    ro = RunStore.open(store, mode="r")
    done = h.done_chunks(store, "Q")
    assert 1 <= len(done) < 4 and ro.get_stage("Q_factor") is not None and ro.get_stage("Q") is None
    assert not ro.done_keys("Y")  # M_O's records went before its first band did
    assert len(h.calls_to_columns(tmp_path / "log1")) == h.N_INNER

    res = sk.seigh(h.counting_op(tmp_path / "log2"), h.N_OUTER, h.N_INNER, store=str(store), client="sync",
                   **h.RUN, **OVERWRITE)
    # nothing measured again: one column of UY applied once more (the operator check), no band of M_O
    logged = h.calls_to_columns(tmp_path / "log2")
    assert len(logged) == 1 and logged[0] >= h.N_OUTER
    assert np.array_equal(res.eigenvalues, ref.eigenvalues)
    assert np.array_equal(res.eigenvectors.compute(), ref.eigenvectors.compute())
    after = RunStore.open(store, mode="r")
    assert "Y" not in after and after.get_stage("Q")["replaced"] == "Y" and after.verify("full") == {}
