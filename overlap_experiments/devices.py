"""Which torch device trains a network or applies its Hessian."""
from __future__ import annotations

__all__ = ["resolve_device"]


def resolve_device(device="auto"):
    """``torch.device`` for ``device`` in {"auto", "cpu", "cuda", "cuda:N", torch.device}.

    ``"auto"`` is CUDA when PyTorch sees a GPU (in a ``dask-cuda`` worker: the
    worker's own GPU), else CPU. Asking for CUDA where there is none raises a
    ``ValueError`` naming the argument.
    """
    import torch  # torch: optional dependency (the experiments extra)

    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(f"device={device!r} is not a torch device ('auto', 'cpu', 'cuda', 'cuda:1', ...)") from exc
    else:
        raise TypeError(f"device must be a string or torch.device, got {type(device).__name__}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: PyTorch sees no CUDA device on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} must be a CPU or CUDA device")
    return dev
