"""The README's object-storage and SLURM sections (issue 21) say what the code does:
the store example runs against the local S3 server, and the dask-jobqueue set-up
writes a job script that starts one dask-cuda-worker per one-GPU job."""
import re
from pathlib import Path

import numpy as np
import pytest
import zarr

from sketchla.store.location import resolve

from _s3server import s3, s3_endpoint  # noqa: F401 (fixtures)
from . import _helpers as h

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECTION = README[README.index("## Run stores on object storage"):README.index("## Benchmarks")]
BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, re.S)


def test_readme_object_store_example_runs(s3):
    code = BLOCKS[0]
    assert "s3://bucket/" in code and '"https://s3.example.org"' in code
    code = (code.replace('"https://s3.example.org"', repr(s3.endpoint) + ", **CREDENTIALS")
            .replace("s3://bucket/", f"s3://{s3.bucket}/").replace('client="tcp://head:8786"', 'client="sync"'))
    A = zarr.create_array(store=resolve(s3.url("A.zarr"), s3.options).zarr_store(), shape=(300, 4), chunks=(64, 4),
                          dtype="float64")
    A[:] = np.random.default_rng(0).standard_normal((300, 4))
    from _s3server import CREDENTIALS

    import sketchla as sk

    ns = {"sk": sk, "op": h.A, "A": A, "CREDENTIALS": CREDENTIALS}
    exec(compile(code, "README.md (object storage)", "exec"), ns)
    assert len(ns["res"].eigenvalues) == 40
    np.testing.assert_allclose(np.asarray(ns["Q"][:]) @ ns["R"], A[:], atol=1e-10)
    assert s3.fs().find(f"{s3.bucket}/runs") == []  # deleted by the last line


def test_readme_slurm_cluster_writes_a_dask_cuda_worker_job():
    pytest.importorskip("dask_jobqueue")
    code = next(b for b in BLOCKS if "SLURMCluster" in b)
    setup = code[:code.index("cluster.scale")]
    ns: dict = {}
    exec(compile(setup, "README.md (SLURM)", "exec"), ns)
    cluster = ns["cluster"]
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH --gres=gpu:1" in script and "#SBATCH --cpus-per-task=8" in script
    worker = script.strip().splitlines()[-1]
    assert worker.startswith("python -m dask_cuda.cli tcp://") and "--nthreads 1" in worker
    assert "--nworkers" not in worker  # dask-cuda starts one worker per visible GPU itself
