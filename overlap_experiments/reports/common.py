"""Records every report writes alike: the run's configuration and its training."""
from __future__ import annotations

from dataclasses import asdict

__all__ = ["config_record", "training_record"]


def config_record(cfg) -> dict:
    """``results["config"]``: every field of the :class:`~overlap_experiments.config.RunConfig` (tuples as lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}


def training_record(tr) -> dict:
    """``results["training"]``: mini-batch losses per step, where training resumed, steps trained now, seconds."""
    return {"losses": [float(v) for v in tr["losses"]], "resumed_from": tr["resumed_from"],
            "trained_steps": tr["trained_steps"], "seconds": tr["seconds"]}
