"""``overlap-experiments synthetic``: the synthetic Grassmannian study from the command line."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import progress
from ..reports import html
from . import study
from .tables import write_outputs

__all__ = ["add_parser", "add_arguments", "run", "main"]

_DESCRIPTION = "Synthetic study of Grassmannian metrics (paper Alg. 3, Appendix A.4, Table 2)."


def add_parser(subparsers) -> argparse.ArgumentParser:
    """The ``synthetic`` subcommand."""
    p = subparsers.add_parser("synthetic", help="Grassmannian metrics on random subspaces (paper Alg. 3, Table 2)",
                              description=_DESCRIPTION)
    add_arguments(p)
    p.set_defaults(handler=run)
    return p


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``overlap-experiments synthetic``."""
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--quick", action="store_true", help="reduced grid (d <= 256) for CI")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--samples", type=int, default=50, help="T, random pairs per cell (default 50)")
    parser.add_argument(
        "--scheduler",
        default=None,
        help="distributed scheduler address (tcp://host:port) or local Dask scheduler "
        "('threads' default, 'sync', 'processes')",
    )
    parser.add_argument("--samples-per-task", type=int, default=None, help="batch size of Dask tasks (default: by cost)")
    parser.add_argument("--modalities", nargs="+", default=list(study.MODALITIES), choices=study.MODALITIES)
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    progress.add_argument(parser)
    return parser


def run(args) -> int:
    """Run the ``synthetic`` subcommand from parsed ``args``; returns the exit code."""
    grid = study.QUICK_GRID if args.quick else study.PAPER_GRID
    res = study.run_study(
        seed=args.seed,
        samples=args.samples,
        grid=grid,
        modalities=args.modalities,
        scheduler=args.scheduler,
        samples_per_task=args.samples_per_task,
        progress=args.progress,
    )
    paths = write_outputs(res, args.out, figures=not args.no_figures, extra={"quick": bool(args.quick)})
    paths["report.html"] = html.write_report(args.out)
    print(Path(paths["table2.md"]).read_text())
    print(f"synthetic study done in {progress.format_seconds(res.elapsed_s)}; wrote {len(paths)} files to "
          f"{args.out}, report.html among them")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m overlap_experiments.synthetic --out DIR``."""
    p = argparse.ArgumentParser(prog="overlap-experiments synthetic", description=_DESCRIPTION)
    add_arguments(p)
    return run(p.parse_args(argv))
