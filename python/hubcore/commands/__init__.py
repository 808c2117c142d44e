"""Subcommands of the ``hubcore`` CLI; each module defines ``add_parser`` and ``run``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["muted_native_stderr"]


@contextlib.contextmanager
def muted_native_stderr() -> Iterator[None]:
    """Mutes file descriptor 2 while TensorFlow's native code starts up.

    TensorFlow logs start-up notes (oneDNN, CUDA probing) through absl before any log level
    applies; for a command-line tool they are noise. Failures still surface: they come back as
    Python exceptions, raised after stderr is restored. HUBCORE_VERBOSE_STARTUP=1 keeps them.
    """
    if os.environ.get("HUBCORE_VERBOSE_STARTUP"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
