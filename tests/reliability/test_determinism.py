"""Same seed ⇒ same result, bitwise, whatever the chunk size, the number of worker
processes, or how often a chunk was retried (sketchla.random: every block of a test
matrix is a pure function of (seed, name, position); the operator here computes each
column independently of the batch, as sparse and column-wise operators do)."""
import os

import numpy as np
import pytest

import sketchla as sk
from sketchla.measurement import measure
from sketchla.random import TestMatrix
from sketchla.store import RunStore

from . import _helpers as h

N = h.N_INNER


def _measure(tmp_path, tag, op=None, **kw):
    store = RunStore.open(tmp_path / tag, {"seed": h.SEED})
    return measure(h.A if op is None else op, h.omega(), store, "Y", progress=False, **kw)[:]


@pytest.fixture(scope="module")
def one_worker():
    yield from h.local_client(1)


@pytest.mark.slow
def test_measurements_bitwise_across_chunks_workers_and_retries(tmp_path, cluster, one_worker):
    base = _measure(tmp_path, "base", chunk=1, client="sync")
    np.testing.assert_allclose(base, h.A @ h.omega().toarray(), rtol=1e-13, atol=1e-13)
    runs = {f"chunk={c}": _measure(tmp_path, f"c{c}", chunk=c, client="sync") for c in (3, 4, N)}
    runs["threads"] = _measure(tmp_path, "threads", chunk=2, client="threads")
    runs["1 worker process"] = _measure(tmp_path, "w1", chunk=2, client=one_worker)
    runs["2 worker processes"] = _measure(tmp_path, "w2", chunk=2, client=cluster)
    assert len(one_worker.scheduler_info()["workers"]) == 1 and len(cluster.scheduler_info()["workers"]) == 2

    # retried after an error: 3 chunks, then the operator fails; a second call finishes the rest
    store = RunStore.open(tmp_path / "retry", {"seed": h.SEED})
    with pytest.raises(RuntimeError, match="injected failure"):
        measure(h.counting_op(tmp_path / "log", raise_after=3), h.omega(), store, "Y", chunk=2,
                client="sync", progress=False)
    runs["resumed after an error"] = measure(h.A, h.omega(), store, "Y", client="sync", progress=False)[:]
    # retried on another process: the first task SIGKILLs its worker, the scheduler reruns it
    flag = str(tmp_path / "killed")
    runs["task rerun after its worker died"] = _measure(
        tmp_path, "kill", op=h.counting_op(tmp_path / "klog", kill_flag=flag), chunk=2, client=cluster)
    assert os.path.exists(flag)
    for what, Y in runs.items():
        assert Y.dtype == np.float64 and np.array_equal(Y, base), what
    cluster.wait_for_workers(2, timeout=60)


def test_float32_measurements_are_the_rounded_float64_test_matrix(tmp_path):
    """float32 runs draw the same numbers (rounded), so they too are chunking-independent."""
    om32 = TestMatrix((h.D, N), seed=h.SEED, name="omega", dtype="float32")
    assert np.array_equal(om32.toarray(), h.omega().toarray().astype(np.float32))
    a = measure(h.A, om32, RunStore.open(tmp_path / "a", {"s": 0}), "Y", chunk=1, client="sync", progress=False)
    b = measure(h.A, om32, RunStore.open(tmp_path / "b", {"s": 0}), "Y", chunk=5, client="threads", progress=False)
    assert a.dtype == np.float32 and np.array_equal(a[:], b[:])


@pytest.mark.slow
def test_seigh_same_seed_same_result(tmp_path, cluster, reference):
    lam_ref, path = reference
    V_ref = sk.open_result(path, mode="r").eigenvectors.compute()
    for tag, kw in {"chunk=3": dict(chunk=3, client="sync"), "chunk=10, threads": dict(chunk=N, client="threads"),
                    "2 worker processes": dict(chunk=2, client=cluster)}.items():
        res = sk.seigh(h.A, h.N_OUTER, h.N_INNER, store=str(tmp_path / tag), **{**h.RUN, **kw})
        assert np.array_equal(res.eigenvalues, lam_ref), tag
        assert np.array_equal(res.eigenvectors.compute(), V_ref), tag
    # the seed matters: another seed gives another (equally valid) sketch
    other = sk.seigh(h.A, h.N_OUTER, h.N_INNER, store=str(tmp_path / "s2"), client="sync",
                     **{**h.RUN, "seed": h.SEED + 1})
    assert not np.array_equal(other.eigenvalues, lam_ref)
    np.testing.assert_allclose(other.eigenvalues[0], lam_ref[0], rtol=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [dict(inner_sketch="accumulate"), dict(overwrite_sketch=True)])
def test_accumulated_and_replaced_runs_same_seed_same_result(tmp_path, cluster, mode):
    """Issue 18.4: the inner sketch projected in the measurement tasks (fixed-shape GEMMs) and Q written
    over M_O give bitwise the same result for any chunking and worker count — and match the stored mode."""
    got = {}
    for tag, kw in {"chunk=1, sync": dict(chunk=1, client="sync"), "chunk=10, threads": dict(chunk=N, client="threads"),
                    "2 worker processes": dict(chunk=3, client=cluster)}.items():
        res = sk.seigh(h.A, h.N_OUTER, h.N_INNER, store=str(tmp_path / tag), **{**h.RUN, **kw, **mode})
        got[tag] = res.eigenvalues, res.eigenvectors.compute()
    ref = got.pop("chunk=1, sync")
    for tag, (lam, V) in got.items():
        assert np.array_equal(lam, ref[0]) and np.array_equal(V, ref[1]), tag
    stored = sk.seigh(h.A, h.N_OUTER, h.N_INNER, client="sync", **{**h.RUN, "inner_sketch": "store"})
    np.testing.assert_allclose(ref[0], stored.eigenvalues, rtol=1e-10, atol=1e-12)
