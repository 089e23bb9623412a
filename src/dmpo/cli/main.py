"""``dmpo``: one entry point, one module per command group.

    dmpo bench list|generate|score|render     NP-Bench instances and scoring   (cli/bench.py)
    dmpo sft                                  SFT warm start                   (cli/sft.py)
    dmpo train                                RL with a group objective        (cli/train.py)
    dmpo eval                                 k samples per held-out instance  (cli/evaluate.py)
    dmpo demo                                 SFT → GRPO vs DMPO → report      (cli/demo.py)
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from dmpo import __version__
from dmpo.errors import DmpoError


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line errors: ``dmpo: error: ...`` and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"dmpo: error: {self.prog}: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dmpo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"dmpo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from dmpo.cli import bench

    bench.add_parser(commands)
    # The training commands need the TRL extra; without it `dmpo` offers only `bench`. The engine
    # itself is imported only when a command runs, so building the parser stays fast.
    if importlib.util.find_spec("trl") is not None:
        from dmpo.cli import demo, evaluate, sft, train

        for module in (sft, train, evaluate, demo):
            module.add_parser(commands)
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
