"""Picklable test operators for the operator, measurement and reliability tests (shipped to workers by value)."""
from __future__ import annotations

import os
import signal
import time
import uuid

import numpy as np
import scipy.sparse as sp

from sketchla.operators import LinearOperator


def sparse_matrix(D_L, D_R, seed=0, density=0.2, dtype="float64"):
    return sp.random(D_L, D_R, density=density, random_state=seed, format="csr", dtype=dtype)


class CountingOp(LinearOperator):
    """Sparse operator that records each call as a file in ``log_dir`` (content: X[0, 0]).

    ``raise_after``: raise once ``raise_after`` calls were recorded (any process).
    ``kill_flag``: the first call anywhere atomically creates this file and
    SIGKILLs its own process.
    ``sleep``: seconds to sleep per call.
    """

    rmatmat_implemented = True

    def __init__(self, A, log_dir, *, raise_after=None, kill_flag=None, sleep=0.0, nan_cols=()):
        super().__init__(A.shape, A.dtype)
        self.A = sp.csr_array(A)
        self.log_dir, self.raise_after, self.kill_flag = log_dir, raise_after, kill_flag
        self.sleep, self.nan_cols = sleep, tuple(nan_cols)

    def _matmat(self, X):
        if self.kill_flag is not None:
            try:
                fd = os.open(self.kill_flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        if self.raise_after is not None and len(os.listdir(self.log_dir)) >= self.raise_after:
            raise RuntimeError("injected failure")
        if self.sleep:
            time.sleep(self.sleep)
        Y = np.asarray(self.A @ X)
        with open(os.path.join(self.log_dir, uuid.uuid4().hex), "w") as f:
            f.write(repr(float(X[0, 0])))
        return Y

    def _rmatmat(self, Y):
        return np.asarray(self.A.T @ Y)


def read_calls(log_dir):
    """First entries X[0, 0] of every recorded call."""
    out = []
    for fn in os.listdir(log_dir):
        with open(os.path.join(log_dir, fn)) as f:
            out.append(float(f.read()))
    return out


class SetupCounter(LinearOperator):
    """Counts setup() calls per process in files named ``<pid>-<uuid>``."""

    def __init__(self, A, log_dir):
        super().__init__(A.shape, A.dtype)
        self.A, self.log_dir = A, log_dir

    def setup(self):
        with open(os.path.join(self.log_dir, f"{os.getpid()}-{uuid.uuid4().hex}"), "w"):
            pass

    def _matmat(self, X):
        return np.asarray(self.A @ X)


def build_sparse(D_L, D_R, seed, log_dir):
    """Recipe factory: records each build (per process) and returns a sparse matrix."""
    with open(os.path.join(log_dir, f"{os.getpid()}-{uuid.uuid4().hex}"), "w"):
        pass
    return sparse_matrix(D_L, D_R, seed)


class NonReentrant:
    """Operator that fails if two threads apply it at once (like torch.func transforms)."""

    def __init__(self, D):
        import threading
        import time

        self.shape, self.dtype = (D, D), np.dtype("float64")
        self._busy = threading.Lock()
        self._sleep = time.sleep

    def matmat(self, X):
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("concurrent application of a non-reentrant operator")
        try:
            self._sleep(0.02)
            return 2.0 * X
        finally:
            self._busy.release()

    rmatmat = matmat


class FailOnce(LinearOperator):
    """Sparse operator whose first call anywhere fails (it creates ``flag``); later calls succeed."""

    def __init__(self, A, flag):
        super().__init__(A.shape, A.dtype)
        self.A, self.flag = sp.csr_array(A), flag

    def _matmat(self, X):
        try:
            fd = os.open(self.flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return np.asarray(self.A @ X)
        os.close(fd)
        raise RuntimeError("injected first-call failure")
