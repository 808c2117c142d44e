"""Subcommands of the ``hubcore`` CLI; each module defines ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = [
    "add_module_argument",
    "add_tags_option",
    "description",
    "finish_parsing",
    "muted_native_stderr",
]


def description(doc: str | None) -> str:
    """A command module's docstring, after its title line, as ``--help`` text (no reST quotes)."""
    body = (doc or "").split("\n\n", 1)[-1]
    return body.replace("``", "'")


def add_module_argument(parser: argparse.ArgumentParser) -> None:
    """The MODULE positional (optional for argparse; see :func:`add_tags_option`)."""
    parser.add_argument(
        "module",
        nargs="?",
        metavar="MODULE",
        help="TF1 Hub module: a directory, a .tar(.gz) archive or a URL",
    )


@contextlib.contextmanager
def muted_native_stderr(keep_python: bool = False) -> Iterator[None]:
    """Mutes file descriptor 2, where TensorFlow's native code logs, for the block.

    TensorFlow logs start-up and session notes (oneDNN, CUDA probing, MLIR passes) through absl,
    which no log level silences; for a command-line tool they are noise. Failures still surface:
    they come back as Python exceptions. With ``keep_python``, Python's ``sys.stderr`` (if it is
    file descriptor 2) is pointed at the real stderr for the block, so the command's own messages
    and progress bar stay visible. HUBCORE_VERBOSE_STARTUP=1 turns the muting off.
    """
    if os.environ.get("HUBCORE_VERBOSE_STARTUP"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    python_stderr = sys.stderr
    if keep_python and _is_fd2(python_stderr):
        sys.stderr = open(  # restored below
            saved,
            "w",
            buffering=1,
            encoding=python_stderr.encoding,
            errors="backslashreplace",
            closefd=False,
        )
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        if sys.stderr is not python_stderr:
            sys.stderr.flush()
            sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _is_fd2(stream: Any) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


class _TagsAction(argparse.Action):
    """Collects ``--tags`` values; each occurrence's values are kept apart for finish_parsing."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        groups = list(getattr(namespace, "tag_groups", None) or [])
        groups.append(list(values or []))
        namespace.tag_groups = groups


def add_tags_option(
    parser: argparse.ArgumentParser,
    positionals: Sequence[str],
    default: str = "the variant without tags",
) -> None:
    """Adds ``--tags`` (``--tags a,b`` or repeated ``--tags a --tags b``) to a subcommand whose
    ``positionals`` are declared with ``nargs="?"``; ``default`` says what no ``--tags`` selects.

    The older spelling ``--tags a b`` still works: positionals that it swallowed
    (``--tags train MODULE OUT``) are taken back from its end by :func:`finish_parsing`, which is
    unambiguous because the number of positionals is fixed.
    """
    parser.add_argument(
        "--tags",
        nargs="*",
        action=_TagsAction,
        dest="tag_groups",
        default=[],
        metavar="TAG",
        help="tags of the graph variant to use, comma-separated or repeated: --tags train, "
        f"--tags a,b (default: {default})",
    )
    parser.set_defaults(tags=[], positional_names=list(positionals), subparser=parser)


def finish_parsing(args: argparse.Namespace) -> None:
    """Completes what argparse cannot express: positionals swallowed by ``--tags`` (see
    :func:`add_tags_option`), and the final ``args.tags`` list."""
    names: list[str] = getattr(args, "positional_names", [])
    if not names:
        return
    groups: list[list[str]] = [list(g) for g in args.tag_groups]
    missing = [n for n in names if getattr(args, n) is None]
    if missing:
        spare = groups[-1] if groups else []
        if len(spare) < len(missing):
            metavars = ", ".join(n.upper() for n in missing)
            args.subparser.error(f"the following arguments are required: {metavars}")
        taken = spare[len(spare) - len(missing) :]
        del spare[len(spare) - len(missing) :]
        for name, value in zip(missing, taken, strict=True):
            setattr(args, name, value)
    args.tags = [tag for group in groups for value in group for tag in value.split(",") if tag]
