"""Helpers of the decomposition tests: a dense operator that counts the columns it is applied to."""
import sketchla as sk


class Counting:
    """Dense ``A`` as ``matmat``/``rmatmat`` (and a callable) counting the columns it is applied to."""

    def __init__(self, A):
        self.A, self.columns = A, 0

    def matmat(self, X):
        self.columns += X.shape[1]
        return self.A @ X

    __call__ = matmat

    def rmatmat(self, X):
        self.columns += X.shape[1]
        return self.A.T @ X

    def op(self, symmetric=False):
        """A sketchla operator applying ``A`` (and ``A.T`` as its adjoint) through this counter."""
        return sk.aslinearoperator(self.matmat, shape=self.A.shape, dtype="float64", rmatmat=self.rmatmat,
                                   symmetric=symmetric)
