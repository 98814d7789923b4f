"""Shared pieces of the reliability suite: a small symmetric problem, call logs,
store snapshots, subprocess runs of ``sketchla.seigh``.

The operator is a float64 sparse matrix: its columns are computed independently
of the batch size, so measurements are bitwise reproducible whatever the
chunking (see ``sketchla.measurement``). Each operator application is logged as a
file whose content is ``X[0, 0]``; since every column of the seeded test matrix
has a distinct first entry, a log maps back to the chunks that were computed.
"""
from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import scipy.sparse as sp

from sketchla.random import TestMatrix
from sketchla.store import RunStore

import _operators as mops
from _cluster import local_client  # noqa: F401  (tests/ is on sys.path: pytest rootdir conftest)

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)

#: the problem every fault test solves: D × D symmetric, rank-n_O sketch of n_I columns
D, N_OUTER, N_INNER, SEED = 240, 4, 10, 11
RUN = dict(seed=SEED, dtype="float64", chunk=1, progress=False)


def sym_matrix(D_=D, seed=3):
    """A sparse symmetric float64 matrix with a decaying, indefinite spectrum."""
    S = sp.random(D_, D_, density=0.04, random_state=seed, format="csr", dtype="float64")
    return sp.csr_array(S + S.T + sp.diags(np.linspace(3.0, -1.0, D_)))


A = sym_matrix()


def counting_op(log_dir, **kw):
    """``tests/_operators.CountingOp`` on :data:`A` (picklable, logs its calls)."""
    os.makedirs(log_dir, exist_ok=True)
    return mops.CountingOp(A, str(log_dir), **kw)


def omega():
    """The test matrix ``seigh`` measures with (name ``"omega"``, see sketchla.decompositions.seigh)."""
    return TestMatrix((D, N_INNER), seed=SEED, name="omega", dtype="float64")


def calls_to_columns(log_dir, tm=None):
    """Sorted column indices of ``tm`` that the logged calls were applied to (chunk=1)."""
    first_row = (tm or omega()).block(slice(0, 1), slice(None))[0]
    cols = []
    for c in mops.read_calls(str(log_dir)):
        hit = np.flatnonzero(first_row == c)
        assert hit.size == 1, f"logged X[0,0]={c!r} is not the first entry of exactly one column"
        cols.append(int(hit[0]))
    return sorted(cols)


def done_chunks(path, name="Y"):
    """Completion records of ``name`` in the store at ``path`` (ints)."""
    d = os.path.join(path, "_done", name)
    if not os.path.isdir(d):
        return set()
    return {int(k) for k in os.listdir(d) if k.isdigit() and os.path.exists(os.path.join(d, k, "zarr.json"))}


def snapshot(path):
    """Every file (bytes, mtime) and directory (entries, mtime) under ``path``."""
    out = {}
    for root, dirs, files in os.walk(path):
        st = os.stat(root)
        out[os.path.relpath(root, path) + "/"] = (tuple(sorted(dirs + files)), st.st_mtime_ns)
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, path)] = (fh.read(), os.stat(p).st_mtime_ns)
    return out


def chunk_file(path, name, r, j):
    """Path of Zarr chunk ``(r, j)`` of array ``name`` in the store at ``path``."""
    arr = RunStore.open(path, mode="r")[name]
    return os.path.join(path, name, *arr.metadata.encode_chunk_key((r, j)).split("/"))


_SEIGH_SCRIPT = textwrap.dedent("""
    import json, logging, os, sys, time, traceback
    sys.path.insert(0, {tests!r})
    logging.basicConfig(level=logging.WARNING)
    {prelude}
    import sketchla as sk
    from reliability import _helpers as h
    op = h.counting_op({log!r}, sleep={sleep!r})
    if {barrier!r}:  # everything is imported: say so, then wait for the go
        open({barrier!r} + ".ready-" + str(os.getpid()), "w").close()
        while not os.path.exists({barrier!r} + ".go"):
            time.sleep(0.005)
    try:
        res = sk.seigh(op, h.N_OUTER, h.N_INNER, store={store!r}, client="sync", **h.RUN)
        out = {{"ok": True, "eigenvalues": res.eigenvalues.tolist()}}
    except BaseException as exc:
        out = {{"ok": False, "type": type(exc).__name__, "message": str(exc),
               "notes": list(getattr(exc, "__notes__", [])), "mro": [c.__name__ for c in type(exc).__mro__],
               "traceback": traceback.format_exc()}}
    with open({result!r}, "w") as f:
        json.dump(out, f)
""")


def start_seigh(tmp_path, store, log_dir, *, sleep=0.0, prelude="", tag="sub", barrier=""):
    """Start ``seigh`` on :data:`A` (logging its calls) in a new Python process.

    Returns ``(Popen, result_json_path)``; the child writes its outcome there.
    ``prelude``: code run before importing sketchla (e.g. fault injection).
    ``barrier``: a path prefix; the child creates ``<barrier>.ready-<pid>`` once
    imported and waits for ``<barrier>.go`` before calling ``seigh``.
    """
    os.makedirs(log_dir, exist_ok=True)
    result = str(tmp_path / f"{tag}-result.json")
    script = _SEIGH_SCRIPT.format(tests=TESTS, prelude=textwrap.dedent(prelude),
                                  log=str(log_dir), sleep=sleep, store=str(store), result=result,
                                  barrier=str(barrier))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, result


def finish(proc, result, timeout=120):
    """Wait for a :func:`start_seigh` child and return its JSON outcome."""
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out.decode(errors="replace")
    with open(result) as f:
        return json.load(f)


def wait_for(cond, timeout=60.0, proc=None, what="condition"):
    """Poll ``cond()`` every 10 ms; fail after ``timeout`` s or if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"child exited ({proc.returncode}) before {what}:\n{out}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def sigkill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@contextlib.contextmanager
def read_only_fs(root, *, access_says_writable=False):
    """Make everything under ``root`` behave like a read-only file system, for root too.

    File modes cannot do that where the tests run as root (CAP_DAC_OVERRIDE writes through
    them), so the write path itself is patched: opening a file for writing, creating,
    renaming, linking or removing anything under ``root`` raises ``OSError(EROFS)``, as the
    kernel does on a read-only mount, and ``os.access(p, W_OK)`` is false there — unless
    ``access_says_writable`` (a file system whose permission check says yes, then fails).
    Reads are untouched.
    """
    root = os.path.realpath(root)

    def under(p):
        if isinstance(p, int):
            return False
        try:
            real = os.path.realpath(os.fspath(p))
        except TypeError:
            return False
        return real == root or real.startswith(root + os.sep)

    def erofs(p):
        raise OSError(errno.EROFS, "Read-only file system", os.fspath(p))

    def guard(fn, n_paths=1):
        def wrapped(*args, **kwargs):
            for p in args[:n_paths]:
                if under(p):
                    erofs(p)
            return fn(*args, **kwargs)
        return wrapped

    real_open, real_os_open, real_access = builtins.open, os.open, os.access

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and under(file):
            erofs(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND) and under(path):
            erofs(path)
        return real_os_open(path, flags, *args, **kwargs)

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and not access_says_writable and under(path):
            return False
        return real_access(path, mode, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builtins, "open", open_)
        mp.setattr(io, "open", open_)
        mp.setattr(os, "open", os_open)
        mp.setattr(os, "access", access)
        for name in ("mkdir", "rmdir", "unlink", "remove", "utime", "chmod", "truncate"):
            mp.setattr(os, name, guard(getattr(os, name)))
        for name in ("rename", "replace", "link", "symlink"):
            mp.setattr(os, name, guard(getattr(os, name), n_paths=2))
        yield
