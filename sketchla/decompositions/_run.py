"""One SEIGH / SSVD call over its run store: decompose (or reopen), then certify, on one scheduler.

:func:`run_and_certify` checks the operator against the store, takes its
writer lock, resolves the
scheduler once (:func:`sketchla.executor.run_schedulers`) only if there is
work to do, runs the decomposition's stages where the store lacks its core,
and computes the certificates the call asks for (error probes, residuals) on
the *same* schedulers — never on a cluster of their own.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ..executor import run_schedulers
from ._checks import check_n_probes
from ._passes import _Pass
from ._stages import check_identity, checksum_hint, record_identity

log = logging.getLogger(__name__)


def check_certificates(n_probes, residuals) -> tuple[int, bool]:
    """``n_probes ≥ 0`` and a bool ``residuals``, else an error naming the argument."""
    if not isinstance(residuals, (bool, np.bool_)):
        raise TypeError(f"residuals must be True or False, got {residuals!r}")
    return check_n_probes(n_probes), bool(residuals)


def run_and_certify(run, result_cls, op, stages, sizes, *, identity, seed, test_kind, dtype, chunk, client,
                    n_probes, residuals, progress, verify, gpu, operator_id):
    """The result of ``run`` (a :class:`~sketchla.store.RunStore`) with its certificates, after
    its warnings (:meth:`~.results._Result._warn`) went to the public call's caller.

    ``identity``: the run's measurements ``(op, test, name)`` in the order
    :func:`._stages.check_identity` tries them; the operator is checked against
    them before the store's lock is taken, and ``operator_id`` is recorded under it.
    ``stages = (single_pass, multi_pass)``: the decomposition's stage functions
    ``f(op, sizes, seed, test_kind, dtype, chunk, ctx)`` (``ctx`` a
    :class:`._passes._Pass` on the resolved schedulers, timing its steps), the second for
    ``passes ≥ 1``; the one that applies runs only when the store has no valid
    stage ``core`` and saves it. Called by ``seigh``/``ssvd`` directly (the
    warnings' stack level counts on that).
    """
    check_identity(run, operator_id, identity, client, verify)
    result = _run_locked(run, result_cls, op, stages, sizes, seed=seed, test_kind=test_kind, dtype=dtype,
                         chunk=chunk, client=client, n_probes=n_probes, residuals=residuals, progress=progress,
                         verify=verify, gpu=gpu, operator_id=operator_id)
    result._warn(stacklevel=4)  # warnings.warn ← _warn ← here ← seigh/ssvd ← the user's call
    return result


def _run_locked(run, result_cls, op, stages, sizes, *, seed, test_kind, dtype, chunk, client, n_probes,
                residuals, progress, verify, gpu, operator_id):
    """:func:`run_and_certify` under the store's lock: decompose or reopen, then certify."""
    with run.lock(), checksum_hint(run):
        record_identity(run, operator_id)
        done = run.get_stage("core", verify=verify) is not None
        result = result_cls.from_store(run, sizes.rank) if done else None
        if done and not result._needs(n_probes, residuals):
            log.info("%s: store %s already holds this result; reopening", run.params["algorithm"], run.path)
            return result
        t_start = time.perf_counter()
        with run_schedulers(client) as (c_measure, c_linalg):
            if not done:
                timings = dict(run.get_stage("timings") or {})
                ctx = _Pass(run, c_measure, c_linalg, progress, verify, gpu, timings)
                stages[sizes.passes > 0](op, sizes, seed, test_kind, dtype, chunk, ctx)
                run.set_stage("timings", timings)
                log.info("%s done in %.1f s: %s", run.params["algorithm"], time.perf_counter() - t_start, timings)
                result = result_cls.from_store(run, sizes.rank)
            if n_probes and (result.error is None or result.error.n_probes != n_probes):
                result._certify(op, n_probes, None, c_measure, c_linalg, progress, op_checked=True)
            if residuals and result.residual_norms is None:
                result._residuals(op, c_measure, c_linalg, progress, op_checked=True)
        return result
