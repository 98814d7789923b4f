"""A real multi-process Dask cluster for the tests that need one (measure, reliability)."""


def local_client(n_workers: int):
    """A ``LocalCluster`` of ``n_workers`` processes (1 thread each) and its client,
    as a generator for fixtures (``yield from local_client(2)``); closed afterwards."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=50)
    client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
