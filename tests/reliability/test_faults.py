"""Faults during long runs, with real processes and real Zarr stores on disk.

Each test drives ``sketchla.seigh`` (or ``sketchla.measure``) into one fault —
a killed worker, a killed run, another run's parameters, damaged chunk files,
a full or unwritable disk, two runs on one store — and checks the promise:
the run completes with the result of an undisturbed run, or stops with a clear
error, and never uses damaged data silently.
"""
import errno
import logging
import os
import signal
import threading

import numpy as np
import pytest

import sketchla as sk
from sketchla.measurement import measure
from sketchla.random import TestMatrix
from sketchla.store import RunStore, StoreCorruptError, StoreLockedError, StoreMismatchError

from . import _helpers as h

N = h.N_INNER


def _seigh(store, log=None, **kw):
    op = h.A if log is None else h.counting_op(log)
    return sk.seigh(op, h.N_OUTER, h.N_INNER, store=str(store), client=kw.pop("client", "sync"), **{**h.RUN, **kw})


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --------------------------------------------------------------------------- killed worker / killed run
@pytest.mark.slow
def test_worker_process_killed_mid_measurement(tmp_path, cluster, reference):
    """SIGKILL a worker process while it measures; the run completes with the undisturbed result."""
    store = tmp_path / "run"
    op = h.counting_op(tmp_path / "log", sleep=0.15)
    pids = cluster.run(os.getpid)
    out = {}

    def run():
        try:
            out["res"] = sk.seigh(op, h.N_OUTER, h.N_INNER, store=str(store), client=cluster, **h.RUN)
        except BaseException as exc:  # pragma: no cover - reported below
            out["exc"] = exc

    t = threading.Thread(target=run)
    t.start()
    h.wait_for(lambda: len(h.done_chunks(store)) >= 2, what="two measured chunks")
    busy = [w for w, keys in cluster.processing().items() if keys]
    assert busy, "no worker is measuring"
    victim = pids[busy[0]]
    os.kill(victim, signal.SIGKILL)
    t.join(120)
    assert not t.is_alive() and "exc" not in out, out.get("exc")
    assert np.array_equal(out["res"].eigenvalues, reference[0])
    assert h.done_chunks(store) == set(range(N))
    assert sorted(set(h.calls_to_columns(tmp_path / "log"))) == list(range(N))
    assert RunStore.open(store, mode="r").verify("full") == {}
    cluster.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker ...
    assert victim not in cluster.run(os.getpid).values()  # ... as a new process


@pytest.mark.slow
def test_run_sigkilled_at_half_resumes_only_missing_chunks(tmp_path, reference, caplog):
    """SIGKILL the whole run (a seigh subprocess) at ~50 % of the chunks; resume; same eigenvalues."""
    store = tmp_path / "run"
    proc, _ = h.start_seigh(tmp_path, store, tmp_path / "log1", sleep=0.1)
    h.wait_for(lambda: len(h.done_chunks(store)) >= N // 2, proc=proc, what="half of the chunks")
    h.sigkill(proc)
    done = h.done_chunks(store)
    assert N // 2 <= len(done) < N
    ro = RunStore.open(store, mode="r")
    assert ro.lock_owner()["pid"] == proc.pid  # the dead run's lock is left behind ...
    assert ro.verify("full") == {}  # ... and every recorded chunk is intact
    assert ro.get_stage("Q") is None and ro.get_stage("core") is None

    with caplog.at_level(logging.WARNING, logger="sketchla.store"):
        res = _seigh(store, tmp_path / "log2")
    assert "stale lock" in caplog.text  # ... and taken over, since its owner is dead
    # only the missing ones, and the first recorded column again: the operator check
    assert h.calls_to_columns(tmp_path / "log2") == sorted([*(set(range(N)) - done), min(done)])
    assert np.array_equal(res.eigenvalues, reference[0])
    assert RunStore.open(store, mode="r").lock_owner() is None


# --------------------------------------------------------------------------- other parameters
@pytest.mark.parametrize("change", [
    {"n_outer": 3}, {"n_inner": 9}, {"seed": 12}, {"dtype": "float32"}, {"test_kind": "rademacher"},
    "ssvd", "other test matrix",
])
def test_run_with_other_parameters_refused_store_untouched(tmp_path, reference, change):
    path = reference[1]
    before = h.snapshot(path)
    if change == "ssvd":
        with pytest.raises(StoreMismatchError, match=r"differing keys: algorithm\)[\s\S]*stored='seigh' requested='ssvd'"):
            sk.ssvd(h.A, h.N_OUTER, h.N_INNER, store=path, client="sync", **h.RUN)
    elif change == "other test matrix":
        store = RunStore.open(path, mode="r+")
        other = TestMatrix((h.D, N), seed=h.SEED + 1, name="omega", dtype="float64")
        with pytest.raises(StoreMismatchError, match=r"'seed'.*sketchla_measure|sketchla_measure.*seed"):
            measure(h.A, other, store, "Y", chunk=1, client="sync", progress=False)
    else:
        kw = {**h.RUN, **{k: v for k, v in change.items() if k in h.RUN or k == "test_kind"}}
        n_outer, n_inner = change.get("n_outer", h.N_OUTER), change.get("n_inner", h.N_INNER)
        key = next(iter(change))
        with pytest.raises(StoreMismatchError, match=rf"differing keys: {key}\b[\s\S]*{key}: stored="):
            sk.seigh(h.A, n_outer, n_inner, store=path, client="sync", **kw)
    assert h.snapshot(path) == before  # not a byte, not an mtime changed


# --------------------------------------------------------------------------- damaged chunks
@pytest.fixture
def interrupted(tmp_path):
    """A seigh store whose run failed at the last measurement chunk (all others recorded)."""
    store = tmp_path / "run"
    with pytest.raises(RuntimeError, match="injected failure"):
        sk.seigh(h.counting_op(tmp_path / "log0", raise_after=N - 1), h.N_OUTER, h.N_INNER,
                 store=str(store), client="sync", **h.RUN)
    done = h.done_chunks(store)
    assert len(done) == N - 1
    (missing,) = set(range(N)) - done
    return store, missing, sorted(done)


def _damage(path, how):
    if how == "delete":
        os.remove(path)
    elif how == "truncate":
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    elif how == "extend":
        with open(path, "ab") as f:
            f.write(b"\0" * 16)
    elif how == "overwrite":  # same size, other bytes
        size = os.path.getsize(path)
        with open(path, "wb") as f:
            f.write(np.random.default_rng(0).bytes(size))
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how,verify", [
    ("delete", "size"), ("truncate", "size"), ("extend", "size"), ("overwrite", "full"), ("record", "size"),
])
def test_damaged_measurement_chunk_is_recomputed(tmp_path, interrupted, reference, how, verify, caplog):
    store, missing, done = interrupted
    victim = done[len(done) // 2]
    if how == "record":  # the completion record itself is garbage
        with open(os.path.join(store, "_done", "Y", str(victim), "zarr.json"), "w") as f:
            f.write("{not json")
    else:
        _damage(h.chunk_file(store, "Y", 0, victim), how)
    assert f"Y/{victim}" in RunStore.open(store, mode="r").verify("full")
    with caplog.at_level(logging.WARNING, logger="sketchla.measurement"):
        res = _seigh(store, tmp_path / "log", verify=verify)
    assert f"recorded chunk {victim} " in caplog.text and "fails verification" in caplog.text
    # the lost chunks, and the first intact one's column again: the operator check
    assert h.calls_to_columns(tmp_path / "log") == sorted([missing, victim, done[0]])
    assert np.array_equal(res.eigenvalues, reference[0])
    assert RunStore.open(store, mode="r").verify("full") == {}


def test_chunk_changed_in_place_is_reported_not_used(tmp_path, interrupted, reference):
    """Same-size garbage passes the cheap size check but fails Zarr's CRC-32C on read: an error,
    never a wrong answer; verify='full' then finds and recomputes it."""
    store, missing, done = interrupted
    _damage(h.chunk_file(store, "Y", 0, done[0]), "overwrite")
    with pytest.raises(ValueError, match="checksum") as ei:
        _seigh(store, tmp_path / "log1")
    assert any("verify='full'" in n for n in getattr(ei.value, "__notes__", []))
    assert RunStore.open(store, mode="r").get_stage("core") is None
    assert h.calls_to_columns(tmp_path / "log1") == [done[0]]  # the operator check read the damage first
    res = _seigh(store, tmp_path / "log2", verify="full")
    # the damaged and the missing chunk; done[1], the first intact chunk, for the operator check
    assert h.calls_to_columns(tmp_path / "log2") == sorted([done[0], done[1], missing])
    assert np.array_equal(res.eigenvalues, reference[0])


@pytest.mark.parametrize("how", ["delete", "truncate", "overwrite"])
def test_damaged_basis_of_finished_run(tmp_path, reference, how):
    """Q of a finished run damaged: reading it read-only is refused or fails; a re-run recomputes it
    from the (intact) measurements without a single operator application."""
    store = tmp_path / "run"
    _seigh(store)
    _damage(h.chunk_file(store, "Q", 0, 0), how)
    if how == "overwrite":
        res = sk.open_result(str(store), mode="r")
        with pytest.raises(ValueError, match="checksum"):
            res.eigenvectors.compute()
    else:
        with pytest.raises(StoreCorruptError, match=r"stage 'core' .* damaged: Q/c/0/0"):
            sk.open_result(str(store), mode="r")
        with pytest.raises(StoreCorruptError, match=r"had finished, but files of its result are damaged"):
            sk.open_result(str(store), mode="r+")  # (the damaged stage is forgotten)
    res = _seigh(store, tmp_path / "log", verify="full")
    assert h.calls_to_columns(tmp_path / "log") == [0]  # only the operator check's column
    assert np.array_equal(res.eigenvalues, reference[0])
    V = res.eigenvectors.compute()
    np.testing.assert_allclose(V.T @ V, np.eye(h.N_OUTER), atol=1e-12)


def _zero_rows_operator():
    import scipy.sparse as sp

    return sp.csr_array(sp.vstack([sp.csr_array((50, h.D)), h.A[50:]]))  # rows 0..49 are zero


def test_chunk_equal_to_the_fill_value_is_written_and_verified(tmp_path):
    """A chunk of zeros gets a file like any other (sketchla arrays write every
    chunk), so its damage or loss is caught like any other's."""
    Z = _zero_rows_operator()
    store = RunStore.open(tmp_path / "run", {"seed": 0})
    Y = measure(Z, h.omega(), store, "Y", chunk=2, row_block=50, client="sync", progress=False)
    zero_chunk = h.chunk_file(store.path, "Y", 0, 0)
    assert os.path.exists(zero_chunk)
    assert store.verify("full") == {}
    os.remove(zero_chunk)
    log = tmp_path / "log"
    # another operator on purpose (its columns show what was recomputed): no operator check
    measure(h.counting_op(log), h.omega(), store, "Y", client="sync", progress=False, verify="size",
            check_operator=False)
    assert h.calls_to_columns(log) == [0]  # only the lost chunk (columns 0:2) is recomputed
    assert os.path.exists(zero_chunk)
    expect = Z @ h.omega().toarray()
    expect[:, :2] = h.A @ h.omega().toarray()[:, :2]  # columns 0:2 now come from the counting operator
    np.testing.assert_allclose(Y[:], expect, rtol=1e-12, atol=1e-12)


def test_chunk_without_file_is_not_a_false_alarm(tmp_path, monkeypatch):
    """Stores written with Zarr's default (no file for a chunk equal to the fill
    value, as sketchla did before it wrote every chunk): the manifest records
    the missing file, and verification accepts it."""
    import sketchla.measurement as measure_mod

    monkeypatch.setattr(measure_mod, "write_every_chunk", lambda arr: arr)
    Z = _zero_rows_operator()
    store = RunStore.open(tmp_path / "run", {"seed": 0})
    Y = measure(Z, h.omega(), store, "Y", chunk=2, row_block=50, client="sync", progress=False)
    assert not os.path.exists(h.chunk_file(store.path, "Y", 0, 0))
    assert store.verify("full") == {}
    log = tmp_path / "log"
    measure(h.counting_op(log), h.omega(), store, "Y", client="sync", progress=False, verify="full",
            check_operator=False)  # another operator on purpose: a recomputed chunk would show
    assert not os.path.exists(log) or os.listdir(log) == []  # nothing recomputed
    np.testing.assert_allclose(Y[:], Z @ h.omega().toarray(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- full / unwritable disk
_ENOSPC_DATA = """
import errno, zarr.storage
_orig, _n = zarr.storage.LocalStore.set, [0]
async def _set(self, key, value, *a, **k):
    if key.startswith("Y/c/"):
        _n[0] += 1
        if _n[0] > 3:
            raise OSError(errno.ENOSPC, "No space left on device", key)
    return await _orig(self, key, value, *a, **k)
zarr.storage.LocalStore.set = _set
"""

_ENOSPC_RECORD = """
import errno, re, sketchla.store.atomic as st
_orig, _n = st.write_json_atomic, [0]
def _write(path, obj):
    if re.search(r"/_done/Y/[0-9]+/zarr[.]json$", path):
        _n[0] += 1
        if _n[0] > 3:
            raise OSError(errno.ENOSPC, "No space left on device", path)
    return _orig(path, obj)
st.write_json_atomic = _write
"""


@pytest.mark.slow
@pytest.mark.parametrize("where", ["data", "record"])
def test_disk_full_gives_clear_error_and_records_nothing_unwritten(tmp_path, reference, where):
    store = tmp_path / "run"
    proc, result = h.start_seigh(tmp_path, store, tmp_path / "log1",
                                 prelude=_ENOSPC_DATA if where == "data" else _ENOSPC_RECORD)
    out = h.finish(proc, result)
    assert not out["ok"] and "OSError" in out["mro"], out
    assert "No space left on device" in out["message"]
    notes = "\n".join(out["notes"])
    assert f"run store {str(store)!r} could not be written" in notes and "not recorded as complete" in notes
    done = h.done_chunks(store)
    assert len(done) == 3 and done < set(h.calls_to_columns(tmp_path / "log1"))
    ro = RunStore.open(store, mode="r")
    assert ro.verify("full") == {} and ro.get_stage("Q") is None and ro.get_stage("core") is None
    assert ro.lock_owner() is None  # the failed run released its lock
    ref = RunStore.open(reference[1], mode="r")["Y"]
    for j in done:  # what is recorded is exactly what an undisturbed run measured
        assert np.array_equal(ro["Y"][:, j], ref[:, j])
    res = _seigh(store, tmp_path / "log2")
    assert h.calls_to_columns(tmp_path / "log2") == sorted([*(set(range(N)) - done), min(done)])  # + the check
    assert np.array_equal(res.eigenvalues, reference[0])


def test_read_only_store_gives_clear_error_and_is_untouched(tmp_path, interrupted):
    """A store on a read-only file system (simulated: file modes do not bind root, who runs CI)."""
    store, _, _ = interrupted
    before = h.snapshot(store)
    with h.read_only_fs(store):
        with pytest.raises(PermissionError, match=r"store path .* is not writable \(no write permission on"):
            _seigh(store, tmp_path / "log")
        with pytest.raises(PermissionError, match="not writable"):
            RunStore.open(store, mode="r+")
        assert RunStore.open(store, mode="r").done_keys("Y") == {str(j) for j in h.done_chunks(store)}
    assert h.snapshot(store) == before
    assert not os.path.exists(tmp_path / "log") or os.listdir(tmp_path / "log") == []


def test_store_whose_writes_fail_gives_clear_error_and_records_nothing(tmp_path, interrupted):
    """The permission check says writable, every write then fails (EROFS): a clear error naming the
    store before any chunk is measured; the store is untouched."""
    store, missing, done = interrupted
    before = h.snapshot(store)
    with h.read_only_fs(store, access_says_writable=True):
        with pytest.raises(OSError, match=rf"Read-only file system: '{store}") as ei:
            _seigh(store, tmp_path / "log")
        assert ei.value.errno == errno.EROFS
    assert h.snapshot(store) == before
    assert h.calls_to_columns(tmp_path / "log") == [done[0]]  # only the operator check ran


def test_chunk_writes_that_fail_record_nothing(tmp_path, interrupted, reference):
    """Only the sketch's data is unwritable (EROFS): the measurement fails naming the store, the
    chunk is not recorded as done, and a later run with a writable store completes it."""
    store, missing, done = interrupted
    Y_before = h.snapshot(os.path.join(store, "Y"))
    with h.read_only_fs(os.path.join(store, "Y", "c"), access_says_writable=True):
        with pytest.raises(OSError, match="Read-only file system") as ei:
            _seigh(store, tmp_path / "log1")
    notes = "\n".join(ei.value.__notes__)
    assert f"run store {str(store)!r} could not be written" in notes and "not recorded as complete" in notes
    assert h.done_chunks(store) == set(done) and h.snapshot(os.path.join(store, "Y")) == Y_before
    res = _seigh(store, tmp_path / "log2")
    assert h.calls_to_columns(tmp_path / "log2") == sorted([missing, done[0]])  # + the operator check
    assert np.array_equal(res.eigenvalues, reference[0])


# --------------------------------------------------------------------------- two runs at once
@pytest.mark.slow
def test_second_run_on_a_store_in_use_is_refused(tmp_path, reference):
    store = tmp_path / "run"
    proc, result = h.start_seigh(tmp_path, store, tmp_path / "log1", sleep=0.1)
    h.wait_for(lambda: len(h.done_chunks(store)) >= 1, proc=proc, what="the first chunk")
    msg = rf"is being written by another run: pid {proc.pid} on host"
    with pytest.raises(StoreLockedError, match=msg):
        _seigh(store, tmp_path / "log2")
    with pytest.raises(StoreLockedError, match=msg):
        measure(h.A, h.omega(), RunStore.open(store, mode="r+"), "Y", client="sync", progress=False)
    with pytest.raises(StoreLockedError, match="would delete a store in use"):
        RunStore.open(store, {"x": 1}, mode="w")
    assert not os.path.exists(tmp_path / "log2") or os.listdir(tmp_path / "log2") == []  # nothing applied
    out = h.finish(proc, result)
    assert out["ok"] and np.array_equal(out["eigenvalues"], reference[0])
    assert h.calls_to_columns(tmp_path / "log1") == list(range(N))  # the owner was not disturbed
    assert RunStore.open(store, mode="r").lock_owner() is None
    assert np.array_equal(_seigh(store, tmp_path / "log3").eigenvalues, reference[0])  # free again


@pytest.mark.slow
def test_two_runs_started_at_the_same_moment(tmp_path, reference):
    """Two processes create and run the same new store at once: one runs, the other is refused."""
    store, barrier = tmp_path / "run", str(tmp_path / "barrier")
    procs = [h.start_seigh(tmp_path, store, tmp_path / f"log{i}", sleep=0.1, tag=f"p{i}", barrier=barrier)
             for i in range(2)]
    h.wait_for(lambda: len([f for f in os.listdir(tmp_path) if f.startswith("barrier.ready")]) == 2,
               what="both runs ready")
    open(barrier + ".go", "w").close()
    outs = [h.finish(*p) for p in procs]
    ok = [o for o in outs if o["ok"]]
    refused = [o for o in outs if not o["ok"]]
    assert len(ok) == 1 and len(refused) == 1, outs
    assert refused[0]["type"] == "StoreLockedError", refused[0]
    assert np.array_equal(ok[0]["eigenvalues"], reference[0])
    calls = sorted(h.calls_to_columns(tmp_path / "log0") + h.calls_to_columns(tmp_path / "log1"))
    assert calls == list(range(N))  # the refused run applied the operator to nothing


@pytest.mark.slow
def test_stale_and_foreign_locks(tmp_path, caplog):
    """A lock whose owner died is taken over; one from another host is refused until broken."""
    import json
    import subprocess
    import sys

    store = RunStore.open(tmp_path / "run", {"seed": 0})
    lock_json = os.path.join(store.path, "_lock", "zarr.json")
    # a real owner that dies holding the lock
    code = ("import sys, os, signal; from sketchla.store import RunStore; s = RunStore.open(sys.argv[1], mode='r+');"
            "cm = s.lock(); cm.__enter__(); os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code, store.path], check=False)
    owner = store.lock_owner()
    assert owner is not None and not _alive(owner["pid"])
    with caplog.at_level(logging.WARNING, logger="sketchla.store"):
        with store.lock():
            assert store.lock_owner()["pid"] == os.getpid()
            with store.lock():  # re-entrant within the process
                pass
            assert store.lock_owner()["pid"] == os.getpid()
    assert "stale lock" in caplog.text and store.lock_owner() is None

    # a live pid that is not the owner any more (pid reused): stale as well
    with store.lock():
        with open(lock_json) as f:
            meta = json.load(f)
    meta["attributes"]["sketchla_lock"].update(pid=os.getppid(), pid_start=1, token="x" * 32)
    os.makedirs(os.path.dirname(lock_json))
    with open(lock_json, "w") as f:
        json.dump(meta, f)
    with store.lock():
        pass

    # another host: cannot be checked from here, so refused with instructions
    meta["attributes"]["sketchla_lock"].update(host="elsewhere.example", pid=4242)
    os.makedirs(os.path.dirname(lock_json))
    with open(lock_json, "w") as f:
        json.dump(meta, f)
    with pytest.raises(StoreLockedError, match=r"pid 4242 on host 'elsewhere.example'.*break_lock"):
        with store.lock():
            pass
    assert RunStore.break_lock(store.path)["host"] == "elsewhere.example"
    with store.lock():
        pass


def test_storage_error_note_is_specific():
    from sketchla.measurement import _storage_note

    assert "could not be written" in _storage_note(OSError(errno.EROFS, "Read-only file system"), "/s")
    assert _storage_note(ValueError("x"), "/s") is None


def test_ssvd_resumes_after_failure_and_damage(tmp_path):
    """The same guarantees for SSVD (two measurements, adjoint included)."""
    import _operators as mops

    R = mops.sparse_matrix(300, 200, seed=4)
    kw = dict(seed=5, store=None, client="sync", dtype="float64", chunk=1, progress=False)
    ref = sk.ssvd(R, 3, 6, **kw)
    store = str(tmp_path / "run")
    log1, log2 = tmp_path / "log1", tmp_path / "log2"
    log1.mkdir(), log2.mkdir()
    with pytest.raises(RuntimeError, match="injected failure"):
        sk.ssvd(mops.CountingOp(R, str(log1), raise_after=5), 3, 6, **{**kw, "store": store})
    done = h.done_chunks(store)
    assert len(done) == 5 and h.done_chunks(store, "Y_left") == {0, 1, 2}
    _damage(h.chunk_file(store, "Y_left", 0, 1), "delete")
    victim = min(done)
    _damage(h.chunk_file(store, "Y", 0, victim), "truncate")
    res = sk.ssvd(mops.CountingOp(R, str(log2)), 3, 6, **{**kw, "store": store})
    omega = TestMatrix((200, 9), seed=5, name="omega", dtype="float64")
    # the missing and damaged chunks of Y (Y_left's calls are adjoint ones, not logged), and the first
    # intact chunk of Y once more: the operator check
    first_intact = min(done - {victim})
    assert h.calls_to_columns(log2, omega) == sorted([*(set(range(9)) - done | {victim}), first_intact])
    assert np.array_equal(res.S, ref.S)
    assert RunStore.open(store, mode="r").verify("full") == {}
