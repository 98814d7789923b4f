"""Adapters of every input kind against a dense reference; symmetry and adjoint declarations; bad input."""
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl

import sketchla as sk
from sketchla.operators import CallableOperator, LinearOperator, aslinearoperator

RNG = np.random.default_rng(0)
A = RNG.standard_normal((7, 5))
X = RNG.standard_normal((5, 3))
Yb = RNG.standard_normal((7, 3))


def _inputs():
    return {
        "numpy": (A, True),
        "numpy-int": (np.arange(35).reshape(7, 5), True),
        "dask": (da.from_array(A, chunks=(3, 2)), True),
        "csr_matrix": (sp.csr_matrix(A), True),
        "coo_array": (sp.coo_array(A), True),
        "scipy-LinearOperator": (spl.aslinearoperator(A), True),
        # SciPy's convention: every LinearOperator has an adjoint; this one fails when it is first used
        "scipy-custom-noadjoint": (spl.LinearOperator((7, 5), matvec=lambda v: A @ v, dtype=np.float64), False),
        "scipy-custom-adjoint": (spl.LinearOperator((7, 5), matvec=lambda v: A @ v,
                                                    rmatvec=lambda v: A.T @ v, dtype=np.float64), True),
    }


@pytest.mark.parametrize("kind", list(_inputs()))
def test_adapters_match_dense_reference(kind):
    x, adj = _inputs()[kind]
    dense = np.asarray(x.toarray() if sp.issparse(x) else (x.compute() if kind == "dask" else
                       (A if "scipy" in kind else x)), dtype=np.float64)
    op = aslinearoperator(x)
    assert op.shape == (7, 5) and op.dtype == np.float64
    np.testing.assert_allclose(op.matmat(X), dense @ X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op @ X[:, 0], (dense @ X[:, :1]), rtol=1e-12, atol=1e-12)  # 1-D -> column
    assert op.has_adjoint  # declared by every adapter; SciPy's by its convention
    if adj:
        np.testing.assert_allclose(op.rmatmat(Yb), dense.T @ Yb, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(op.H.matmat(Yb), dense.T @ Yb, rtol=1e-12, atol=1e-12)
    else:
        with pytest.raises(TypeError, match="has no adjoint.*has_adjoint=False"):
            op.rmatmat(Yb)


def test_scipy_operator_without_adjoint_can_be_declared():
    slo = spl.LinearOperator((7, 5), matvec=lambda v: A @ v, dtype=np.float64)
    op = aslinearoperator(slo, has_adjoint=False)
    assert not op.has_adjoint
    with pytest.raises(TypeError, match="no adjoint"):
        op.H
    with pytest.raises(ValueError, match="has_adjoint= is only used for scipy"):
        aslinearoperator(A, has_adjoint=False)
    # declared symmetric, no rmatvec: the adjoint is the operator itself
    S = A[:5, :5] + A[:5, :5].T
    sym = aslinearoperator(spl.LinearOperator((5, 5), matvec=lambda v: S @ v, dtype=np.float64), symmetric=True)
    np.testing.assert_allclose(sym.rmatmat(X), S @ X, rtol=1e-12)


def test_callable_with_and_without_adjoint():
    op = aslinearoperator(lambda Z: A @ Z, shape=(7, 5), rmatmat=lambda Z: A.T @ Z, dtype="float64")
    assert isinstance(op, CallableOperator) and op.has_adjoint
    np.testing.assert_allclose(op.matmat(X), A @ X)
    np.testing.assert_allclose(op.rmatmat(Yb), A.T @ Yb)
    op32 = aslinearoperator(lambda Z: A @ Z, shape=(7, 5))
    assert op32.dtype == np.float32 and not op32.has_adjoint


def test_callable_wrong_output_shape_names_expected_and_got():
    op = aslinearoperator(lambda Z: Z[:4], shape=(7, 5))
    with pytest.raises(ValueError, match=r"returned shape \(4, 3\); expected \(7, 3\)"):
        op.matmat(X)


def test_wrong_input_block_shape():
    op = aslinearoperator(A)
    with pytest.raises(ValueError, match=r"X has shape \(4, 3\); expected \(5, b\)"):
        op.matmat(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"Y has shape"):
        op.rmatmat(np.ones((5, 3)))


def test_duck_typed_object_and_existing_operator():
    class Duck:
        shape = (7, 5)
        dtype = np.float64

        def __init__(self):
            self.setups = 0

        def setup(self):
            self.setups += 1

        def matmat(self, Z):
            return A @ Z

    d = Duck()
    op = aslinearoperator(d)
    np.testing.assert_allclose(op.matmat(X), A @ X)
    op.matmat(X)
    assert d.setups == 1 and not op.has_adjoint
    assert aslinearoperator(op) is op
    sym = aslinearoperator(aslinearoperator(A @ A.T), symmetric=True)
    assert sym.symmetric and sym.has_adjoint


def test_symmetric_declaration():
    S = A @ A.T
    assert not aslinearoperator(S).symmetric  # never assumed
    op = aslinearoperator(S, symmetric=True)
    assert op.symmetric and op.has_adjoint
    np.testing.assert_allclose(op.rmatmat(Yb), S @ Yb)
    f = aslinearoperator(lambda Z: S @ Z, shape=(7, 7), symmetric=True)
    np.testing.assert_allclose(f.rmatmat(Yb), S @ Yb)  # adjoint falls back to matmat
    with pytest.raises(ValueError, match="not symmetric"):
        aslinearoperator(A[:5, :5], symmetric=True)
    with pytest.raises(ValueError, match="not symmetric"):
        aslinearoperator(sp.csr_matrix(A[:5, :5]), symmetric=True)
    with pytest.raises(ValueError, match="not square"):
        aslinearoperator(A, symmetric=True)
    with pytest.raises(ValueError, match="not square"):
        aslinearoperator(lambda Z: Z, shape=(3, 4), symmetric=True)


@pytest.mark.parametrize("bad,kwargs,exc,match", [
    (lambda Z: Z, {}, ValueError, "shape"),
    (lambda Z: Z, {"shape": (0, 3)}, ValueError, "shape"),
    (lambda Z: Z, {"shape": (3, 3), "dtype": "int32"}, ValueError, "dtype"),
    (A.astype(np.complex128), {}, ValueError, "dtype"),
    (A, {"shape": (5, 7)}, ValueError, "shape"),
    (A, {"rmatmat": lambda Z: Z}, ValueError, "rmatmat"),
    (lambda Z: Z, {"shape": (3, 3), "rmatmat": 3}, TypeError, "rmatmat"),
    ("not an operator", {}, TypeError, "cannot make a linear operator"),
    (np.ones(4), {}, ValueError, "2-D"),
])
def test_bad_input(bad, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        aslinearoperator(bad, **kwargs)


def test_lazy_public_names():
    assert sk.aslinearoperator is aslinearoperator and sk.LinearOperator is LinearOperator


@pytest.mark.gpu
def test_cupy_blocks_round_trip():
    import cupy

    for x in (A, cupy.asarray(A), sp.csr_matrix(A)):
        op = aslinearoperator(x)
        out = op.matmat(cupy.asarray(X))
        assert isinstance(out, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(out), A @ X, rtol=1e-12)
        out_np = op.matmat(X)
        assert isinstance(out_np, np.ndarray)
