"""``hubcore export-tf2 MODULE OUT``: write a module as a TF2 SavedModel (migration off TF1 Hub).

The SavedModel has one signature per module signature with the same input and output names
(sparse and ragged values split into their components), a callable object for the default
signature (obj(inputs, training=False)), the variables with the checkpoint's values, the
regularization losses and the assets. Plain TensorFlow loads it (tf.saved_model.load), without
hubcore. OUT must not exist (or be an empty directory); it appears complete or not at all.
"""

from __future__ import annotations

import argparse
import sys

from hubcore.commands import add_module_argument, add_tags_option, description

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export-tf2",
        help="write a module as a TF2 SavedModel (tf.saved_model.load, no hubcore needed)",
        description=description(__doc__),
        usage="%(prog)s [options] MODULE OUT",
    )
    add_module_argument(p)
    p.add_argument("out", nargs="?", metavar="OUT", help="directory to create (must not exist)")
    add_tags_option(p, ["module", "out"])
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hubcore.tf2_export import export_tf2

    out = export_tf2(args.module, args.out, tags=args.tags)
    print(f"hubcore export-tf2: wrote TF2 SavedModel {out}", file=sys.stderr)
    return 0
