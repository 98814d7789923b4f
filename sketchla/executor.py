"""Which Dask scheduler runs the work, and running it there: the one place that decides.

Two rules, because two kinds of callers take a ``client=`` argument:

**Runs** — :func:`sketchla.measure`, :func:`sketchla.seigh`, :func:`sketchla.ssvd`
(through :func:`client_context` / :func:`run_schedulers`). The accepted values
(:func:`check_client`), each checked before any work is done:

1. a ``distributed.Client`` -> used as is (never closed here);
2. a scheduler address ``"tcp://host:port"`` (e.g. a ``dask scheduler`` with
   ``dask worker`` or ``dask-cuda-worker`` GPU workers) -> a Client connected
   to it (closed on exit; the cluster itself is not touched);
3. ``False``, ``"threads"`` or ``"sync"`` (``"synchronous"``) -> no cluster:
   Dask's threaded (or synchronous) scheduler in this process;
4. ``"processes"`` -> a ``LocalCluster`` of worker processes sized to the
   machine (``LocalCUDACluster`` from ``dask_cuda``, one worker per GPU, when
   :func:`client_context` is given ``gpu=True``), started here and closed on
   exit. Worker processes import the caller's ``__main__``: a script that
   asks for them needs the ``if __name__ == "__main__":`` guard;
5. ``None`` (the default) -> the global default ``Client`` if one exists
   (``distributed.Client(...)`` made earlier in this process), else the
   threaded scheduler. ``None`` **never starts
   processes**: an operator built on the workers
   (:class:`~sketchla.operators.RecipeOperator`) is then built once in this
   process.

:func:`client_context` and :func:`get_client` also start an embedded cluster
when asked by their own arguments: ``n_workers=N`` (a ``LocalCluster`` of N
workers; ``processes=False`` for threads) or ``gpu=True`` (a
``LocalCUDACluster``).

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
progress reporting; :func:`run_task` runs one function there and returns its value.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
import sys

import dask
import dask.local
import dask.threaded
from dask.diagnostics import ProgressBar

# ``distributed`` is imported where a Client is needed: importing it costs about
# half a second, which in-process runs (rules 3 and 5 without a Client) do not pay.

__all__ = ["client_context", "get_client", "check_client", "is_client", "LOCAL_SCHEDULERS", "PROCESSES",
           "run_schedulers", "compute", "run_graph", "run_task", "active_client", "blas_limit"]

logger = logging.getLogger(__name__)

#: address strings meaning "no cluster, run in this process"
LOCAL_SCHEDULERS = ("threads", "sync", "synchronous")
#: the address string asking for an embedded cluster of worker processes (rule 4)
PROCESSES = "processes"


# --------------------------------------------------------------------------- runs
def is_client(client) -> bool:
    """A ``distributed.Client``, recognised without importing ``distributed`` when it is not loaded."""
    mod = sys.modules.get("distributed")
    return mod is not None and isinstance(client, mod.Client)


def check_client(client, argname: str = "client"):
    """Validate a ``client=`` argument of a run (rules 1–5 of the module docstring) without
    connecting to or starting anything; ``TypeError``/``ValueError`` naming ``argname``."""
    if client is None or client is False or is_client(client):
        return client
    if isinstance(client, str):
        if client in LOCAL_SCHEDULERS or client == PROCESSES or "://" in client or ":" in client:
            return client
        raise ValueError(
            f"{argname}={client!r} is neither a scheduler address like 'tcp://127.0.0.1:8786' nor one of "
            f"{(*LOCAL_SCHEDULERS, PROCESSES)!r}")
    raise TypeError(f"{argname} must be a distributed.Client, an address string, 'threads', 'sync', "
                    f"'processes', False or None, got {type(client).__name__}")


def _existing_default_client():
    if "distributed" not in sys.modules:
        return None  # no Client can exist without distributed imported
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


def _resolve(client, address, gpu, n_workers, threads_per_worker, processes, cluster_kwargs):
    """Return ``(client_or_scheduler_name, close_callback_or_None)`` by rules 1–5."""
    check_client(client)
    if isinstance(client, str):
        if address is not None:
            raise ValueError("give either client=<address> or address=, not both")
        address, client = client, None
    if address is not None:
        if not isinstance(address, str):
            raise TypeError(f"address must be a string, got {type(address).__name__}")
        check_client(address, "address")
    if client is False:
        return "threads", None
    if client is not None:
        return client, None
    if address in LOCAL_SCHEDULERS:
        return ("sync" if address.startswith("sync") else "threads"), None
    if address == PROCESSES:
        return _embedded_cluster(gpu, n_workers, threads_per_worker, processes, cluster_kwargs)
    if address is not None:
        from distributed import Client

        c = Client(address, set_as_default=False)
        logger.info("connected to Dask scheduler %s (dashboard: %s)", address, c.dashboard_link)
        return c, c.close
    if gpu or n_workers is not None:  # asked for an embedded cluster by the arguments
        return _embedded_cluster(gpu, n_workers, threads_per_worker, processes, cluster_kwargs)
    existing = _existing_default_client()
    if existing is not None:
        return existing, None
    return "threads", None


def _embedded_cluster(gpu, n_workers, threads_per_worker, processes, cluster_kwargs):
    """Rule 4: a ``LocalCUDACluster`` (``gpu``) or ``LocalCluster`` and its client."""
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
                   threads_per_worker=None, processes=True, **cluster_kwargs):
    """Yield the ``distributed.Client`` to use, or the string ``"threads"`` /
    ``"sync"`` for an in-process Dask scheduler; close what was created here.

    See the module docstring for the resolution order. ``cluster_kwargs`` go
    to ``LocalCluster`` / ``LocalCUDACluster``.
    """
    c, close = _resolve(client, address, gpu, n_workers, threads_per_worker, processes, cluster_kwargs)
    try:
        yield c
    finally:
        if close is not None:
            close()


def get_client(client=None, address=None, *, gpu=False, n_workers=None, threads_per_worker=None,
               processes=True, **cluster_kwargs):
    """Like :func:`client_context` but returns ``(client, close)``: ``close`` is
    a callable that closes whatever was created here (``None`` if nothing was)."""
    return _resolve(client, address, gpu, n_workers, threads_per_worker, processes, cluster_kwargs)


@contextlib.contextmanager
def run_schedulers(client):
    """Resolve ``client`` once for a whole run (rules 1–5).

    Yields ``(for_measure, for_linalg)``: what :func:`sketchla.measure` takes
    (a Client or ``"threads"``/``"sync"``) and what the streamed linear
    algebra takes (a Client, or ``None`` for the scheduler Dask would use).
    A cluster created here is closed when the run ends.
    """
    from distributed import Client

    with client_context(client) as c:
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


def run_task(scheduler, fn, *args):
    """``fn(*args)`` on what :func:`client_context` yielded: in this process for
    ``"threads"``/``"sync"``, else as one task on the Client (the arguments are
    shipped to a worker; e.g. an operator built on the workers is applied there)."""
    if isinstance(scheduler, str):
        return fn(*args)
    return scheduler.submit(fn, *args, pure=False).result()


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
