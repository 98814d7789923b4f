"""Progress of long stages: bars on a terminal, plain periodic log lines elsewhere.

Every subcommand has ``--progress/--no-progress`` (on by default). With
progress on, what a stage shows depends on where the output goes:

* on a terminal (:func:`interactive`): tqdm bars (Dask's bar inside SEIGH);
* otherwise (a log file, a pipe, CI): no bar — a bar there becomes one long
  line of carriage returns — but a log line when a stage starts, one every
  :data:`LOG_EVERY_S` seconds with its count, elapsed time and an estimate of
  the time left, and one when it ends.

Three tools, all no-ops for the display when ``enabled`` is false:

* :func:`track` — an iterable with a known length (training steps, Hessian
  column blocks, analysed Hessians);
* :func:`stage` — a step that cannot count its progress (a dense
  eigendecomposition, SEIGH in a log file): a start line, a heartbeat line
  every :data:`LOG_EVERY_S` seconds from a daemon thread, an end line with
  the elapsed time;
* :func:`dask_bar` — a Dask computation on a local scheduler (Dask's bar, or
  log lines from a :class:`dask.callbacks.Callback`).

Start and end lines of :func:`stage` are written whether or not progress is
on: they are the run's log, not its progress display.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
import time

logger = logging.getLogger(__name__)

__all__ = ["LOG_EVERY_S", "interactive", "track", "stage", "dask_bar", "format_seconds", "add_argument"]

#: seconds between two progress log lines when the output is not a terminal
LOG_EVERY_S = 30.0


def add_argument(parser) -> None:
    """``--progress/--no-progress`` (default on), the same for every subcommand; parsed as ``args.progress``."""
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="show progress: bars on a terminal, a log line every "
                             f"{LOG_EVERY_S:.0f} s otherwise (default: on)")


def interactive() -> bool:
    """Whether progress bars can be drawn: standard error (tqdm's) and standard output (Dask's bar)
    are both terminals."""
    return _isatty(sys.stderr) and _isatty(sys.stdout)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams (pytest's capture, a closed pipe)
        return False


def format_seconds(s: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"2 h 01 min"``: a duration for a log line or a report."""
    s = float(s)
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


class _LogLines:
    """The log-file stand-in of a tqdm bar: iterates ``iterable`` and logs ``desc: i/total (p %),
    elapsed, ~left`` at the start, every :data:`LOG_EVERY_S` seconds and at the end.
    Offers the parts of tqdm's interface the package uses (``set_postfix``, ``update``, ``close``)."""

    def __init__(self, iterable, desc: str, total: int | None, unit: str):
        self.iterable = iterable
        self.desc, self.unit = desc, unit
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.n = 0
        self.postfix = ""
        self.t0 = time.perf_counter()
        self._last = self.t0
        self._closed = False
        logger.info("%s: started (%s)", desc, f"{self.total} {unit}" if self.total is not None else unit)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __len__(self):
        return self.total

    def set_postfix(self, **kw) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in kw.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self._last >= LOG_EVERY_S and (self.total is None or self.n < self.total):
            self._last = now
            logger.info("%s", self._line(now))

    def _line(self, now: float) -> str:
        elapsed = now - self.t0
        parts = [f"{self.desc}: {self.n}"]
        if self.total:
            parts[0] += f"/{self.total} {self.unit} ({self.n / self.total:.0%})"
            parts.append(f"{format_seconds(elapsed)} elapsed")
            if 0 < self.n < self.total:
                parts.append(f"~{format_seconds(elapsed / self.n * (self.total - self.n))} left")
        else:
            parts[0] += f" {self.unit}"
            parts.append(f"{format_seconds(elapsed)} elapsed")
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            logger.info("%s: done, %d %s in %s%s", self.desc, self.n, self.unit,
                        format_seconds(time.perf_counter() - self.t0), f" ({self.postfix})" if self.postfix else "")


class _Silent:
    """A disabled bar: iterates, accepts tqdm's calls, shows nothing."""

    def __init__(self, iterable):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, **kw) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def track(iterable, *, desc: str, total: int | None = None, unit: str = "it", enabled: bool = True,
          leave: bool = False):
    """``iterable`` with progress (module docstring): a tqdm bar on a terminal, log lines elsewhere,
    nothing when ``enabled`` is false. The result also has ``set_postfix``, ``update`` and ``close``."""
    if not enabled:
        return _Silent(iterable)
    if interactive():
        from tqdm.auto import tqdm  # optional dependency (the experiments extra), only for bars

        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave)
    return _LogLines(iterable, desc, total, unit)


@contextlib.contextmanager
def stage(desc: str, *, enabled: bool = True, every: float | None = None):
    """A stage that cannot count its progress: logs ``desc: started``, then (when ``enabled``)
    ``desc: running, N s elapsed`` every ``every`` seconds (default :data:`LOG_EVERY_S`) from a
    daemon thread, and ``desc: done in N s`` (or ``failed after N s``) at the end. Yields a dict
    whose ``"seconds"`` holds the elapsed time once the stage has ended."""
    every = LOG_EVERY_S if every is None else float(every)
    t0 = time.perf_counter()
    logger.info("%s: started", desc)
    stop = threading.Event()
    beat = None
    if enabled:
        def _heartbeat():
            while not stop.wait(every):
                logger.info("%s: running, %s elapsed", desc, format_seconds(time.perf_counter() - t0))

        beat = threading.Thread(target=_heartbeat, name=f"heartbeat {desc}", daemon=True)
        beat.start()
    info: dict = {}
    ok = False
    try:
        yield info
        ok = True
    finally:
        stop.set()
        if beat is not None:
            beat.join()
        info["seconds"] = time.perf_counter() - t0
        logger.info("%s: %s %s", desc, "done in" if ok else "failed after", format_seconds(info["seconds"]))


@contextlib.contextmanager
def dask_bar(desc: str, *, enabled: bool = True):
    """Progress of the Dask computations inside the block on a local scheduler: Dask's bar on a
    terminal, :func:`track`-style log lines (from a :class:`dask.callbacks.Callback`) elsewhere."""
    if not enabled:
        yield
        return
    if interactive():
        from dask.diagnostics import ProgressBar  # dask: heavy to import, only while a computation is shown

        with ProgressBar():
            yield
        return
    from dask.callbacks import Callback  # dask: heavy to import, only while a computation is shown

    lines: dict = {}

    def start_state(dsk, state):
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        lines["log"] = _LogLines(iter(()), desc, total, "tasks")

    def posttask(key, result, dsk, state, worker_id):
        lines["log"].update(1)

    def finish(dsk, state, errored):
        if "log" in lines:
            lines.pop("log").close()

    with Callback(start_state=start_state, posttask=posttask, finish=finish):
        yield
