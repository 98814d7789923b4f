"""``overlap-experiments report DIR [DIR …]``: report.html of output folders, and the README's figures.

* every ``DIR`` gets its ``report.html`` (:mod:`.html`), as at the end of a run;
* ``--markdown`` prints the key numbers of the DIRs, grouped by subcommand and
  settings, with their spread over the runs (seeds) of a group (:mod:`.readme`);
* ``--readme FILE`` writes those tables between the markers in FILE.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import html, readme
from .key_numbers import sections

__all__ = ["add_parser"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """The ``report`` subcommand."""
    p = subparsers.add_parser(
        "report", help="write report.html of output folders; the README's measured figures (--markdown, --readme)",
        description="Write DIR/report.html for every DIR (one self-contained page: parameters, key numbers beside "
                    "the paper's, every figure with its caption, timings, disk use). With several DIRs of the same "
                    "subcommand and settings (other seeds), --markdown and --readme give each key number's mean and "
                    "range over them.")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="output folder of run, proxies or synthetic")
    p.add_argument("--markdown", action="store_true", help="print the key numbers as Markdown tables")
    p.add_argument("--readme", metavar="FILE", default=None,
                   help="write the tables between the '<!-- report: GROUP -->' markers of FILE")
    p.add_argument("--no-html", action="store_true", help="do not (re)write report.html")
    p.set_defaults(handler=_command)
    return p


def _command(args) -> int:
    for d in args.dirs:
        if not Path(d).is_dir():
            raise FileNotFoundError(f"DIR={d!r} is not a folder")
        if not sections(d):
            raise ValueError(f"DIR={d!r} holds no results.json or proxies.json of overlap-experiments")
    if not args.no_html:
        for d in args.dirs:
            print(f"wrote {html.write_report(d)}")
    tables = {g: readme.markdown(g, runs) for g, runs in readme.groups(args.dirs).items()}
    if args.markdown:
        for g, table in tables.items():
            print(f"\n{readme.begin_marker(g)}\n{table}\n{readme.end_marker(g)}")
    if args.readme:
        written, missing = readme.update_readme(args.readme, tables)
        print(f"{args.readme}: wrote {', '.join(written) or 'nothing'}"
              + (f"; no markers for {', '.join(missing)} (add '{readme.begin_marker(missing[0])}' and "
                 f"'{readme.end_marker(missing[0])}')" if missing else ""))
    return 0
