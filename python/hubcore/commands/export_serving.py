"""``hubcore export-serving MODULE OUT``: write a module as a plain SavedModel for serving.

The SavedModel has the ``serve`` tag, a ``serving_default`` signature (the module's ``default``
unless ``--signature`` names another), the module's other signatures, its assets, restored
variables and a main op that initializes tables; ``tf.saved_model.load``, ``saved_model_cli run``
and TensorFlow Serving accept it. ``OUT`` must not exist; it appears complete or not at all.
"""

from __future__ import annotations

import argparse
import sys

from hubcore.commands import add_module_argument, add_tags_option, description

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export-serving",
        help="write a module as a SavedModel (tag 'serve', 'serving_default') for serving",
        description=description(__doc__),
        usage="%(prog)s [options] MODULE OUT",
    )
    add_module_argument(p)
    p.add_argument("out", nargs="?", metavar="OUT", help="directory to create (must not exist)")
    add_tags_option(p, ["module", "out"])
    p.add_argument(
        "--signature",
        default="default",
        help="module signature to serve as serving_default (default: 'default')",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hubcore.serving_export import export_serving

    out = export_serving(args.module, args.out, tags=args.tags, signature=args.signature)
    print(
        f"hubcore export-serving: wrote SavedModel {out} (tag 'serve', 'serving_default' = "
        f"'{args.signature}')",
        file=sys.stderr,
    )
    return 0
