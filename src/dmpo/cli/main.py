"""``dmpo``: one entry point, one module per command group.

    dmpo bench list|generate|score|render     NP-Bench instances and scoring
    dmpo sft|train|eval|demo                  training and evaluation (TRL engine)
"""

from __future__ import annotations

import argparse
import sys

from dmpo import __version__
from dmpo.errors import DmpoError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dmpo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"dmpo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from dmpo.cli import bench

    bench.add_parser(commands)
    try:
        from dmpo.cli import train
    except ImportError:  # the training commands need the TRL extra
        train = None
    if train is not None:
        train.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DmpoError as exc:
        print(f"dmpo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dmpo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
