"""Which Dask scheduler runs the work, and running it there: the one place that decides.

Two rules, because two kinds of callers take a ``client=`` argument:

**Runs** — :func:`sketchla.measure`, :func:`sketchla.seigh`, :func:`sketchla.ssvd`
(through :func:`client_context` / :func:`run_schedulers`), in this order:

1. an explicit ``distributed.Client`` -> used as is (never closed here);
2. a scheduler address ``"tcp://host:port"`` (e.g. a ``dask scheduler`` with
   ``dask worker`` or ``dask-cuda-worker`` GPU workers) -> a Client connected
   to it (closed on exit; the cluster itself is not touched);
3. ``client=False`` or ``"threads"`` / ``"sync"`` (also as ``address=``) -> no
   cluster: Dask's threaded (or synchronous) scheduler in this process;
4. ``client=None`` and a global default Client already exists -> that one
   (unless ``gpu=True``);
5. ``client=None``, nothing else given and the work is *small* -> threaded
   scheduler. Small (:func:`is_small`): the operator is not built on the
   workers (not a :class:`~sketchla.operators.RecipeOperator`) and the
   measured sketch is at most :data:`SMALL_WORK_BYTES` — starting a
   LocalCluster would cost seconds, more than the whole computation;
6. otherwise an embedded cluster created here and closed on exit:
   ``LocalCUDACluster`` from ``dask_cuda`` when ``gpu=True`` (one worker per
   GPU), else a ``LocalCluster`` sized to the machine.

A run resolves ``client`` once (:func:`run_schedulers`) and hands the result
to its measurements and to its linear algebra.

**Streamed linear algebra** — :func:`sketchla.tsqr`, :func:`~sketchla.linalg.lstsq`,
:func:`~sketchla.linalg.inner`, :func:`~sketchla.linalg.matmul` (through
:func:`compute`): a given ``distributed.Client``, else the scheduler Dask
would use anyway (the threaded one by default, the default Client when one
is set). While several tasks share this process's cores, BLAS is limited to
its share of them (:func:`blas_limit`).

:func:`client_context` (a context manager) closes whatever it created;
:func:`get_client` is the same without the automatic close (the caller
closes the returned client; an embedded cluster closes with it).
:func:`run_graph` runs a raw task graph on the resolved scheduler, with
progress reporting.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os

import dask
import dask.local
import dask.threaded
from dask.diagnostics import ProgressBar

# ``distributed`` is imported where a Client is needed: importing it costs about
# half a second, which in-process runs (rules 3 and 5) do not pay.

__all__ = ["client_context", "get_client", "LOCAL_SCHEDULERS", "SMALL_WORK_BYTES", "is_small",
           "run_schedulers", "compute", "run_graph", "active_client", "blas_limit"]

logger = logging.getLogger(__name__)

#: address strings meaning "no cluster, run in this process"
LOCAL_SCHEDULERS = ("threads", "sync", "synchronous")
#: rule 5: work on a sketch of at most this many bytes runs on the threaded scheduler
SMALL_WORK_BYTES = 64 * 2**20


# --------------------------------------------------------------------------- runs
def is_small(op, nbytes: int) -> bool:
    """Rule 5: in-process work for ``op`` measuring ``nbytes`` (the sketch's size)."""
    return op is not None and not op.built_on_workers and int(nbytes) <= SMALL_WORK_BYTES


def _existing_default_client():
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _resolve(client, address, gpu, n_workers, threads_per_worker, processes, small, cluster_kwargs):
    """Return ``(client_or_scheduler_name, close_callback_or_None)`` by rules 1–6."""
    if client is not None and client is not False:
        from distributed import Client

        if isinstance(client, str):
            if address is not None:
                raise ValueError("give either client=<address> or address=, not both")
            address, client = client, None
        elif not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client, an address string or False, got {type(client).__name__}")
        else:
            return client, None
    if client is False:
        return "threads", None
    if address is not None:
        if not isinstance(address, str):
            raise TypeError(f"address must be a string, got {type(address).__name__}")
        if address in LOCAL_SCHEDULERS:
            return ("sync" if address.startswith("sync") else "threads"), None
        if "://" not in address and ":" not in address:
            raise ValueError(f"address={address!r} is not a scheduler address like 'tcp://127.0.0.1:8786' or 'threads'")
        from distributed import Client

        c = Client(address, set_as_default=False)
        logger.info("connected to Dask scheduler %s (dashboard: %s)", address, c.dashboard_link)
        return c, c.close
    existing = _existing_default_client()
    if existing is not None and not gpu:
        return existing, None
    if small and not gpu and n_workers is None:
        return "threads", None
    return _embedded_cluster(gpu, n_workers, threads_per_worker, processes, cluster_kwargs)


def _embedded_cluster(gpu, n_workers, threads_per_worker, processes, cluster_kwargs):
    """Rule 6: a ``LocalCUDACluster`` (``gpu``) or ``LocalCluster`` and its client."""
    from distributed import Client

    if gpu:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError as exc:
            raise ImportError(
                "gpu=True needs dask-cuda (pip install 'sketchla[gpu]'), or start "
                "'dask scheduler' and 'dask-cuda-worker' and pass address="
            ) from exc
        cluster = LocalCUDACluster(n_workers=n_workers, threads_per_worker=threads_per_worker or 1,
                                   dashboard_address=":0", **cluster_kwargs)
    else:
        from distributed import LocalCluster

        kw = dict(processes=processes, dashboard_address=":0", silence_logs=logging.WARNING)
        if n_workers is not None:
            kw["n_workers"] = int(n_workers)
        if threads_per_worker is not None:
            kw["threads_per_worker"] = int(threads_per_worker)
        kw.update(cluster_kwargs)
        cluster = LocalCluster(**kw)
    c = Client(cluster, set_as_default=False)

    def _close():
        c.close()
        cluster.close()

    logger.info("started embedded Dask cluster with %d workers (dashboard: %s)",
                len(c.scheduler_info().get("workers", {})), c.dashboard_link)
    return c, _close


@contextlib.contextmanager
def client_context(client=None, address=None, *, gpu=False, n_workers=None,
                   threads_per_worker=None, processes=True, small=False, **cluster_kwargs):
    """Yield the ``distributed.Client`` to use, or the string ``"threads"`` /
    ``"sync"`` for an in-process Dask scheduler; close what was created here.

    See the module docstring for the resolution order. ``cluster_kwargs`` go
    to ``LocalCluster`` / ``LocalCUDACluster``.
    """
    c, close = _resolve(client, address, gpu, n_workers, threads_per_worker, processes, small, cluster_kwargs)
    try:
        yield c
    finally:
        if close is not None:
            close()


def get_client(client=None, address=None, *, gpu=False, n_workers=None, threads_per_worker=None,
               processes=True, small=False, **cluster_kwargs):
    """Like :func:`client_context` but returns ``(client, close)``: ``close`` is
    a callable that closes whatever was created here (``None`` if nothing was)."""
    return _resolve(client, address, gpu, n_workers, threads_per_worker, processes, small, cluster_kwargs)


@contextlib.contextmanager
def run_schedulers(client, op=None, sketch_bytes: int = 0):
    """Resolve ``client`` once for a whole run (rules 1–6, :func:`is_small` for rule 5).

    Yields ``(for_measure, for_linalg)``: what :func:`sketchla.measure` takes
    (a Client or ``"threads"``/``"sync"``) and what the streamed linear
    algebra takes (a Client, or ``None`` for the scheduler Dask would use).
    A cluster created here is closed when the run ends.
    """
    from distributed import Client

    with client_context(client, small=is_small(op, sketch_bytes)) as c:
        yield c, (c if isinstance(c, Client) else None)


def run_graph(dsk: dict, keys: list, scheduler, progress: bool) -> None:
    """Run the raw task graph ``dsk`` for ``keys`` on what :func:`client_context`
    yielded: a ``distributed.Client`` (on the first error the tasks are
    cancelled and the task's own exception is raised; a tqdm bar or log lines)
    or ``"threads"``/``"sync"`` (Dask's progress bar)."""
    if isinstance(scheduler, str):
        _run_local(dsk, keys, scheduler, progress)
    else:
        _run_distributed(scheduler, dsk, keys, progress)


def _run_local(dsk, keys, scheduler, progress):
    get = dask.threaded.get if scheduler == "threads" else dask.get
    if progress:
        with ProgressBar():
            get(dsk, keys)
    else:
        get(dsk, keys)


def _run_distributed(client, dsk, keys, progress):
    from distributed import as_completed

    logger.info("running on Dask cluster %s; dashboard: %s", client, client.dashboard_link)
    futures = client.get(dsk, keys, sync=False)
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(futures), desc="measure", unit="chunk")
        except ImportError:
            bar = None
    n_done, step = 0, max(1, len(futures) // 10)
    try:
        for fut in as_completed(futures, loop=client.loop):
            if fut.status == "error":
                exc, tb = fut.exception(), fut.traceback()
                # cancel every future, the erred one too: the scheduler then forgets all keys
                # of this graph, so a retry (the same deterministic keys) computes them again
                # instead of being handed this error
                for other in futures:
                    other.cancel()
                raise exc.with_traceback(tb)
            n_done += 1
            if bar is not None:
                bar.update(1)
            elif progress and (n_done % step == 0 or n_done == len(futures)):
                logger.info("finished %d/%d tasks", n_done, len(futures))
    finally:
        if bar is not None:
            bar.close()
    client.gather(futures)


# --------------------------------------------------------------------------- streamed linear algebra
def active_client(client=None):
    """``client``, or the default ``distributed.Client`` if Dask would use one, else None."""
    if client is not None:
        return client
    scheduler = dask.base.get_scheduler()
    owner = getattr(scheduler, "__self__", None)
    if owner is not None and type(owner).__name__ == "Client":
        return owner
    return None


def _worker_threads(client) -> tuple[int, bool]:
    """``(threads, in_process)`` of the scheduler that will run the tasks."""
    c = active_client(client)
    if c is None:
        scheduler = dask.base.get_scheduler()
        if scheduler is dask.local.get_sync:
            return 1, True
        n = dask.config.get("num_workers", None) or getattr(dask.threaded, "CPU_COUNT", None)
        return int(n or os.cpu_count() or 1), True
    workers = c.scheduler_info(n_workers=-1).get("workers", {}) if _accepts_n_workers(c) \
        else c.scheduler_info().get("workers", {})
    threads = sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
    in_process = bool(workers) and all(str(a).startswith("inproc://") for a in workers)
    return threads, in_process


def _accepts_n_workers(c) -> bool:
    try:
        return "n_workers" in inspect.signature(c.scheduler_info).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def blas_limit(client=None):
    """Context limiting BLAS threads while Dask runs several tasks in this process.

    Each task calls LAPACK/BLAS on its own block; with as many Dask threads as
    cores, multi-threaded BLAS inside each would oversubscribe the cores (and
    OpenBLAS degrades badly under oversubscription). Worker processes of a
    distributed cluster already run with one BLAS thread (Dask's
    ``distributed.nanny.pre-spawn-environ``); nothing is changed for them.
    Needs ``threadpoolctl`` (optional); the limit is process-wide while the
    computation runs.
    """
    try:
        threads, in_process = _worker_threads(client)
    except Exception:  # pragma: no cover - e.g. a client that is shutting down
        return contextlib.nullcontext()
    if not in_process or threads <= 1:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    per_task = max(1, (os.cpu_count() or 1) // threads)
    return threadpool_limits(limits=per_task, user_api="blas")


def compute(*objs, client=None):
    """``dask.compute`` on ``client`` if given, else on the active scheduler
    (with BLAS threads limited while several tasks share this process's cores)."""
    with blas_limit(client):
        if client is not None:
            return dask.compute(*objs, scheduler=client.get)
        return dask.compute(*objs)
