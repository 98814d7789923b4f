"""Multi-pass runs (issue 15) under faults: a run killed in pass 2 redoes no chunk of pass 1 and no
finished chunk of pass 2; the bases, the measurements and the result are the same bits whatever the
chunking or the worker count."""
import logging

import numpy as np
import pytest

import sketchla as sk
from sketchla.random import TestMatrix
from sketchla.store import RunStore

from . import _helpers as h

PASSES = dict(passes=2)
#: what pass 1 wrote (measurement Y1 = A V0 with its records, basis V1 = orth(Y1 ⊥ V0)) and pass 0 (Y0, V0)
EARLIER = ("Y0", "V0", "Y1", "V1", "_done/Y0", "_done/Y1")


def _omega_first(col):
    """``Ω[0, col]`` of the first pass (the test matrix of ``Y0``): the logged first entry of a call on it."""
    return float(TestMatrix((h.D, h.N_OUTER), seed=h.SEED, name="omega", dtype="float64").block(0, col)[0, 0])


def _seigh(store, log=None, **kw):
    op = h.A if log is None else h.counting_op(log)
    return sk.seigh(op, h.N_OUTER, store=str(store), client=kw.pop("client", "sync"), **{**h.RUN, **PASSES, **kw})


@pytest.fixture(scope="module")
def passes_reference(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("passes-reference") / "run")
    res = _seigh(path)
    return res.eigenvalues.copy(), res.eigenvectors.compute(), path


@pytest.mark.slow
def test_run_sigkilled_in_pass_2_redoes_nothing_of_pass_1(tmp_path, passes_reference, caplog):
    store = tmp_path / "run"
    proc, _ = h.start_seigh(tmp_path, store, tmp_path / "log1", sleep=0.1, kwargs=PASSES)
    h.wait_for(lambda: len(h.done_chunks(store, "Y2")) >= 2, proc=proc, what="two chunks of pass 2")
    h.sigkill(proc)
    done = h.done_chunks(store, "Y2")
    assert 2 <= len(done) < h.N_OUTER
    ro = RunStore.open(store, mode="r")
    assert ro.get_stage("V1") is not None and ro.get_stage("core") is None and ro.verify("full") == {}
    before = {name: h.snapshot(store / name) for name in EARLIER}

    with caplog.at_level(logging.WARNING, logger="sketchla.store"):
        res = _seigh(store, tmp_path / "log2")
    assert "stale lock" in caplog.text
    # the operator check (one column of Ω again), then only the missing chunks of pass 2: columns of V1
    calls = h.mops.read_calls(str(tmp_path / "log2"))
    assert calls.count(_omega_first(0)) == 1
    calls.remove(_omega_first(0))
    first_V1 = np.asarray(ro["V1"][0, :])
    assert sorted(calls) == sorted(first_V1[sorted(set(range(h.N_OUTER)) - done)])
    assert {name: h.snapshot(store / name) for name in EARLIER} == before  # not a byte, not an mtime
    lam_ref, V_ref, _ = passes_reference
    assert np.array_equal(res.eigenvalues, lam_ref) and np.array_equal(res.eigenvectors.compute(), V_ref)


def test_failure_in_pass_1_resumes_there(tmp_path, passes_reference):
    """An error while pass 1 measures (the operator fails after 6 calls): the retry measures only
    the rest of pass 1 and then pass 2."""
    store = tmp_path / "run"
    with pytest.raises(RuntimeError, match="injected failure"):
        sk.seigh(h.counting_op(tmp_path / "log1", raise_after=6), h.N_OUTER, store=str(store), client="sync",
                 **{**h.RUN, **PASSES})
    done = h.done_chunks(store, "Y1")
    assert h.done_chunks(store, "Y0") == set(range(h.N_OUTER)) and len(done) == 2
    res = _seigh(store, tmp_path / "log2")
    ro = RunStore.open(store, mode="r")
    missing = sorted(set(range(h.N_OUTER)) - done)
    first_V0, first_V1 = np.asarray(ro["V0"][0, :]), np.asarray(ro["V1"][0, :])
    # the operator check (one column of Ω again), the rest of pass 1 (columns of V0), all of pass 2 (of V1)
    assert sorted(h.mops.read_calls(str(tmp_path / "log2"))) == sorted([_omega_first(0), *first_V0[missing],
                                                                        *first_V1])
    assert np.array_equal(res.eigenvalues, passes_reference[0])


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["seigh", "ssvd"])
def test_passes_bitwise_across_chunkings_and_workers(tmp_path, cluster, algorithm):
    run = getattr(sk, algorithm)
    A = h.A if algorithm == "seigh" else h.A[:, :200]
    base = run(A, h.N_OUTER, store=str(tmp_path / "base"), client="sync", **{**h.RUN, **PASSES})
    key = "eigenvalues" if algorithm == "seigh" else "S"
    vecs = (lambda r: r.eigenvectors.compute()) if algorithm == "seigh" else (lambda r: r.U.compute())
    for tag, kw in {"chunk=3": dict(chunk=3, client="sync"), "chunk=n_O, threads": dict(chunk=h.N_OUTER,
                    client="threads"), "2 worker processes": dict(chunk=2, client=cluster)}.items():
        res = run(A, h.N_OUTER, store=str(tmp_path / tag), **{**h.RUN, **PASSES, **kw})
        assert np.array_equal(getattr(res, key), getattr(base, key)), tag
        assert np.array_equal(vecs(res), vecs(base)), tag
        for name in ("V0", "V1") if algorithm == "seigh" else ("P0", "V1", "V2"):
            assert np.array_equal(res.store.group[name][:], base.store.group[name][:]), (tag, name)
