"""What every report writes alike: the run's configuration, its training, its timings."""
from __future__ import annotations

from dataclasses import asdict

from ..progress import format_seconds

__all__ = ["config_record", "training_record", "timing_lines", "sketch_certificate"]


def config_record(cfg) -> dict:
    """``results["config"]``: every field of the :class:`~overlap_experiments.config.RunConfig` (tuples as lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}


def training_record(tr) -> dict:
    """``results["training"]``: mini-batch losses per step, where training resumed, steps trained now, seconds."""
    return {"losses": [float(v) for v in tr["losses"]], "resumed_from": tr["resumed_from"],
            "trained_steps": tr["trained_steps"], "seconds": tr["seconds"]}


def timing_lines(res: dict, stages) -> str:
    """The console lines of a run's time: the seconds spent in *this* invocation per stage
    (``stages``: ``[(words, key of results["timings"])]``), then — on a resumed run — the recorded
    seconds of the analyses taken from the cache, which were spent by an earlier invocation."""
    t, r = res["timings"], res.get("timings_reused", {})
    line = f"this invocation {format_seconds(t['total'])}: " + ", ".join(
        f"{w} {format_seconds(t[k])}" for w, k in stages if t.get(k) is not None)
    tr = res.get("training", {})
    if tr.get("resumed_from") is not None:
        line += f" (training resumed at step {tr['resumed_from']})"
    if r.get("analyses"):
        line += (f"\nreused from the cache: {r['analyses']} analyses, computed earlier in "
                 + ", ".join(f"{w} {format_seconds(r[k])}" for w, k in stages if r.get(k)))
    return line


def sketch_certificate(rec) -> dict | None:
    """SEIGH's a-posteriori estimate of a sketched record (``None`` for records made without one)."""
    if "error_frobenius" not in rec:
        return None
    return {"error_frobenius": float(rec["error_frobenius"]), "approx_frobenius": float(rec["approx_frobenius"]),
            "tail_dominated": bool(rec["tail_dominated"]), "hvps": int(rec["hvps"])}
