"""measure(): chunked, deterministic, resumable, fault tolerant — with real Dask processes."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import _operators as ops
import sketchla as sk
from sketchla.measurement import NonFiniteMeasurementError, measure
from sketchla.random import TestMatrix
from sketchla.store import RunStore, StoreMismatchError

D_L, D_R, N = 300, 200, 32
A = ops.sparse_matrix(D_L, D_R, seed=1)  # float64 CSR: column results independent of batch size
OMEGA = TestMatrix((D_R, N), seed=5, name="Omega", dtype="float64")
REF = A.toarray() @ OMEGA.toarray()


def _store(tmp_path, sub="run", **params):
    return RunStore.open(tmp_path / sub, {"seed": 5, **params})


def _calls_to_chunks(calls, chunk):
    """Map recorded X[0, 0] values back to chunk indices."""
    first_row = OMEGA.block(slice(0, 1), slice(None))[0]
    return sorted(int(np.flatnonzero(first_row == c)[0]) // chunk for c in calls)


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_bitwise_equal_across_chunk_sizes(tmp_path, scheduler):
    results = []
    for c in (1, 8, 32):
        Y = measure(A, OMEGA, _store(tmp_path, f"c{c}"), "Y", chunk=c, client=scheduler, progress=False)
        assert Y.shape == (D_L, N) and Y.chunks == (D_L, c) and Y.dtype == np.float64
        results.append(Y[:])
    for r in results:
        assert np.array_equal(r, results[0])
    np.testing.assert_allclose(results[0], REF, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_one_vs_two_worker_processes_bitwise(tmp_path, cluster_client):
    one = measure(A, OMEGA, _store(tmp_path, "one"), "Y", chunk=8, client="sync", progress=False)[:]
    two = measure(A, OMEGA, _store(tmp_path, "two"), "Y", chunk=8, client=cluster_client, progress=True)[:]
    assert np.array_equal(one, two)
    workers = cluster_client.scheduler_info()["workers"]
    assert len(workers) == 2


def test_adjoint_in_memory_test_and_float32(tmp_path):
    ups = TestMatrix((D_L, 6), seed=5, name="Upsilon")  # float32
    Y = measure(sk.aslinearoperator(A).H, ups, _store(tmp_path), "W", chunk=4, client=False, progress=False)
    assert Y.shape == (D_R, 6) and Y.dtype == np.float32
    np.testing.assert_allclose(Y[:], (A.T @ ups.toarray().astype(np.float64)), rtol=1e-5, atol=1e-5)
    T = np.random.default_rng(0).standard_normal((D_R, 5))
    Z = measure(A.toarray(), T, _store(tmp_path, "mem"), "Z", chunk=2, client=False, progress=False)
    np.testing.assert_allclose(Z[:], A.toarray() @ T, rtol=1e-12)
    # ``sk.measure`` is the function (the module is sketchla.measurement)
    assert sk.measure is measure and callable(sk.measure)
    W2 = sk.measure(sk.aslinearoperator(A).H, ups, _store(tmp_path, "sk"), "W", chunk=4, client=False,
                    progress=False)
    assert np.array_equal(W2[:], Y[:])


def test_resume_after_operator_failure_skips_finished_chunks(tmp_path):
    log1, log2 = tmp_path / "log1", tmp_path / "log2"
    log1.mkdir(), log2.mkdir()
    store = _store(tmp_path)
    failing = ops.CountingOp(A, str(log1), raise_after=3)
    with pytest.raises(RuntimeError, match="injected failure") as ei:
        measure(failing, OMEGA, store, "Y", chunk=4, client="sync", progress=False)
    done = {int(k) for k in store.done_keys("Y")}
    assert len(done) == 3 and sorted(_calls_to_chunks(ops.read_calls(log1), 4)) == sorted(done)
    assert any(f"chunk {j} (columns {4 * j}:{4 * j + 4})" in note
               for note in getattr(ei.value, "__notes__", []) for j in set(range(8)) - done)
    Y = measure(ops.CountingOp(A, str(log2)), OMEGA, store, "Y", client="sync", progress=False)
    # only the missing chunks, and the first column of the first recorded one again (the operator check)
    assert _calls_to_chunks(ops.read_calls(log2), 4) == sorted([*(set(range(8)) - done), min(done)])
    assert store.done_keys("Y") == {str(j) for j in range(8)}
    assert np.array_equal(Y[:], measure(A, OMEGA, _store(tmp_path, "ref"), "Y", chunk=4,
                                        client="sync", progress=False)[:])
    # a third run computes nothing but the operator check's column
    measure(ops.CountingOp(A, str(log2)), OMEGA, store, "Y", client="sync", progress=False)
    assert len(ops.read_calls(log2)) == 5 + 1 + 1


_KILLED_SCRIPT = textwrap.dedent("""
    import sys, cloudpickle
    sys.path.insert(0, {tests!r})
    import _operators as ops
    from sketchla.measurement import measure
    from sketchla.random import TestMatrix
    from sketchla.store import RunStore
    op = ops.CountingOp(ops.sparse_matrix({D_L}, {D_R}, seed=1), {log!r}, sleep=0.15)
    store = RunStore.open({path!r}, {{"seed": 5}})
    measure(op, TestMatrix(({D_R}, {N}), seed=5, name="Omega", dtype="float64"), store, "Y",
            chunk=2, client="sync", progress=False)
""")


@pytest.mark.slow
def test_resume_after_process_killed(tmp_path):
    """SIGKILL the measuring process mid-run; the resumed run recomputes only unrecorded chunks."""
    log1, log2 = tmp_path / "log1", tmp_path / "log2"
    log1.mkdir(), log2.mkdir()
    path = str(tmp_path / "run")
    script = _KILLED_SCRIPT.format(tests=os.path.dirname(ops.__file__), D_L=D_L, D_R=D_R, N=N, log=str(log1), path=path)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while len(os.listdir(log1)) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = RunStore.open(path, {"seed": 5})
    done = {int(k) for k in store.done_keys("Y")}
    assert 0 < len(done) < N // 2
    Y = measure(ops.CountingOp(A, str(log2)), OMEGA, store, "Y", client="sync", progress=False)
    recomputed = _calls_to_chunks(ops.read_calls(log2), 2)
    # the unrecorded chunks, and the first recorded one's first column again (the operator check)
    assert sorted(recomputed) == sorted([*(set(range(N // 2)) - done), min(done)])
    assert np.array_equal(Y[:], measure(A, OMEGA, _store(tmp_path, "ref"), "Y", chunk=2,
                                        client="sync", progress=False)[:])


@pytest.mark.slow
def test_worker_killed_mid_measurement(tmp_path, cluster_client):
    """One worker process SIGKILLs itself inside a task; the run completes and equals an undisturbed run."""
    log = tmp_path / "log"
    log.mkdir()
    flag = str(tmp_path / "killed")
    op = ops.CountingOp(A, str(log), kill_flag=flag, sleep=0.02)
    Y = measure(op, OMEGA, _store(tmp_path), "Y", chunk=2, client=cluster_client, progress=False)
    assert os.path.exists(flag)  # a worker really died
    ref = measure(A, OMEGA, _store(tmp_path, "ref"), "Y", chunk=2, client="sync", progress=False)
    assert np.array_equal(Y[:], ref[:])
    cluster_client.wait_for_workers(2, timeout=60)  # the nanny restarted it


@pytest.mark.slow
def test_failed_run_retried_on_the_same_client_reuses_its_keys(tmp_path, cluster_client):
    """Graph keys are deterministic: the retry submits the very keys that erred, and the
    scheduler computes them again instead of handing back the old error."""
    op = ops.FailOnce(A, str(tmp_path / "failed"))
    store = _store(tmp_path)
    with pytest.raises(RuntimeError, match="first-call failure"):
        measure(op, OMEGA, store, "Y", chunk=8, client=cluster_client, progress=False)
    assert len(store.done_keys("Y")) < 4
    Y = measure(op, OMEGA, store, "Y", chunk=8, client=cluster_client, progress=False)
    np.testing.assert_allclose(Y[:], REF, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_recipe_built_once_per_worker_and_setup_once(tmp_path, cluster_client):
    blog, slog = tmp_path / "buildlog", tmp_path / "setuplog"
    blog.mkdir(), slog.mkdir()
    rec = sk.operators.RecipeOperator(ops.build_sparse, D_L, D_R, 1, str(blog), shape=(D_L, D_R),
                                      dtype="float64", has_adjoint=True)
    Y = measure(rec, OMEGA, _store(tmp_path), "Y", chunk=1, client=cluster_client, progress=False)
    assert np.array_equal(Y[:], measure(A, OMEGA, _store(tmp_path, "ref"), "Y", chunk=1,
                                        client="sync", progress=False)[:])
    builds = [f.split("-")[0] for f in os.listdir(blog)]
    assert 1 <= len(builds) <= 2 and len(set(builds)) == len(builds)  # once per worker process
    sop = ops.SetupCounter(A, str(slog))
    measure(sop, OMEGA, _store(tmp_path, "s"), "Y", chunk=1, client=cluster_client, progress=False)
    pids = [f.split("-")[0] for f in os.listdir(slog)]
    assert 1 <= len(pids) <= 2 and len(set(pids)) == len(pids)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_distributed_run_against_cli_scheduler_and_worker(tmp_path):
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__LOGGING__DISTRIBUTED="error")
    procs = [subprocess.Popen(["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen(["dask", "worker", addr, "--nworkers", "1", "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(addr, timeout=60) as c:
            c.wait_for_workers(1, timeout=60)
        Y = measure(A, OMEGA, _store(tmp_path), "Y", chunk=8, client=addr, progress=True)
        assert np.array_equal(Y[:], measure(A, OMEGA, _store(tmp_path, "ref"), "Y", chunk=8,
                                            client="sync", progress=False)[:])
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_nan_from_operator_names_chunk(tmp_path):
    T = np.random.default_rng(1).standard_normal((D_R, 10))
    T[3, 5] = np.nan
    with pytest.raises(NonFiniteMeasurementError, match=r"chunk 2 \(columns 4:6\)"):
        measure(A, T, _store(tmp_path), "Y", chunk=2, client=False, progress=False)
    store = RunStore.open(tmp_path / "run", {"seed": 5})
    assert "2" not in store.done_keys("Y")
    inf_op = sk.aslinearoperator(lambda X: np.full((D_L, X.shape[1]), np.inf), shape=(D_L, D_R))
    with pytest.raises(FloatingPointError, match=r"in chunk [0-3] \(columns \d+:\d+\)"):
        measure(inf_op, OMEGA, _store(tmp_path, "inf"), "Y", chunk=8, client=False, progress=False)
    Y = measure(inf_op, OMEGA, _store(tmp_path, "nocheck"), "Y", chunk=32, client=False,
                progress=False, check_finite=False)
    assert np.isinf(Y[0, 0])


def test_callable_wrong_shape_through_measure(tmp_path):
    bad = sk.aslinearoperator(lambda X: X, shape=(D_L, D_R))
    with pytest.raises(ValueError, match=r"returned shape \(200, 8\); expected \(300, 8\)"):
        measure(bad, OMEGA, _store(tmp_path), "Y", chunk=8, client=False, progress=False)


def test_store_refuses_other_test_matrix_or_chunking(tmp_path):
    store = _store(tmp_path)
    measure(A, OMEGA, store, "Y", chunk=8, client=False, progress=False)
    before = store["Y"][:]
    other = TestMatrix((D_R, N), seed=6, name="Omega", dtype="float64")
    with pytest.raises(StoreMismatchError, match="sketchla_measure"):
        measure(A, other, store, "Y", client=False, progress=False)
    with pytest.raises(StoreMismatchError, match="chunks"):
        measure(A, OMEGA, store, "Y", chunk=4, client=False, progress=False)
    assert np.array_equal(store["Y"][:], before)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(chunk=0), ValueError, "chunk"),
    (dict(row_block=-1), ValueError, "row_block"),
    (dict(adjoint=True, op=lambda X: X), ValueError, "adjoint"),  # the deprecated flag
    (dict(op="H", test=TestMatrix((D_L, 4), seed=0, name="x")), TypeError, "no adjoint"),
    (dict(plan=(4, 8)), TypeError, "BlockPlan"),
    (dict(chunk=2.5), TypeError, "chunk"),
    (dict(test=TestMatrix((D_L, 4), seed=0, name="x")), ValueError, "test has 300 rows"),
    (dict(test=[[1.0]]), TypeError, "test"),
    (dict(store="/tmp/x"), TypeError, "store"),
    (dict(xp="torch"), ValueError, "xp"),
    (dict(client=3), TypeError, "client"),
])
@pytest.mark.filterwarnings("ignore:measure.*adjoint=True.*:DeprecationWarning")
def test_bad_arguments(tmp_path, kwargs, exc, match):
    op = kwargs.pop("op", A)
    if callable(op) and not hasattr(op, "shape"):
        op = sk.aslinearoperator(op, shape=(D_L, D_R))
    if isinstance(op, str):  # "H": the adjoint of an operator without one is refused when asked for
        op = sk.aslinearoperator(lambda X: X, shape=(D_L, D_R))
        with pytest.raises(exc, match=match):
            op.H
        return
    args = dict(test=OMEGA, store=_store(tmp_path), name="Y", client=False, progress=False)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        measure(op, args.pop("test"), args.pop("store"), args.pop("name"), **args)


@pytest.mark.gpu
def test_cupy_test_blocks(tmp_path):
    import cupy

    dense = A.toarray()
    op = sk.aslinearoperator(cupy.asarray(dense))
    Y = measure(op, OMEGA, _store(tmp_path), "Y", chunk=8, client=False, progress=False, xp="cupy")
    np.testing.assert_allclose(Y[:], REF, rtol=1e-10, atol=1e-10)
