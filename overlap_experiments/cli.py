"""Command line entry point ``overlap-experiments``."""
import argparse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="overlap-experiments",
        description="Parameter-magnitude masks vs Hessian eigenspaces (Fernandez et al.), on sketchla.",
    )
    p.add_subparsers(dest="command")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
    return 0
