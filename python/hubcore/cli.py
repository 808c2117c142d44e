"""The ``hubcore`` command line: ``hubcore show|run|export-serving|export-tf2|example|cache ...``.

argparse (standard library) parses the arguments: subcommands, help and errors need nothing more,
and it adds no dependency. Each subcommand lives in ``hubcore.commands.<name>`` and provides
``add_parser(subparsers)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

# Keep TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) off the terminal; set before the
# native libraries load. An explicit setting by the user wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hubcore.commands import finish_parsing, muted_native_stderr
from hubcore.errors import Error

__all__ = ["COMMANDS", "build_parser", "main"]

# Subcommand modules, in the order `hubcore --help` lists them.
COMMANDS = ["show", "example", "run", "export_serving", "export_tf2", "cache"]


# Subcommands that build graphs with TensorFlow's Python API (the others use only hubcore._core).
_NEEDS_TENSORFLOW = {"example", "export-serving", "export-tf2"}


def _load_native_quietly(modules: list[str]) -> None:
    """Imports the native modules a command needs without TensorFlow's start-up chatter."""
    modules = [m for m in modules if m not in sys.modules]
    try:
        with muted_native_stderr():
            for module in modules:
                importlib.import_module(module)
    except ImportError:
        pass  # Re-raised, with its message visible, by the command that needs it.


class _PrintAndExit(argparse.Action):
    """An option that prints ``text()`` and exits, like --version (computed only when given)."""

    def __init__(self, option_strings: list[str], dest: str, text: Any, help: str | None = None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)
        self._text = text

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        try:
            print(self._text())
        except Error as e:
            parser.exit(1, f"hubcore: error: {e}\n")
        parser.exit()


def _cmake_dir() -> str:
    from hubcore.cpp_sdk import get_cmake_dir

    return get_cmake_dir()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubcore", description="Inspect and run TF1 Hub modules (hub.Module format)."
    )
    from hubcore import __version__

    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="print hubcore's version and exit",
    )
    parser.add_argument(
        "--cmake-dir",
        action=_PrintAndExit,
        text=_cmake_dir,
        help="print the directory of hubcore's CMake package (for find_package(hubcore) in C++ "
        "programs: -Dhubcore_DIR=...) and exit",
    )
    subparsers = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do (hubcore COMMAND --help describes its options)",
    )
    for name in COMMANDS:
        importlib.import_module(f"hubcore.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    wanted = ["hubcore._core"]
    if argv and argv[0] in _NEEDS_TENSORFLOW:
        wanted.append("tensorflow")
    _load_native_quietly(wanted)
    args = build_parser().parse_args(argv)
    finish_parsing(args)
    try:
        # TensorFlow logs natively while sessions start and run too (cuInit, MLIR passes).
        with muted_native_stderr(keep_python=True):
            return int(args.handler(args) or 0)
    except Error as e:
        print(f"hubcore {args.command}: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"hubcore {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
