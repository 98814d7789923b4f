"""Command line entry point ``overlap-experiments``.

Subcommands, each defined (with its options) by the module that implements it:

* ``run PROBLEM --out DIR`` — the pipeline of paper §6 for a problem of
  Table 1 (:mod:`overlap_experiments.pipeline`; the options of each problem:
  :mod:`overlap_experiments.config`);
* ``synthetic --out DIR`` — the synthetic Grassmannian study of paper
  Alg. 3 / Table 2 (:mod:`overlap_experiments.synthetic.command`);
* ``proxies --out DIR`` — the overlap proxies of appendix A.2, Figs 6–7
  (:mod:`overlap_experiments.proxies.study`);
* ``report DIR …`` — ``report.html`` of output folders and the README's
  measured figures (:mod:`overlap_experiments.reports.command`);
* ``clean DIR`` — delete a finished run's SEIGH stores
  (:mod:`overlap_experiments.outputs`).

``run``, ``proxies`` and ``synthetic`` all take ``--progress/--no-progress``
(:mod:`overlap_experiments.progress`) and end by writing ``report.html``.

Bad input gets a one-line message on standard error and exit status 2
(``-v`` shows the traceback), before any work starts.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

from . import outputs, pipeline, progress
from .proxies import study as proxies_study
from .reports import command as report_command
from .synthetic import command as synthetic_command

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="overlap-experiments",
        description="Parameter-magnitude masks vs Hessian eigenspaces (Fernandez et al.), on sketchla.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command")
    for command in (pipeline, synthetic_command, proxies_study, report_command, outputs):
        command.add_parser(sub)
    return p


def main(argv=None) -> int:
    # OpenMP thread teams that spin while waiting stall badly when the cores are
    # shared (measured: 10x slower SGD steps on a loaded 2-core machine); a
    # passive wait costs nothing otherwise. Only effective before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("distributed", "numexpr", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        with _logs_above_bars():
            return args.handler(args)
    except ImportError as exc:
        print(f"overlap-experiments: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError) as exc:
        if args.verbose:
            raise
        print(f"overlap-experiments: error: {exc}", file=sys.stderr)
        return 2


def _logs_above_bars():
    """On a terminal, log lines go through tqdm so that they print above the progress bars instead of
    breaking them; elsewhere (no bars) logging is left as it is."""
    if not progress.interactive():
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm  # optional dependency (bars need it anyway)

    return logging_redirect_tqdm()


if __name__ == "__main__":  # python -m overlap_experiments.cli
    raise SystemExit(main())
