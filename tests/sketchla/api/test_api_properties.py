"""Property test of the public API (issue 16, point 7): random inputs give the dense answer or a
documented error — never another exception, never a wrong answer.

Hypothesis draws shapes, dtypes, input kinds (NumPy, Zarr in memory or on disk, Dask; for
operators: arrays, scipy.sparse, SciPy ``LinearOperator``, callables), chunkings, block sizes,
seeds and test-matrix kinds, valid or not, for ``tsqr``, ``lstsq``, ``inner``, ``matmul``,
``measure``, ``seigh``, ``ssvd`` and the Grassmannian angles. Each case either

* is valid by the documented preconditions, and then matches a dense NumPy/SciPy reference
  within the tolerance stated here, or
* is not (``D < n``, ``n_outer > n_inner``, a zero block size, a seed of ``2**63``, mismatched
  rows, ...), and then raises one of the documented types, ``ValueError`` or ``TypeError``
  (which include ``StoreMismatchError`` and ``NonFiniteMeasurementError``) — anything else fails.

Tolerances (relative to the input's norm): ``TOL`` per dtype for the streamed linear algebra and
the measurement, which are backward stable; ``DECOMP_TOL`` for SEIGH/SSVD of operators whose rank
is at most ``n_outer``, which the single-pass sketches recover exactly up to rounding (Tropp et
al. 2019: ``Â = A`` once the sketches span A's range), amplified by the conditioning of the core
solve (``n_inner >= n_outer + 2``; in float32 ``n_inner >= 2 n_outer + 1``, the paper's choice).
A bug (a transposed factor, a wrong sign or order, a lost chunk) gives errors of order 1.

Run time: about 10 s of CPU (8 properties × ``MAX_EXAMPLES`` = 25; 25 s of wall time on the shared
2-core machine), hence ``slow``; 600 examples per property passed in a longer search.
"""
import contextlib
import os
import tempfile

import dask.array as da
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import zarr
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import sketchla as sk
from sketchla import grassmann as gm
from sketchla.random import MAX_SEED
from sketchla.store import RunStore

pytestmark = pytest.mark.slow

#: the exception types the public API documents for bad input
DOCUMENTED = (ValueError, TypeError)
#: backward-error tolerance of the streamed linear algebra and the measurement, per dtype
TOL = {"float32": 1e-4, "float64": 1e-10}
#: SEIGH/SSVD of an operator of rank <= n_outer: ||Â - A||_F / ||A||_F and the spectrum
DECOMP_TOL = {"float32": 2e-3, "float64": 1e-7}
#: examples per property; ``SKETCHLA_PROPERTY_EXAMPLES=2000`` for a long search
MAX_EXAMPLES = int(os.environ.get("SKETCHLA_PROPERTY_EXAMPLES", "25"))
SETTINGS = dict(max_examples=MAX_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(["float32", "float64"])


def _sometimes(good, bad, one_in=8):
    """``good``, but one draw in ``one_in`` from ``bad`` (values outside the documented preconditions)."""
    return st.sampled_from([False] * (one_in - 1) + [True]).flatmap(lambda b: bad if b else good)


def _size(hi):
    """A block size argument: ``None`` (the default), 1..hi, or now and then an invalid 0 or -1."""
    return _sometimes(st.none() | st.integers(1, hi), st.sampled_from([0, -1]))


#: mismatched rows between two inputs, now and then
row_offsets = _sometimes(st.just(0), st.just(1))


def _outcome(valid: bool, call):
    """``call()`` if the case is valid; else it must raise a documented type (and ``None`` is returned)."""
    event("valid input" if valid else "invalid input")
    if valid:
        return call()
    with pytest.raises(DOCUMENTED):
        call()
    return None


@contextlib.contextmanager
def _workdir():
    with tempfile.TemporaryDirectory(prefix="sketchla-prop-") as d:
        yield d


def _as(kind, X, row_chunk, where):
    """``X`` (float array) as itself, a Zarr array (in memory or on disk) or a Dask array of ``row_chunk`` rows."""
    chunks = (max(1, row_chunk),) + X.shape[1:]
    if kind == "numpy":
        return X
    if kind == "dask":
        return da.from_array(X, chunks=chunks)
    store = zarr.storage.MemoryStore() if kind == "zarr-memory" else f"{where}/{np.random.default_rng().integers(1 << 60)}"
    arr = zarr.create_array(store, shape=X.shape, chunks=chunks, dtype=X.dtype)
    arr[...] = X
    return arr


def _dense(x):
    if isinstance(x, da.Array):
        return x.compute()
    return np.asarray(x[...])


def _matrix(rng, D, n, dtype, rank=None, spread=2.0):
    """A D × n matrix with columns scaled over ``10**±spread`` (and rank ``rank`` if given)."""
    if rank is None:
        X = rng.standard_normal((D, n))
    else:
        X = rng.standard_normal((D, rank)) @ rng.standard_normal((rank, n)) if rank else np.zeros((D, n))
    return (X * 10.0 ** rng.uniform(-spread, spread, n)).astype(dtype)


def _rel(err, ref):
    return err / max(ref, np.finfo(np.float64).tiny)


kinds = st.sampled_from(["zarr-memory", "zarr-disk", "dask", "numpy"])


# --------------------------------------------------------------------------- streamed linear algebra
@settings(**SETTINGS)
@given(D=st.integers(1, 70), n=st.integers(1, 9), dtype=dtypes, kind=kinds, row_chunk=st.integers(1, 70),
       block_rows=_size(40), method=st.sampled_from(["auto", "householder"]),
       rank=st.none() | st.integers(0, 9), to_disk=st.booleans(), seed=seeds)
def test_tsqr(D, n, dtype, kind, row_chunk, block_rows, method, rank, to_disk, seed):
    rng = np.random.default_rng(seed)
    X = _matrix(rng, D, n, dtype, None if rank is None else min(rank, n))
    valid = D >= n and (block_rows is None or block_rows >= 1)
    with _workdir() as d:
        A = _as(kind, X, row_chunk, d)
        got = _outcome(valid, lambda: sk.tsqr(A, out=f"{d}/Q" if to_disk else None, block_rows=block_rows,
                                             method=method))
        if got is None:
            return
        Q, R = _dense(got[0]).astype(np.float64), np.asarray(got[1], dtype=np.float64)
    tol = TOL[dtype]
    assert Q.shape == (D, n) and R.shape == (n, n)
    assert np.all(np.tril(R, -1) == 0) and np.all(np.diag(R) >= 0)
    assert _rel(np.linalg.norm(Q @ R - X), np.linalg.norm(X.astype(np.float64))) <= tol or np.linalg.norm(X) == 0
    assert np.linalg.norm(Q.T @ Q - np.eye(n)) <= tol * n


@settings(**SETTINGS)
@given(D=st.integers(1, 70), n=st.integers(1, 6), k=st.none() | st.integers(1, 4), dtype=dtypes, kind=kinds,
       b_kind=st.sampled_from(["numpy", "zarr-memory", "dask"]), row_chunk=st.integers(1, 70),
       block_rows=_size(40), rows_off=row_offsets, seed=seeds)
def test_lstsq(D, n, k, dtype, kind, b_kind, row_chunk, block_rows, rows_off, seed):
    """Backward-stable least squares: the normal-equation residual ||Aᵀ(AX − B)|| is at rounding level."""
    rng = np.random.default_rng(seed)
    X = _matrix(rng, D, n, dtype, spread=1.0)
    Bn = rng.standard_normal((D + rows_off,) if k is None else (D + rows_off, k)).astype(dtype)
    valid = D >= n and rows_off == 0 and (block_rows is None or block_rows >= 1)
    with _workdir() as d:
        A = _as(kind, X, row_chunk, d)
        B = Bn if b_kind == "numpy" else _as(b_kind, Bn, row_chunk, d)
        x = _outcome(valid, lambda: sk.lstsq(A, B, block_rows=block_rows))
    if x is None:
        return
    assert x.shape == ((n,) if k is None else (n, k))
    A64, B64, x64 = X.astype(np.float64), Bn.astype(np.float64), np.asarray(x, dtype=np.float64)
    nA = np.linalg.norm(A64)
    normal = np.linalg.norm(A64.T @ (A64 @ x64 - B64))
    assert normal <= 10 * TOL[dtype] * nA * (nA * np.linalg.norm(x64) + np.linalg.norm(B64))


@settings(**SETTINGS)
@given(D=st.integers(1, 60), nA=st.integers(1, 7), nB=st.lists(st.none() | st.integers(1, 5), min_size=1, max_size=3),
       many=st.booleans(), dtype=dtypes, kind=kinds, b_kind=st.sampled_from(["numpy", "zarr-memory", "dask"]),
       row_chunk=st.integers(1, 60), block_rows=_size(30), rows_off=row_offsets,
       seed=seeds)
def test_inner(D, nA, nB, many, dtype, kind, b_kind, row_chunk, block_rows, rows_off, seed):
    rng = np.random.default_rng(seed)
    X = _matrix(rng, D, nA, dtype, spread=1.0)
    nB = nB if many else nB[:1]
    Bs = [rng.standard_normal((D + rows_off,) if m is None else (D + rows_off, m)).astype(dtype) for m in nB]
    valid = rows_off == 0 and (block_rows is None or block_rows >= 1)
    with _workdir() as d:
        A = _as(kind, X, row_chunk, d)
        B = [b if b_kind == "numpy" else _as(b_kind, b, row_chunk, d) for b in Bs]
        got = _outcome(valid, lambda: sk.inner(A, B if many else B[0], block_rows=block_rows))
    if got is None:
        return
    for G, Bn in zip(got if many else [got], Bs):
        ref = X.astype(np.float64).T @ Bn.astype(np.float64)
        assert G.shape == ref.shape and G.dtype == np.float64
        scale = np.linalg.norm(X.astype(np.float64)) * np.linalg.norm(Bn.astype(np.float64))
        assert np.linalg.norm(G - ref) <= TOL[dtype] * scale


@settings(**SETTINGS)
@given(D=st.integers(1, 60), n=st.integers(1, 7), m=st.integers(1, 5), dtype=dtypes, kind=kinds,
       row_chunk=st.integers(1, 60), block_rows=_size(30), to_disk=st.booleans(),
       u_rows_off=row_offsets, seed=seeds)
def test_matmul(D, n, m, dtype, kind, row_chunk, block_rows, to_disk, u_rows_off, seed):
    rng = np.random.default_rng(seed)
    X = _matrix(rng, D, n, dtype, spread=1.0)
    U = rng.standard_normal((n + u_rows_off, m)).astype(dtype)
    valid = u_rows_off == 0 and (block_rows is None or block_rows >= 1)
    with _workdir() as d:
        Q = _as(kind, X, row_chunk, d)
        got = _outcome(valid, lambda: sk.matmul(Q, U, out=f"{d}/out" if to_disk else None, block_rows=block_rows))
        if got is None:
            return
        Y = _dense(got)
    ref = X.astype(np.float64) @ U.astype(np.float64)
    assert Y.shape == (D, m)
    assert np.linalg.norm(Y - ref) <= TOL[dtype] * np.linalg.norm(X.astype(np.float64)) * np.linalg.norm(U)


# --------------------------------------------------------------------------- operators and measurement
def _operator(form, A, symmetric=False):
    """``A`` (a float64 NumPy matrix) in one of the forms :func:`sketchla.aslinearoperator` accepts."""
    if form == "array":
        return A
    if form == "sparse":
        return sp.csr_array(A)
    if form == "scipy":
        return spla.aslinearoperator(A)
    if form == "dask":
        return da.from_array(A, chunks=(max(1, A.shape[0] // 2), A.shape[1]))
    return sk.aslinearoperator(lambda X: A @ X, shape=A.shape, dtype="float64",
                               rmatmat=lambda Y: A.T @ Y, symmetric=symmetric)


forms = st.sampled_from(["array", "sparse", "scipy", "dask", "callable"])
test_kinds = st.sampled_from(["gaussian", "signs", "rademacher"])
#: seeds of runs and test matrices: valid ones, and now and then one just outside [0, 2**63)
run_seeds = _sometimes(st.integers(0, MAX_SEED), st.sampled_from([-1, MAX_SEED + 1]))


@settings(**SETTINGS)
@given(D_L=st.integers(1, 40), D_R=st.integers(1, 40), n=st.integers(0, 12), form=forms, adjoint=st.booleans(),
       kind=test_kinds, dtype=dtypes, seed=run_seeds, chunk=_size(14),
       row_block=_size(45), rows_off=row_offsets, op_seed=seeds)
def test_measure(D_L, D_R, n, form, adjoint, kind, dtype, seed, chunk, row_block, rows_off, op_seed):
    rng = np.random.default_rng(op_seed)
    A = rng.standard_normal((D_L, D_R))
    op = sk.aslinearoperator(_operator(form, A))
    if adjoint:
        op, A = op.H, A.T
    D_in = A.shape[1] + rows_off
    valid_seed = 0 <= seed <= MAX_SEED
    if not valid_seed:
        with pytest.raises(DOCUMENTED):
            sk.TestMatrix((D_in, n), seed=seed, name="omega", kind=kind, dtype=dtype)
        return
    test = sk.TestMatrix((D_in, n), seed=seed, name="omega", kind=kind, dtype=dtype)
    valid = n >= 1 and rows_off == 0 and chunk not in (0, -1) and row_block not in (0, -1)
    with _workdir() as d:
        store = RunStore.open(f"{d}/run", {"seed": seed})
        Y = _outcome(valid, lambda: sk.measure(op, test, store, "Y", chunk=chunk, row_block=row_block,
                                               client="sync", progress=False))
        if Y is None:
            return
        Y = Y[...]
    ref = A @ test.toarray().astype(np.float64)
    assert Y.shape == ref.shape and Y.dtype == np.dtype(dtype)
    scale = np.linalg.norm(A) * np.linalg.norm(test.toarray().astype(np.float64))
    assert np.linalg.norm(Y - ref) <= TOL[dtype] * scale


# --------------------------------------------------------------------------- decompositions
def _sizes(draw, D, dtype):
    """``(n_outer, n_inner)`` that fit ``D`` where they can (``n_inner >= n_outer + 2``; float32:
    ``>= 2 n_outer + 1``), and now and then sizes that are not allowed."""
    n_outer = draw(st.integers(1, max(1, min(6, D // 3))))
    lo = n_outer + 1 if dtype == "float32" else 2
    n_inner = n_outer + draw(st.integers(lo, max(lo, min(12, D - n_outer))))
    return n_outer, draw(_sometimes(st.just(n_inner), st.sampled_from([n_outer - 1, D + 1, 0])))


@st.composite
def decomposition_case(draw, symmetric):
    D_L = draw(st.integers(3, 40))
    D_R = D_L if symmetric else draw(st.integers(3, 40))
    dtype = draw(dtypes)
    n_outer, n_inner = _sizes(draw, min(D_L, D_R), dtype)
    rank = draw(st.integers(1, max(1, min(n_outer, D_L, D_R))))
    return dict(D_L=D_L, D_R=D_R, dtype=dtype, n_outer=n_outer, n_inner=n_inner, rank=rank,
                form=draw(forms), kind=draw(test_kinds), seed=draw(run_seeds), op_seed=draw(seeds),
                chunk=draw(_size(14)), on_disk=draw(st.booleans()))


def _run(fn, A, case, d, symmetric):
    op = sk.aslinearoperator(_operator(case["form"], A, symmetric), symmetric=symmetric or None)
    n_outer, n_inner, seed = case["n_outer"], case["n_inner"], case["seed"]
    valid = 1 <= n_outer <= n_inner <= min(A.shape) and 0 <= seed <= MAX_SEED and case["chunk"] not in (0, -1)
    store = f"{d}/run" if case["on_disk"] else None
    res = _outcome(valid, lambda: fn(op, n_outer, n_inner, seed=seed, store=store, client="sync",
                                     dtype=case["dtype"], chunk=case["chunk"], progress=False,
                                     test_kind=case["kind"]))
    if res is None and store is not None:
        assert not os.path.exists(store)  # refused before any file was made
    return res


@settings(**SETTINGS)
@given(case=decomposition_case(symmetric=True))
def test_seigh_recovers_operators_of_rank_at_most_n_outer(case):
    rng = np.random.default_rng(case["op_seed"])
    D, r = case["D_L"], case["rank"]
    V, _ = np.linalg.qr(rng.standard_normal((D, r)))
    lam = rng.choice([-1.0, 1.0], r) * rng.uniform(1.0, 10.0, r)
    A = (V * lam) @ V.T
    A = (A + A.T) / 2
    with _workdir() as d:
        res = _run(sk.seigh, A, case, d, symmetric=True)
        if res is None:
            return
        W, ev = res.eigenvectors.compute().astype(np.float64), res.eigenvalues
    tol = DECOMP_TOL[case["dtype"]]
    nA = np.linalg.norm(A)
    assert ev.shape == (case["n_outer"],) and W.shape == (D, case["n_outer"])
    assert np.all(np.diff(np.abs(ev)) <= tol * nA)  # sorted by descending |λ|
    assert np.linalg.norm((W * ev) @ W.T - A) <= tol * nA
    np.testing.assert_allclose(np.sort(ev[:r]), np.sort(lam), atol=tol * nA)
    assert np.all(np.abs(ev[r:]) <= tol * nA)


@settings(**SETTINGS)
@given(case=decomposition_case(symmetric=False))
def test_ssvd_recovers_operators_of_rank_at_most_n_outer(case):
    rng = np.random.default_rng(case["op_seed"])
    D_L, D_R, r = case["D_L"], case["D_R"], case["rank"]
    U0, _ = np.linalg.qr(rng.standard_normal((D_L, r)))
    V0, _ = np.linalg.qr(rng.standard_normal((D_R, r)))
    s = np.sort(rng.uniform(1.0, 10.0, r))[::-1]
    A = (U0 * s) @ V0.T
    with _workdir() as d:
        res = _run(sk.ssvd, A, case, d, symmetric=False)
        if res is None:
            return
        U, Vh, S = res.U.compute().astype(np.float64), res.Vh.compute().astype(np.float64), res.S
    tol = DECOMP_TOL[case["dtype"]]
    nA = np.linalg.norm(A)
    assert S.shape == (case["n_outer"],) and U.shape == (D_L, case["n_outer"]) and Vh.shape == (case["n_outer"], D_R)
    assert np.all(np.diff(S) <= tol * nA) and np.all(S >= -tol * nA)
    assert np.linalg.norm((U * S) @ Vh - A) <= tol * nA
    np.testing.assert_allclose(S[:r], s, atol=tol * nA)
    assert np.all(S[r:] <= tol * nA)


# --------------------------------------------------------------------------- Grassmannian angles
@settings(**SETTINGS)
@given(D=st.integers(1, 30), k1=st.integers(1, 6), k2_off=row_offsets,
       kind=st.sampled_from(["numpy", "dask", "zarr-memory"]), scale=st.sampled_from([1.0, 1.0, 1.0, 2.0]),
       seed=seeds)
def test_principal_angles_and_overlap(D, k1, k2_off, kind, scale, seed):
    rng = np.random.default_rng(seed)
    k2 = k1 + k2_off
    Q1n = gm.random_stiefel(D, k1, rng) if k1 <= D else np.zeros((D, k1))
    Q2n = gm.random_stiefel(D, k2, rng) * scale if k2 <= D else np.zeros((D, k2))
    bases_ok = k1 <= D and k2 <= D and scale == 1.0  # orthonormal bases (checked by default)
    Q1 = Q1n if kind == "numpy" else _as(kind, Q1n, max(1, D // 2), None)
    Q2 = Q2n if kind == "numpy" else _as(kind, Q2n, max(1, D // 2), None)
    angles = _outcome(bases_ok, lambda: gm.principal_angles(Q1, Q2))
    ov = _outcome(bases_ok and k1 == k2, lambda: gm.overlap(Q1, Q2))  # overlap needs the same k
    if angles is not None:
        ref = np.sort(scipy.linalg.subspace_angles(Q1n, Q2n))
        assert angles.shape == (min(k1, k2),)
        np.testing.assert_allclose(np.sort(angles), ref, atol=1e-6)
    if ov is not None:
        assert ov == pytest.approx(np.linalg.norm(Q1n.T @ Q2n) ** 2 / k1, abs=1e-10)
