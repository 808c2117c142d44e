"""The ``hubcore`` command line: ``hubcore show|run|export-serving|example ...``.

argparse (standard library) parses the arguments: subcommands, help and errors need nothing more,
and it adds no dependency. Each subcommand lives in ``hubcore.commands.<name>`` and provides
``add_parser(subparsers)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hubcore.errors import Error

# Subcommand modules, in the order `hubcore --help` lists them.
COMMANDS = ["show"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubcore", description="Inspect and run TF1 Hub modules (hub.Module format)."
    )
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"hubcore.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except Error as e:
        print(f"hubcore {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hubcore {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
