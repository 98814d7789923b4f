"""Which Dask scheduler runs the work.

Resolution order (issue 4; DESIGN.md "Layers"):

1. an explicit ``distributed.Client`` -> used as is (never closed here);
2. a scheduler address ``"tcp://host:port"`` (e.g. a ``dask scheduler`` with
   ``dask worker`` or ``dask-cuda-worker`` GPU workers) -> a Client connected
   to it (closed on exit; the cluster itself is not touched);
3. ``client=False`` or ``address="threads"`` / ``"sync"`` -> no cluster: Dask's
   threaded (or synchronous) scheduler in this process, for small in-memory
   work;
4. ``client=None`` and a global default Client already exists -> that one;
5. ``client=None``, nothing else given and ``small=True`` -> threaded scheduler;
6. otherwise an embedded cluster created here and closed on exit:
   ``LocalCUDACluster`` from ``dask_cuda`` when ``gpu=True`` (one worker per
   GPU), else a ``LocalCluster`` sized to the machine.

Use :func:`client_context` (a context manager) so that whatever was created
is closed; :func:`get_client` is the same without the automatic close (the
caller closes the returned client; an embedded cluster closes with it).
"""
from __future__ import annotations

import contextlib
import logging

__all__ = ["client_context", "get_client", "LOCAL_SCHEDULERS"]

logger = logging.getLogger(__name__)

#: address strings meaning "no cluster, run in this process"
LOCAL_SCHEDULERS = ("threads", "sync", "synchronous")


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
    """Return ``(client_or_scheduler_name, close_callback_or_None)``."""
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
        c = Client(cluster, set_as_default=False)

        def _close():
            c.close()
            cluster.close()
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
