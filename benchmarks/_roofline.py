"""This machine's ceilings, measured in the same run as a benchmark, and the roofline model of a stage.

Ceilings (:func:`measure_ceilings`):

* **disk** — a scratch file of ``nbytes`` written sequentially in 64 MiB
  blocks next to the store: the time until the writes return (into the page
  cache: *cached*) and until ``fsync`` returns (the device: *device*); read
  back sequentially after ``posix_fadvise(DONTNEED)`` (from the device:
  *cold*), and once more (from the page cache: *cached*).
* **GEMM** — flop/s of NumPy's BLAS, per dtype, on ``threads`` Python threads
  at once with one BLAS thread each: how :func:`sketchla.executor.compute`
  runs the streamed passes on the threaded scheduler (as many tasks as cores,
  BLAS limited to its share). Blocks of 2^16 × n times n × n.
* **generation** — numbers per second of :class:`sketchla.random.TestMatrix`
  blocks drawn on ``threads`` threads (whole 2^16-row tiles, float32).

Model (:func:`model`): a stage that reads R bytes, writes W bytes, does F₃₂
and F₆₄ flops (counted as the kernels' useful flops: ``syrk`` and triangular
solves mn², GEMM 2mnk, ``geqrf``/``orgqr`` 2mn² − 2n³/3) and draws G random
numbers takes at least

    R / read + W / write + F₃₂ / GEMM₃₂ + F₆₄ / GEMM₆₄ + G / generation

— the sum, i.e. I/O and arithmetic not overlapped, every kernel at GEMM speed.
Reads count at the cached bandwidth when the stage's bytes fit in the memory
available at the start of the run, else at the cold one; writes at the cached
bandwidth when they fit under the kernel's dirty-page limit (``vm.dirty_ratio``
of the available memory), else at the device's.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

BLOCK = 64 * 2**20


def mem_available() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover
        pass
    return None


def _dirty_limit(avail) -> int | None:
    """Bytes of dirty pages the kernel lets a writer accumulate before it throttles it."""
    try:
        with open("/proc/sys/vm/dirty_bytes") as f:
            b = int(f.read())
        if b:
            return b
        with open("/proc/sys/vm/dirty_ratio") as f:
            return None if avail is None else avail * int(f.read()) // 100
    except OSError:  # pragma: no cover
        return None


def disk(directory, nbytes: int = 2**30) -> dict:
    """Sequential write (cached and fsync'd) and read (cold and cached) bandwidth, bytes/s, of
    ``directory``'s file system."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f".roofline-{os.getpid()}.bin")
    buf = np.random.default_rng(0).integers(0, 256, BLOCK, dtype=np.uint8)  # incompressible
    n = max(1, int(nbytes) // BLOCK)
    try:
        t0 = time.perf_counter()
        with open(path, "wb", buffering=0) as f:
            for _ in range(n):
                f.write(memoryview(buf))
            t_cached = time.perf_counter() - t0
            os.fsync(f.fileno())
        write = n * BLOCK / (time.perf_counter() - t0)
        into = bytearray(BLOCK)

        def read():
            with open(path, "rb", buffering=0) as f:
                t0 = time.perf_counter()
                while f.readinto(into):
                    pass
                return n * BLOCK / (time.perf_counter() - t0)

        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        cold = read()
        cached = read()
    finally:
        if os.path.exists(path):
            os.remove(path)
    return {"write_Bps": write, "write_cached_Bps": n * BLOCK / t_cached, "read_cold_Bps": cold,
            "read_cached_Bps": cached, "bytes": n * BLOCK}


def _on_threads(fn, threads: int, repeats: int) -> float:
    """Best wall time of ``fn(i)`` run at once on ``threads`` threads, one BLAS thread each."""
    from threadpoolctl import threadpool_limits

    best = float("inf")
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(pool.map(fn, range(threads)))
            best = min(best, time.perf_counter() - t0)
    return best


def gemm(dtype, n: int, threads: int, rows: int = 2**16, calls: int = 4, repeats: int = 3) -> float:
    """GEMM flop/s of ``(rows × n) @ (n × n)`` in ``dtype`` on ``threads`` threads (one BLAS thread each)."""
    rng = np.random.default_rng(0)
    mats = [(rng.standard_normal((rows, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype))
            for _ in range(threads)]

    def work(i):
        a, b = mats[i]
        for _ in range(calls):
            a @ b

    return threads * calls * 2.0 * rows * n * n / _on_threads(work, threads, repeats)


def generation(kind: str, threads: int, cols: int = 32, repeats: int = 3) -> float:
    """Test-matrix numbers drawn per second on ``threads`` threads (float32, whole 2^16-row tiles)."""
    from sketchla.random import TILE_ROWS, TestMatrix

    tms = [TestMatrix((TILE_ROWS, cols), seed=i, name="roofline", kind=kind) for i in range(threads)]
    return threads * TILE_ROWS * cols / _on_threads(lambda i: tms[i].block(), threads, repeats)


def measure_ceilings(directory, *, n: int, threads: int | None = None, disk_bytes: int = 2**30,
                     kinds=("gaussian",)) -> dict:
    """All ceilings of this machine for a run whose store lives in ``directory``."""
    threads = threads or os.cpu_count() or 1
    avail = mem_available()
    c = {"threads": threads, "gemm_n": n, "mem_available": avail, "dirty_limit": _dirty_limit(avail),
         **disk(directory, disk_bytes)}
    c["gemm_float32_flops"] = gemm(np.float32, n, threads)
    c["gemm_float64_flops"] = gemm(np.float64, n, threads)
    for kind in kinds:
        c[f"generate_{kind}_per_s"] = generation(kind, threads)
    return c


def print_ceilings(c: dict) -> None:
    print(f"ceilings: disk write {c['write_Bps'] / 1e9:.2f} GB/s device (fsync'd) / {c['write_cached_Bps'] / 1e9:.2f} "
          f"GB/s cached, read {c['read_cold_Bps'] / 1e9:.2f} GB/s cold / {c['read_cached_Bps'] / 1e9:.2f} GB/s cached; GEMM ({c['threads']} threads × 1 BLAS thread, "
          f"n = {c['gemm_n']}) {c['gemm_float32_flops'] / 1e9:.0f} GFLOP/s float32, "
          f"{c['gemm_float64_flops'] / 1e9:.0f} GFLOP/s float64"
          + "".join(f"; {k[9:-6]} generation {v / 1e6:.0f} M numbers/s" for k, v in c.items()
                    if k.startswith("generate_")), flush=True)


def model(c: dict, *, read: float = 0, write: float = 0, flops32: float = 0, flops64: float = 0,
          drawn: float = 0, kind: str = "gaussian") -> dict:
    """Roofline time of a stage (module docstring) and its terms, in seconds."""
    avail, dirty = c.get("mem_available"), c.get("dirty_limit")
    cached = avail is not None and read <= avail
    write_cached = dirty is not None and write <= dirty
    terms = {
        "read": read / (c["read_cached_Bps"] if cached else c["read_cold_Bps"]),
        "write": write / (c["write_cached_Bps"] if write_cached else c["write_Bps"]),
        "flops32": flops32 / c["gemm_float32_flops"],
        "flops64": flops64 / c["gemm_float64_flops"],
        "generation": drawn / c[f"generate_{kind}_per_s"] if drawn else 0.0,
    }
    return {"seconds": sum(terms.values()), "terms": terms, "read_cached": cached, "write_cached": write_cached,
            "bytes_read": read, "bytes_written": write, "flops32": flops32, "flops64": flops64, "drawn": drawn}


# --------------------------------------------------------------------------- what the QR methods move
def qr_flops_bytes(method: str, D: int, n: int, itemsize: int, block_rows: int, *, passes: int | None = None,
                   final32: bool = False, product_solve: bool = False) -> dict:
    """Bytes and flops of ``sketchla.tsqr`` on a D×n A (``model`` keywords), per the code:

    * ``"cholesky"`` with ``passes`` passes over A (k = passes − 2 chained factors): Gram
      passes j = 0..k each a float64 ``syrk`` (Dn²) and j solves (Dn² each), the final pass
      k + 1 solves (float32 when ``final32``, the 2-pass fast case; one with ``product_solve``,
      a solve by the product of the factors); A read ``passes`` times,
      Q written once;
    * ``"householder"``: per block ``geqrf`` + ``orgqr`` (2mn² − 2n³/3 each) and one GEMM
      (2mn²) in A's dtype; A read once, Q written, read back and written again;
    * ``"dask"``: ``dask.array.linalg.tsqr`` → Zarr: NumPy's QR of each block in float64
      (``geqrf`` + ``orgqr``) and the GEMM by the tree's factor; A read once, Q written once.
    """
    nbytes = D * n * itemsize
    blocks = -(-D // block_rows)
    qr_block = 2.0 * D * n * n - blocks * 2.0 * n**3 / 3  # geqrf (or orgqr) over all blocks
    if method == "cholesky":
        k = passes - 2
        dn2 = float(D) * n * n
        solves = sum(range(k + 1)) + (1 if product_solve else k + 1)
        f64 = (k + 1) * dn2 + solves * dn2
        f32 = 0.0
        if final32:
            f64, f32 = f64 - dn2, dn2
        return {"read": passes * nbytes, "write": nbytes, "flops32": f32, "flops64": f64}
    if method == "householder":
        key = "flops32" if itemsize == 4 else "flops64"
        return {"read": 2 * nbytes, "write": 2 * nbytes, key: 2 * qr_block + 2.0 * D * n * n}
    if method == "dask":
        return {"read": nbytes, "write": nbytes, "flops64": 2 * qr_block + 2.0 * D * n * n}
    if method == "numpy":
        return {"flops64": 2 * qr_block}
    raise ValueError(method)


# --------------------------------------------------------------------------- which QR ran
def tsqr_log() -> list:
    """The messages ``sketchla.linalg.tsqr`` logs from now on (appended to the list returned)."""
    import logging

    msgs = []

    class _Keep(logging.Handler):
        def emit(self, record):
            msgs.append(record.getMessage())

    lg = logging.getLogger("sketchla.linalg.tsqr")
    lg.setLevel(logging.INFO)
    lg.addHandler(_Keep())
    return msgs


def qr_algorithm(message: str):
    """``(method, passes over A, final solve in float32, one solve by the product)`` from tsqr's
    closing log message."""
    import re

    m = re.search(r"Cholesky QR in (\d+) passes over A \(final solve in (float\d+)", message or "")
    if m:
        return "cholesky", int(m.group(1)), m.group(2) == "float32", "one solve by the product" in message
    return "householder", 1, False, False
