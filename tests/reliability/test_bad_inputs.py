"""Bad input to the public API gets an exception whose message says what is wrong and names
the argument — never a silent wrong answer. One case per line; each checks type and message."""
import os
import re
import warnings

import numpy as np
import pytest
import zarr

import sketchla as sk
from sketchla import grassmann as gm
from sketchla.measurement import NonFiniteMeasurementError
from sketchla.random import TestMatrix
from sketchla.store import RunStore, StoreMismatchError

D = 20
SYM = np.diag(np.arange(D, 0, -1.0))  # symmetric, float64
Q3 = np.linalg.qr(np.random.default_rng(0).standard_normal((D, 3)))[0]
Q2 = np.linalg.qr(np.random.default_rng(1).standard_normal((D, 2)))[0]
Q3_30 = np.linalg.qr(np.random.default_rng(2).standard_normal((30, 3)))[0]


def _seigh(op, n_outer=2, n_inner=4, **kw):
    return sk.seigh(op, n_outer, n_inner, **{"client": "sync", "progress": False, "dtype": "float64", **kw})


def _nan_in_column(bad_col, value):
    def f(X):
        Y = SYM @ X
        j0 = _nan_in_column.first_cols.index(X[0, 0]) if X[0, 0] in _nan_in_column.first_cols else -1
        if j0 <= bad_col < j0 + X.shape[1]:
            Y[3, bad_col - j0] = value
        return Y
    return sk.aslinearoperator(f, shape=(D, D), dtype="float64")


# first entries of the columns of seigh's Ω (seed 0, float64): lets the callable know its columns
_nan_in_column.first_cols = list(TestMatrix((D, 4), seed=0, name="omega", dtype="float64")
                                 .block(slice(0, 1), slice(None))[0])


def _zarr(shape):
    A = zarr.create_array(zarr.storage.MemoryStore(), shape=shape, chunks=(8, shape[1]), dtype="f8")
    A[:] = np.random.default_rng(0).standard_normal(shape)
    return A


def _lstsq(A_shape, B_shape, **kw):
    return sk.lstsq(_zarr(A_shape), np.random.default_rng(0).standard_normal(B_shape), **kw)


def _zarr_mask(tmp_path):
    m = zarr.create_array(str(tmp_path / "mask"), shape=(3,), chunks=(3,), dtype="i8")
    m[:] = [4, 4, 7]
    return gm.iou(m, np.array([1, 2, 3]))


def _no_store_left(p, call):
    """Run ``call(store_path)``; whatever it raises, no store may have been created."""
    try:
        call(str(p / "run"))
    finally:
        assert not (p / "run").exists()


def _no_array_left(p, call):
    """Run ``call(store)`` on a new run store; whatever it raises, it may not have made an array or lock."""
    store = RunStore.open(p / "r", {"seed": 0})
    try:
        call(store)
    finally:
        assert sorted(os.listdir(store.path)) == ["zarr.json"]


def _foreign_dir(p):
    (p / "d").mkdir()
    (p / "d" / "notes.txt").write_text("my notes")
    return str(p / "d")


def _file(p):
    (p / "f").write_text("x")
    return str(p / "f")


CASES = {
    # --- sizes and shapes given to the decompositions
    "seigh: non-square operator": (
        lambda p: _seigh(np.ones((D, D + 1)), 2, 4), ValueError,
        r"seigh needs a square \(symmetric\) operator, got shape \(20, 21\); use ssvd"),
    "seigh: n_outer > n_inner": (
        lambda p: _seigh(SYM, 5, 3), ValueError, r"n_outer=5 must not exceed n_inner=3"),
    "seigh: n_inner > D": (
        lambda p: _seigh(SYM, 2, D + 1), ValueError, r"n_inner=21 must not exceed the operator dimension 20"),
    "ssvd: n_inner > min(D_L, D_R)": (
        lambda p: sk.ssvd(np.ones((30, D)), 2, D + 1, client="sync"), ValueError,
        r"n_inner=21 must not exceed the operator dimension 20"),
    "seigh: zero n_outer": (lambda p: _seigh(SYM, 0, 3), ValueError, r"n_outer=0 must be positive"),
    "ssvd: negative n_inner": (
        lambda p: sk.ssvd(SYM, 1, -2, client="sync"), ValueError, r"n_inner=-2 must be positive"),
    "seigh: non-integer n_outer": (lambda p: _seigh(SYM, 2.5, 4), TypeError, r"n_outer must be an integer, got 2.5"),
    "seigh: unknown test matrix kind (no store left behind)": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, test_kind="sobol", store=s)), ValueError,
        r"test_kind='sobol' must be one of \('gaussian', 'rademacher', 'signs'\)"),
    "seigh: negative seed": (lambda p: _seigh(SYM, seed=-1), ValueError, r"seed=-1 must be a non-negative integer"),
    # --- every argument is checked before any work or file (issue 16): no store left behind
    "seigh: seed 2**63 (no store left behind)": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, seed=2**63, store=s)), ValueError,
        r"seed=9223372036854775808 must be a non-negative integer below 2\*\*63"),
    "test matrix: seed 2**63": (
        lambda p: TestMatrix((D, 2), seed=2**63, name="o"), ValueError, r"seed=9223372036854775808 must be"),
    "seigh: unknown scheduler name (no store left behind)": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, client="proceses", store=s)), ValueError,
        r"client='proceses' is neither a scheduler address .* nor one of \('threads', 'sync', 'synchronous', "
        r"'processes'\)"),
    "ssvd: client of the wrong type (no store left behind)": (
        lambda p: _no_store_left(p, lambda s: sk.ssvd(SYM, 1, 2, client=3, store=s)), TypeError,
        r"client must be a distributed.Client, an address string, 'threads', 'sync', 'processes', False or None"),
    "seigh: chunk 0 (no store left behind)": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, chunk=0, store=s)), ValueError,
        r"chunk must be >= 1, got 0"),
    "seigh: negative n_probes (no store left behind)": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, n_probes=-1, store=s)), ValueError,
        r"n_probes=-1 must be an integer >= 0"),
    "seigh: progress not a bool (no store left behind)": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, progress="yes", store=s)), TypeError,
        r"progress must be True or False, got 'yes'"),
    "seigh: operator_id not a string (no store left behind)": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, operator_id=7, store=s)), TypeError,
        r"operator_id must be a non-empty string or None, got 7"),
    "seigh: store of the wrong type": (
        lambda p: _seigh(SYM, store=3), TypeError, r"store must be a directory path or URL, a RunStore or None, got int"),
    "estimate_error: zero probes": (
        lambda p: _seigh(SYM).estimate_error(SYM, 0), ValueError, r"n_probes=0 must be an integer >= 1"),
    "measure: unknown client (no array made)": (
        lambda p: _no_array_left(p, lambda st: sk.measure(SYM, TestMatrix((D, 2), seed=0, name="o"), st, "Y",
                                                          client="thread")),
        ValueError, r"client='thread' is neither"),
    "measure: bad array name (no array made)": (
        lambda p: _no_array_left(p, lambda st: sk.measure(SYM, TestMatrix((D, 2), seed=0, name="o"), st, "_Y")),
        ValueError, r"name='_Y' must be a non-empty string"),
    "measure: check_operator not a bool": (
        lambda p: _no_array_left(p, lambda st: sk.measure(SYM, TestMatrix((D, 2), seed=0, name="o"), st, "Y",
                                                          check_operator=None)),
        TypeError, r"check_operator must be True or False, got None"),
    "operator: zero size": (
        lambda p: sk.aslinearoperator(lambda X: X, shape=(0, 3)), ValueError, r"shape=\(0, 3\) must be positive"),
    "measure: test matrix without columns": (
        lambda p: sk.measure(SYM, TestMatrix((D, 0), seed=0, name="o"), RunStore.open(p / "r", {"seed": 0}), "Y"),
        ValueError, r"test has shape \(20, 0\); need at least one column"),
    # --- passes, rank, certificates (issue 15): refused before any work, no store left behind
    "seigh: negative passes": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, 2, None, passes=-1, store=s)), ValueError,
        r"passes=-1 must be at least 0"),
    "seigh: non-integer passes": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, 2, None, passes=1.5, store=s)), TypeError,
        r"passes must be an integer, got 1.5"),
    "seigh: rank > n_outer": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, 2, 4, rank=3, store=s)), ValueError,
        r"rank=3 must not exceed n_outer=2"),
    "ssvd: zero rank": (
        lambda p: _no_store_left(p, lambda s: sk.ssvd(SYM, 2, rank=0, store=s, client="sync")), ValueError,
        r"rank=0 must be at least 1"),
    "seigh: n_inner with passes": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, 2, 5, passes=1, store=s)), ValueError,
        r"n_inner=5 is the inner sketch of the single-pass algorithm \(passes=0\).*give only n_outer"),
    "seigh: Krylov space larger than the operator": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, 8, None, passes=3, store=s)), ValueError,
        r"passes=3 blocks of n_outer=8 span a Krylov space of 24 dimensions, more than the operator's 20"),
    "seigh: unknown method": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, 2, None, passes=1, method="lanczos", store=s)),
        ValueError, r"method='lanczos' must be one of \('krylov', 'subspace'\)"),
    "seigh: neither n_outer nor rank": (
        lambda p: _no_store_left(p, lambda s: sk.seigh(SYM, store=s, client="sync")), TypeError,
        r"give n_outer \(the sketch size\) or rank"),
    "seigh: residuals not a bool": (
        lambda p: _no_store_left(p, lambda s: _seigh(SYM, residuals="yes", store=s)), TypeError,
        r"residuals must be True or False, got 'yes'"),
    # --- dtypes
    "seigh: integer dtype": (
        lambda p: _seigh(SYM, dtype="int32"), ValueError, r"dtype=int32 is not supported; use 'float32' or 'float64'"),
    "seigh: complex dtype": (
        lambda p: _seigh(SYM, dtype="complex128"), ValueError, r"dtype=complex128 is not supported.*complex"),
    "operator: complex matrix": (
        lambda p: sk.aslinearoperator(np.eye(3, dtype=complex)), ValueError,
        r"dtype=complex128 is not supported.*complex operators are not supported"),
    "operator: symmetric=True on a non-symmetric matrix": (
        lambda p: sk.aslinearoperator(np.triu(np.ones((4, 4))), symmetric=True), ValueError,
        r"symmetric=True was declared but x is not symmetric"),
    # --- what the operator returns
    "seigh: NaN from the operator names the chunk": (
        lambda p: _seigh(_nan_in_column(2, np.nan), chunk=2, store=str(p / "s")), NonFiniteMeasurementError,
        r"1 non-finite value\(s\) \(NaN/Inf\) in chunk 1 \(columns 2:4\) of measurement 'Y'"),
    "seigh: Inf from the operator names the chunk": (
        lambda p: _seigh(_nan_in_column(0, np.inf), chunk=1, store=str(p / "s")), FloatingPointError,
        r"in chunk 0 \(columns 0:1\)"),
    "seigh: callable returning the wrong shape": (
        lambda p: _seigh(sk.aslinearoperator(lambda X: X[:-1], shape=(D, D), dtype="float64")), ValueError,
        r"operator matmat returned shape \(19, \d+\); expected \(20, \d+\)"),
    # --- masks (sketchla.grassmann)
    "mask with duplicate indices": (
        lambda p: gm.iou(np.array([1, 1, 2]), np.array([0, 1, 2])), ValueError,
        r"m1 contains duplicate index 1; a k-sparse mask has k distinct entries"),
    "mask index out of range": (
        lambda p: gm.mask_overlap(np.array([0, 25]), Q3), ValueError,
        r"indices contains index 25 out of range for D=20"),
    "mask with a negative index": (
        lambda p: gm.hamming(np.array([0, -1]), np.array([0, 1])), ValueError, r"m1 contains negative index -1"),
    "Zarr mask with duplicates": (_zarr_mask, ValueError, r"m1 contains duplicate index 4"),
    "mask: k larger than the basis": (
        lambda p: gm.mask_overlap(np.arange(5), Q3), ValueError,
        r"indices selects k=5 entries but Q has only n=3 columns; need k <= n"),
    "overlap curve: k_max larger than the basis": (
        lambda p: gm.overlap_curve(np.arange(D), Q3, k_max=4), ValueError,
        r"k_max=4 exceeds the number of columns of Q \(3\)"),
    "chance overlap: k > D": (lambda p: gm.chance_overlap(30, D), ValueError, r"k=30 must be <= D=20"),
    "random mask: k > D": (lambda p: gm.random_mask(D, 21), ValueError, r"k=21 must be <= D=20"),
    # --- bases and metrics
    "non-orthonormal basis": (
        lambda p: gm.overlap(Q3, 2 * Q3), ValueError, r"Q2 does not have orthonormal columns: max\|Q2ᵀQ2 - I\|"),
    "non-orthonormal basis (explicit check)": (
        lambda p: gm.check_orthonormal(np.ones((D, 2))), ValueError, r"Q does not have orthonormal columns"),
    "metric: bases in different dimensions": (
        lambda p: gm.geodesic(Q3, Q3_30), ValueError, r"Q2 lives in dimension D=30 but Q1 in D=20"),
    "metric: bases with different k": (
        lambda p: gm.chordal_2(Q3, Q2), ValueError, r"Q2 has k=2 columns/entries but Q1 has k=3"),
    "metric: k > D": (lambda p: gm.overlap(np.ones((2, 3)), np.ones((2, 3))), ValueError, r"k=3 > D=2"),
    "metric: unknown name": (lambda p: gm.normalized("cosine", Q3, Q3), ValueError, r"cosine"),
    # --- least squares
    "lstsq: mismatched rows": (lambda p: _lstsq((16, 3), (15, 2)), ValueError,
        r"B has 15 rows but A has 16; they must have the same number of rows"),
    "lstsq: wide A": (lambda p: _lstsq((2, 3), (2, 1)), ValueError, r"A must be tall \(D >= n\)"),
    "lstsq: negative rcond": (lambda p: _lstsq((16, 3), (16, 1), rcond=-1.0), ValueError,
                              r"rcond must be None or a number >= 0, got -1.0"),
    "lstsq: client given as a scheduler name": (
        lambda p: _lstsq((16, 3), (16, 1), client="threads"), TypeError,
        r"client must be a distributed.Client or None .*got 'threads'"),
    "tsqr: unknown method (no output made)": (
        lambda p: _no_store_left(p, lambda s: sk.tsqr(_zarr((16, 3)), out=s, method="gram")), ValueError,
        r"method must be one of \('auto', 'cholesky', 'householder'\), got 'gram'"),
    "tsqr: fanin 1 (no output made)": (
        lambda p: _no_store_left(p, lambda s: sk.tsqr(_zarr((16, 3)), out=s, fanin=1)), ValueError,
        r"fanin must be an int >= 2, got 1"),
    "matmul: gpu not a bool (no output made)": (
        lambda p: _no_store_left(p, lambda s: sk.matmul(_zarr((16, 3)), np.eye(3), out=s, gpu="no")),
        TypeError, r"gpu must be True or False, got 'no'"),
    "inner: check_finite not a bool": (
        lambda p: sk.inner(_zarr((16, 3)), _zarr((16, 3)), check_finite="yes"), TypeError,
        r"check_finite must be True or False, got 'yes'"),
    # --- stores and options
    "store path is a file": (
        lambda p: _seigh(SYM, store=_file(p) + "/run"), ValueError,
        r"store path .* is not usable: .* exists and is not a directory"),
    "store path is a foreign directory": (
        lambda p: _seigh(SYM, store=_foreign_dir(p)),
        StoreMismatchError, r"is a non-empty directory that is not a Zarr store; refusing to use it"),
    "unknown verify level": (lambda p: _seigh(SYM, verify="sometimes"), ValueError, r"verify='sometimes' must be"),
    "store opened read-only": (
        lambda p: sk.measure(SYM, TestMatrix((D, 2), seed=0, name="o"),
                             RunStore.open(RunStore.open(p / "r", {"seed": 0}).path, mode="r"), "Y"),
        PermissionError, r"opened read-only; cannot measure into it"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_gets_a_clear_error(tmp_path, case):
    call, exc, match = CASES[case]
    with pytest.raises(exc, match=match):
        call(tmp_path)


def test_enough_cases():
    assert len(CASES) >= 15


@pytest.mark.parametrize("output,exc,match", [
    (lambda Y: Y * (1 + 1j), TypeError, r"operator matmat returned complex values \(dtype complex128\)"),
    (lambda Y: Y.astype(object).astype(str), TypeError, r"operator matmat returned non-numeric values \(dtype <U"),
    (lambda Y: Y > 0, TypeError, r"operator matmat returned non-numeric values \(dtype bool\)"),
    (lambda Y: Y[:, :1], ValueError, r"operator matmat returned shape \(20, 1\); expected \(20, 2\)"),
])
def test_operator_output_is_refused_naming_the_chunk(tmp_path, output, exc, match):
    """Complex, non-numeric or wrongly shaped operator output stops the measurement (no NumPy
    ComplexWarning and cast); the error's note names the chunk and its columns."""
    op = sk.aslinearoperator(lambda X: output(SYM @ X), shape=(D, D), dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. numpy's ComplexWarning would fail here
        with pytest.raises(exc, match=match) as ei:
            _seigh(op, chunk=2, store=str(tmp_path / "s"))
    notes = "\n".join(ei.value.__notes__)
    j = int(re.search(r"while measuring chunk (\d) \(columns (\d):(\d)\) of 'Y'", notes).group(1))
    assert f"chunk {j} (columns {2 * j}:{2 * j + 2})" in notes
    assert RunStore.open(tmp_path / "s", mode="r").done_keys("Y") == set()
