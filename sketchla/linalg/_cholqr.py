"""Cholesky QR of a tall A, streamed over row blocks: ``tsqr(method="cholesky")``,
and the first choice of ``method="auto"``.

Algorithm: shifted CholeskyQR3 (Fukaya, Kannan, Nakatsukasa, Yamamoto &
Yanagisawa 2020, *SIAM J. Sci. Comput.* 42(1), A477–A503) in a streaming
form that recomputes its intermediate factors from A instead of storing them,
with the early exits of CholeskyQR2 (Yamamoto, Nakatsukasa, Yanagisawa &
Fukaya 2015, *ETNA* 44) and float64 Gram matrices for float32 data
(mixed-precision CholeskyQR: Yamazaki, Tomov & Dongarra 2015, *SIAM J. Sci.
Comput.* 37(3), C307–C330). Each pass reads every row block of A once:

* **Gram pass j** (j = 0, 1, ...; at most :data:`MAX_GRAM_PASSES`): per block
  ``Z_i = (2^-e A_i) R_0⁻¹ R_1⁻¹ … R_{j−1}⁻¹`` — a chain of triangular solves
  by the factors found so far (none in pass 0) — and ``G_i = Z_iᵀ Z_i``
  (float64, BLAS ``syrk``), summed over the blocks by a fixed tree. Then
  ``R_j = chol(G)``; where that fails or is too ill-conditioned to trust
  (estimated κ₂ > :data:`GRAM_COND`), the shifted ``R_j = chol(G + s I)``
  with ``s = u · ‖G‖_F`` (×10 until it succeeds) — the shift of Fukaya et
  al., started far below their worst-case bound ``11(mn + n(n+1)) u ‖A‖₂²``;
  one shifted step divides κ₂ by about ``sqrt(s / ‖G‖₂) ≲ 1e-7``.
* **Decision** (from R_j's estimated κ₂, :func:`._kernels.cond_estimate`): a
  plain factor with κ₂ ≤ the final bound below makes ``Z R_j⁻¹`` orthonormal
  to the dtype's target → the final pass; otherwise R_j joins the chain and
  another Gram pass follows (one plain step from κ₂ ≤ ``GRAM_COND`` leaves
  κ₂ ≈ 1 + O(u κ₂²): CholeskyQR2).
* **Final pass**: ``Q_i = Z_i R_k⁻¹``, written to ``out`` or lazy.
  ``R = R_k ⋯ R_1 R_0 · 2^e``. For float32 data whose ``R`` has κ₂ ≤
  :data:`PRODUCT_COND`, instead one float64 solve ``Q_i = (2^-e A_i) R⁻¹``
  (a chain's solves cost as much as a Gram each: this saves one per chain
  factor; Q moves by ≲ u₆₄·κ₂(R) ≤ 1e-8 from the chain's, far inside the
  float32 target).

Passes over A: 2 for a well-conditioned A (κ₂ ≤ 1e4 with float32 data, ≤ 10
with float64 data), 3 up to κ₂ ≈ ``GRAM_COND`` = 1e6, 4 up to κ₂ ≈ 1e13 (a
shifted first step); a numerically rank-deficient A does not converge and
is refused (``ValueError``) after ``MAX_GRAM_PASSES`` Gram passes.

Precision of each product. Gram matrices: always float64 (a float32 entry's
products are exact in float64). Triangular solves (chains and final): float64
— except the final solve of a float32 A without a chain and with κ₂(R_0) ≤
:data:`FAST_COND`, which runs in float32. A float32 A with κ₂ ≫ 1/u₃₂ must
have its chain in float64: a float32 solve by R_0 would make Z's error
u₃₂·κ₂(A), more than Z itself. Measured ‖QᵀQ − I‖_max of one step
(40,000 × 256): float32 data, float32 solve 1.7e-7 at κ₂ ≤ 10 (Householder's
level; 2.7e-6 at 1e3); float64 solve ≤ 3e-9 up to κ₂ = 1e4 (2e-7 at 1e5);
float64 data 4e-15 at κ₂ = 10, 1.3e-13 at 100.

Reproducibility. With a chain (k ≥ 1) the final pass must recompute
exactly the Z_k whose Gram gave R_k: another rounding (another BLAS build or
CPU kind on another worker) would change Z_k by about u·κ₂(A) and Q's
orthogonality with it. Each Gram pass therefore records a checksum of the
bits of every Z_i, and the final pass compares: a mismatch raises
:class:`NotReproducibleError` (``method="auto"`` then falls back to
Householder TSQR). On one machine the same kernels on the same block give
the same bits.

Scaling: pass 0 scales each block by a power of two outside the safe range
(:mod:`._kernels`) and the Gram sums carry the exponents; later passes use
the common exponent e, so subnormal entries and entries near the dtype's
largest value factor like any others.

Flops per m×n block: a Gram 2mn² (``syrk`` counts mn²; written as the
GEMM-equivalent 2mn² in the benchmarks' roofline only if stated), a solve
mn². Bytes: A read once per pass, Q written once.
"""
from __future__ import annotations

import dataclasses
import logging

import dask
import dask.array as da
import numpy as np

from ..backend import asnumpy, get_array_module
from ..executor import compute
from ._blocks import checked_max_abs, materialize, write_block
from ._kernels import bits_checksum, cholesky_upper, cond_estimate, gram, scale_exponent, solve_right

logger = logging.getLogger(__name__)

#: Gram passes before a non-converging (numerically rank-deficient) A is refused
MAX_GRAM_PASSES = 3
#: κ₂ up to which a plain Cholesky factor of a float64 Gram is trusted as a preconditioner
#: (u₆₄·κ₂² ≤ 1e-4: the next step's κ₂ is 1 + O(1e-4))
GRAM_COND = 1e6
#: κ₂ of R_0 up to which a float32 A's final solve runs in float32 (no chain)
FAST_COND = 10.0
#: κ₂ of the last factor up to which the final solve in float64 meets the target, by the
#: data's itemsize (float32: ‖QᵀQ − I‖ ≤ 1e-6, measured ≤ 3e-9; float64: ≤ 1e-13, measured 4e-15)
FINAL_COND64 = {4: 1e4, 8: 10.0}
#: κ₂ of ``R_k ⋯ R_0`` up to which a float32 A's final pass solves by that product once (in
#: float64) instead of recomputing the chain: Q then differs from the chain's by ≲ u₆₄·κ₂ ≤ 1e-8,
#: far inside float32's target, and the final pass needs no bit-identical Z (no checksum)
PRODUCT_COND = 1e8
#: the first shift is SHIFT · u₆₄ · ‖G‖_F; multiplied by 10 per failed Cholesky
SHIFT = 1.0
_SHIFT_TRIES = 10
#: fan-in of the tree that sums the per-block Gram matrices
_SUM_FANIN = 16


class NotReproducibleError(RuntimeError):
    """The final pass of a Cholesky QR recomputed an intermediate block with other bits than
    the Gram pass that factorised it (another BLAS or CPU kind): Q would not be orthonormal."""


#: rows per slab of a block: Z is formed, solved and multiplied slab by slab (8 MiB of float64
#: at n = 256: cache-sized, and no block-sized float64 copy); CuPy blocks go whole
SLAB_ROWS = 4096


@dataclasses.dataclass(frozen=True)
class _Chain:
    """What a pass applies to each block: ``Z = (2^-e A_i) R_0⁻¹ … R_{k−1}⁻¹`` in ``dtype``."""

    e: int
    factors: tuple = ()
    dtype: str = "float64"

    def slabs(self, block):
        """``(start, Z[start:stop])`` for consecutive row slabs of the block's Z (a scratch
        buffer, valid until the next slab). Each row of Z depends on that row of A only, so
        Z's bits do not depend on the slabs."""
        xp = get_array_module(block)
        m = block.shape[0]
        step = SLAB_ROWS if xp is np else max(m, 1)
        buf = None
        for s in range(0, m, step):
            part = block[s:s + step]
            if buf is None or buf.shape[0] != part.shape[0]:
                buf = xp.empty(part.shape, dtype=self.dtype)
            buf[...] = part
            if self.e:
                xp.ldexp(buf, -self.e, out=buf)
            z = buf
            for r in self.factors:
                z = solve_right(z, r, owned=True)
            yield s, z


def _gram_slabs(block, chain, with_checksum: bool):
    """``(Σ ZᵀZ over the block's slabs (float64), checksum of Z's bits or None)``."""
    g, total = None, 0
    for _, z in chain.slabs(block):
        part = gram(z)
        g = part if g is None else g + part
        if with_checksum:
            total = (total + bits_checksum(z)) % 2**64
    return g, (total if with_checksum else None)


def _gram0(ref, index, start, stop, check):
    """Pass 0 for block i → ``(G_i, e_i, None)``: the Gram of ``2^-e_i A_i`` (float64) with the
    block's own exponent e_i (0 in the safe range); the finiteness check."""
    block = materialize(ref)
    e = scale_exponent(checked_max_abs(block, "A", index, start, stop, check))
    g, _ = _gram_slabs(block, _Chain(e), False)
    return g, e, None


def _gram(ref, chain):
    """Pass j ≥ 1 for one block → ``(G_i, e, checksum of Z_i)``."""
    g, checksum = _gram_slabs(materialize(ref), chain, True)
    return g, chain.e, checksum


def _sum_grams(*parts):
    """Sum ``(G, e, _)`` parts at their largest common scale: ``Σ G_j · 4^(e_j − e)``."""
    e = max(p[1] for p in parts)
    total = None
    for g, e_j, _ in parts:
        if e_j != e:
            g = get_array_module(g).ldexp(g, 2 * (e_j - e))
        total = g.copy() if total is None else total + g
    return total, e, None


def _q(ref, index, chain, r_last, checksum, out_dtype):
    """Final pass for block i: ``Q_i = Z_i R_k⁻¹`` in ``out_dtype``, Z_i checked against its Gram pass."""
    block = materialize(ref)
    xp = get_array_module(block)
    q = xp.empty(block.shape, dtype=out_dtype)
    total = 0
    for s, z in chain.slabs(block):
        if chain.factors:
            total = (total + bits_checksum(z)) % 2**64
        q[s:s + z.shape[0]] = solve_right(z, r_last, owned=True)
    if chain.factors and total != checksum:
        raise NotReproducibleError(
            f"tsqr(method='cholesky'): row block {index} recomputed with other bits than in the pass "
            "that factorised it (another BLAS or CPU kind on this worker?); its Q would not be "
            "orthonormal. Use method='householder' (or 'auto', which falls back to it).")
    return q


def _q_write(ref, out, index, start, stop, chain, r_last, checksum, gpu):
    write_block(out, start, stop, _q(ref, index, chain, r_last, checksum, out.dtype), gpu)
    return stop - start


def _factor(G):
    """``(R, shift, κ₂)`` of the Gram G: the plain Cholesky factor if it exists with κ₂ ≤
    GRAM_COND, else the shifted one (first shift ``SHIFT · u · ‖G‖_F``, ×10 while the
    factorisation fails); ``(None, shift, inf)`` if G is not finite or every shift fails."""
    g = np.asarray(asnumpy(G), dtype=np.float64)
    if not np.isfinite(g).all():
        return None, 0.0, float("inf")
    r = cholesky_upper(g)
    if r is not None:
        kappa = cond_estimate(r)
        if kappa <= GRAM_COND:
            return r, 0.0, kappa
    shift = SHIFT * float(np.finfo(np.float64).eps) * max(float(np.linalg.norm(g)), np.finfo(np.float64).tiny)
    for _ in range(_SHIFT_TRIES):
        r = cholesky_upper(g, shift)
        if r is not None:
            return r, shift, cond_estimate(r)
        shift *= 10.0
    return None, shift, float("inf")


def _gram_pass(refs, bounds, chain, j, prefix, check, client):
    """One Gram pass → ``(G, e, checksums)`` (checksums ``None`` for pass 0)."""
    if j == 0:
        parts = [dask.delayed(_gram0, pure=True)(ref, i, s, e, check, dask_key_name=f"{prefix}-gram0-{i}")
                 for i, (ref, (s, e)) in enumerate(zip(refs, bounds))]
    else:
        c = dask.delayed(chain, pure=True, name=f"{prefix}-chain{j}")
        parts = [dask.delayed(_gram, pure=True)(ref, c, dask_key_name=f"{prefix}-gram{j}-{i}")
                 for i, ref in enumerate(refs)]
    sums = [p[2] for p in parts] if j else []
    level, depth = parts, 0
    while len(level) > 1:
        level = [dask.delayed(_sum_grams, pure=True)(*level[k:k + _SUM_FANIN],
                                                     dask_key_name=f"{prefix}-gsum{j}-{depth}-{k}")
                 for k in range(0, len(level), _SUM_FANIN)]
        depth += 1
    (G, e, _), sums = compute(level[0], sums, client=client)
    return G, e, (sums or None)


@dataclasses.dataclass(frozen=True)
class CholeskyFactor:
    """The Gram passes' result: what the final pass applies to each row block.

    ``chain``: the solves that recompute each block's Z (with the scaling
    ``2^-e``); ``r_last``: the factor Z is solved by last; ``sums``: each
    block's checksum of Z from the pass that factorised it (``None`` without
    a chain); ``r``: ``R = R_k ⋯ R_0`` (float64) with ``e``; ``info`` as
    :func:`cholesky_tsqr` reports it. :meth:`q_block` is the final pass of one block.
    """

    chain: _Chain
    r_last: np.ndarray
    sums: tuple | None
    r: np.ndarray
    e: int
    info: dict

    def state(self) -> tuple[dict, dict]:
        """``(arrays, info)``: the factor as named float64 arrays and JSON facts (to save it)."""
        arrays = {"r_last": self.r_last, "r": self.r, **{f"chain{k}": f for k, f in enumerate(self.chain.factors)}}
        info = {"e": int(self.e), "dtype": self.chain.dtype, "n_chain": len(self.chain.factors), "info": self.info,
                "sums": None if self.sums is None else [str(int(x)) for x in self.sums]}
        return arrays, info

    @classmethod
    def from_state(cls, arrays: dict, info: dict) -> "CholeskyFactor":
        """The factor :meth:`state` described."""
        chain = tuple(np.asarray(arrays[f"chain{k}"], dtype=np.float64) for k in range(int(info["n_chain"])))
        sums = None if info["sums"] is None else tuple(int(x) for x in info["sums"])
        return cls(_Chain(int(info["e"]), chain, info["dtype"]), np.asarray(arrays["r_last"], dtype=np.float64),
                   sums, np.asarray(arrays["r"], dtype=np.float64), int(info["e"]), dict(info["info"]))

    def q_block(self, block, index: int, out_dtype):
        """``Q_i`` of row block ``index`` (NumPy/CuPy ``block`` of A's rows), checked against its Gram pass."""
        return _q(block, index, self.chain, self.r_last, None if self.sums is None else self.sums[index],
                  out_dtype)


def cholesky_factor(src, refs, bounds, prefix, check_finite, client, *, auto: bool, lazy: bool = False):
    """The Gram passes of :func:`cholesky_tsqr` (module docstring) → :class:`CholeskyFactor`.

    ``None`` with ``auto`` where Householder TSQR should be used instead
    (see :func:`cholesky_tsqr`; ``lazy``: Q is to be a lazy Dask array, which
    must not need a chain). Without ``auto``, a numerically rank-deficient A
    raises ``ValueError``.
    """
    n = src.n_cols
    itemsize = src.dtype.itemsize
    factors, e, shifted = [], 0, False
    for j in range(MAX_GRAM_PASSES):
        chain = _Chain(e, tuple(factors))
        G, e_j, sums = _gram_pass(refs, bounds, chain, j, prefix, check_finite, client)
        if j == 0:
            e = e_j
        r, shift, kappa = _factor(G)
        logger.info("tsqr cholesky: Gram pass %d, κ₂(R_%d) ≈ %.3g%s", j, j, kappa,
                    f" (shifted by {shift:.3g})" if shift else "")
        if r is None:
            break
        fast = itemsize == 4 and not factors and kappa <= FAST_COND
        if not shift and (fast or kappa <= FINAL_COND64[itemsize]):
            last = _Chain(e, tuple(factors), "float32" if fast else "float64")
            r_all = _r_product(r, factors)
            if itemsize == 4 and factors and cond_estimate(r_all) <= PRODUCT_COND:
                last, r, sums = _Chain(e, (), "float64"), r_all, None  # one solve by R_k ⋯ R_0
            info = {"passes": j + 2, "final": last.dtype, "shifted": shifted,
                    "product_solve": not last.factors and bool(factors)}
            return CholeskyFactor(last, r, None if sums is None else tuple(sums), r_all, e, info)
        if auto and (shift or j > 0 or lazy):
            logger.info("tsqr auto: A is not well conditioned enough for Cholesky QR; Householder TSQR")
            return None
        factors.append(r)
        shifted = shifted or bool(shift)
    if auto:
        return None
    if r is None and kappa == float("inf") and not shift:
        raise ValueError("A contains NaN or Inf (check_finite=False let it through); its QR is undefined")
    raise ValueError(
        f"A ({src.shape[0]}×{n}) is numerically rank deficient (or κ₂ ≳ 1e13): tsqr(method='cholesky') "
        f"did not converge in {MAX_GRAM_PASSES} Gram passes; use method='householder' or 'auto'")


def cholesky_tsqr(src, out, bounds, prefix, out_dtype, check_finite, gpu, client, *, auto: bool):
    """Cholesky QR of the :class:`._blocks._Source` ``src`` cut into ``bounds`` (module docstring).

    Returns ``(Q, (R, e), info)`` — ``out`` written or a lazy Dask Q, R as a
    pair ``R · 2^e`` (float64, diag > 0), and ``info``: the number of
    ``passes`` over A, the dtype of the ``final`` solve, whether a step was
    ``shifted``, whether the final pass solved once by the ``product_solve`` — or,
    with ``auto``, ``None`` where Householder TSQR should be used instead:
    after Gram pass 0 if A is not clearly well conditioned (plain factor with
    κ₂ ≤ ``GRAM_COND``), if a chain would be needed for a lazy Q (its blocks
    could be computed later elsewhere), or if pass 1 did not finish it.
    ``NotReproducibleError`` propagates from the final pass of a written Q.
    Without ``auto``, a numerically rank-deficient A raises ``ValueError``.
    """
    refs = src.blocks(bounds)
    f = cholesky_factor(src, refs, bounds, prefix, check_finite, client, auto=auto, lazy=out is None)
    if f is None:
        return None
    q = _final(src, refs, bounds, out, f.chain, f.r_last, f.sums, prefix, out_dtype, gpu, client)
    return q, (f.r, f.e), f.info


def describe(info: dict) -> str:
    """``"Cholesky QR in k passes over A (final solve in …)"``: what ``info`` (of
    :func:`cholesky_factor`) says was done, as ``tsqr`` logs it (the benchmarks' roofline parses it)."""
    extra = ((", one solve by the product of the factors" if info["product_solve"] else "")
             + (", a shifted step" if info["shifted"] else ""))
    return f"Cholesky QR in {info['passes']} passes over A (final solve in {info['final']}{extra})"


def _r_product(r, factors):
    """``R_k R_{k−1} ⋯ R_0`` (float64, upper triangular, positive diagonal)."""
    out = r
    for f in reversed(factors):
        out = out @ f
    return np.triu(out)


def _final(src, refs, bounds, out, chain, r, sums, prefix, out_dtype, gpu, client):
    """The final pass: Q written to ``out`` (returned), or a lazy Dask Q."""
    n = src.n_cols
    sums = sums or [None] * len(refs)
    c = dask.delayed(chain, pure=True, name=f"{prefix}-final-chain")
    r_last = dask.delayed(r, pure=True, name=f"{prefix}-final-r")
    if out is not None:
        tasks = [dask.delayed(_q_write, pure=True)(ref, out, i, s, e, c, r_last, k, gpu,
                                                   dask_key_name=f"{prefix}-cq-{i}")
                 for i, (ref, (s, e), k) in enumerate(zip(refs, bounds, sums))]
        compute(tasks, client=client)
        return out
    meta = src.xp().empty((0, 0), dtype=out_dtype)
    parts = [da.from_delayed(dask.delayed(_q, pure=True)(ref, i, c, r_last, k, out_dtype,
                                                         dask_key_name=f"{prefix}-cq-{i}"),
                             shape=(e - s, n), dtype=out_dtype, meta=meta)
             for i, (ref, (s, e), k) in enumerate(zip(refs, bounds, sums))]
    return da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
