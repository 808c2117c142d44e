"""``hubcore example NAME DIR``: write a small example module made with hubcore.

``hubcore example text-embedding /tmp/m && hubcore run /tmp/m --input sentences.txt ...`` is the
quickest way to see hubcore work on a fresh machine (see :mod:`hubcore.examples`).
"""

from __future__ import annotations

import argparse

from hubcore.examples import EXAMPLES

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    lines = [f"  {name}: {desc}" for name, (_, desc) in sorted(EXAMPLES.items())]
    p = subparsers.add_parser(
        "example",
        help="write a small example module (e.g. text-embedding) to a directory",
        description="Write a small example TF1 Hub module built with hubcore.\n\nExamples:\n"
        + "\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "name",
        choices=sorted(EXAMPLES),
        metavar="NAME",
        help="which example: " + ", ".join(sorted(EXAMPLES)),
    )
    p.add_argument("dir", metavar="DIR", help="output directory (must not exist, or be empty)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hubcore.examples import write_example

    path = write_example(args.name, args.dir)
    print(f"Wrote the {args.name} example module to {path}")
    return 0
