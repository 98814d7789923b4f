"""NumPy/CuPy dispatch and the dtype policy.

Every numerical routine in sketchla is written against an *array module*
``xp`` (``numpy`` or ``cupy``) picked from the data it is given, so the same
code runs on CPU blocks and on GPU blocks. CuPy is never imported here unless
an array already is a CuPy array (or the caller asks for it explicitly), so
the library works on machines without a GPU.

dtype policy (docs/ARCHITECTURE.md, "Conventions"): measurements are float32 by default,
small core solves run in float64; only float32 and float64 are accepted.
"""
from __future__ import annotations

import numpy as np

_ALLOWED_DTYPES = (np.dtype("float32"), np.dtype("float64"))


def is_cupy_array(x) -> bool:
    """True if ``x`` is a CuPy ndarray (checked without importing CuPy)."""
    return type(x).__module__.split(".")[0] == "cupy"


def get_array_module(x):
    """Return ``cupy`` for CuPy arrays, else ``numpy``.

    Dask arrays are dispatched on their ``_meta`` (the block type), so a Dask
    array of CuPy blocks gives ``cupy``.
    """
    meta = getattr(x, "_meta", None)
    if meta is not None and type(x).__module__.split(".")[0] == "dask":
        x = meta
    if is_cupy_array(x):
        import cupy

        return cupy
    return np


def asnumpy(x) -> np.ndarray:
    """Copy a NumPy/CuPy array (or a scalar) to host memory as a NumPy array."""
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def cupy_available() -> bool:
    """True if CuPy imports and at least one CUDA device is visible."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, CUDARuntimeError, ...
        return False


def check_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Validate and normalise a floating dtype (float32 or float64).

    Raises ``ValueError`` naming the argument for anything else (integers,
    float16, complex), since the algorithms here are real-valued.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"{name}={dtype!r} is not a dtype; use 'float32' or 'float64'") from exc
    if dt not in _ALLOWED_DTYPES:
        raise ValueError(
            f"{name}={dt} is not supported; use 'float32' or 'float64' "
            "(complex operators are not supported)"
        )
    return dt


def check_flag(value, argname: str) -> bool:
    """A ``True``/``False`` argument (NumPy booleans too); ``TypeError`` naming ``argname`` otherwise."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argname} must be True or False, got {value!r}")
    return bool(value)


def check_gpu(gpu, argname: str = "gpu") -> bool:
    """Validate a ``gpu=`` argument: a bool, and ``True`` only where CuPy sees a CUDA device."""
    check_flag(gpu, argname)
    if gpu and not cupy_available():  # a module global, looked up at call time (tests patch it)
        raise ValueError(f"{argname}=True needs CuPy and a CUDA device (pip install '.[gpu]'); "
                         "none is available in this process")
    return bool(gpu)


def on_device(x, gpu: bool):
    """The Dask array ``x`` with CuPy blocks when ``gpu`` (each block copied to the
    device as it is computed), else ``x`` unchanged. The streamed linear algebra
    picks its array module from the blocks, so QR and thin products then run on
    the GPU."""
    if not gpu:
        return x
    import cupy

    return x.map_blocks(cupy.asarray, dtype=x.dtype, meta=cupy.empty((0,) * x.ndim, dtype=x.dtype))
