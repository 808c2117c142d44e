"""Opening the file a command writes, without destroying anything the command does not own.

A regular file, or a path that does not exist yet, is written atomically: to a temporary file
beside it, renamed onto it by :meth:`OutputFile.commit` (keeping the old file's permission bits) or
removed by :meth:`OutputFile.abort`, so a failed run leaves the old file (or nothing) there.
Everything else is written in place, because replacing it would destroy it:

- a symlink is followed: its target is replaced or written, the link itself stays;
- devices (``/dev/null``), FIFOs and other ``/dev/`` or ``/proc/`` paths are opened and written,
  never renamed over; ``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N`` and ``/proc/self/fd/N`` write
  to the process's own descriptor, so ``>> log`` appends instead of truncating the log;
- a Unix socket is connected to and written;
- ``-`` is standard output.

A directory is refused. Every check runs when the file is opened, before any work starts.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import sys
import uuid
from typing import IO

from hubcore.errors import InvalidArgumentError

__all__ = ["STDIO", "OutputFile", "refuse_same_file"]

STDIO = "-"

# Paths under these are special files or links to them (/dev/stdout -> /proc/self/fd/1), even
# when they resolve to a regular file: a shell redirection's file must be written, not replaced.
_SPECIAL_ROOTS = ("/dev/", "/proc/")
# Names of this process's open descriptors: written through a duplicate of the descriptor.
_OWN_DESCRIPTORS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
_FD_PATH = re.compile(r"^/(?:dev/fd|proc/self/fd|proc/(\d+)/fd)/(\d+)$")


class OutputFile:
    """An output opened for writing; call ``commit`` on success and ``abort`` on failure.

    ``file`` is a binary stream (``binary=True``) or a UTF-8 text stream.
    """

    def __init__(self, path: str, binary: bool) -> None:
        self.path = path
        self._tmp: str | None = None  # set when written atomically
        self._target = ""
        self._closes = True
        if path == STDIO:
            self.file: IO = sys.stdout.buffer if binary else sys.stdout
            self._closes = False
            return
        try:
            self.file = self._open(path, binary)
        except InvalidArgumentError:
            raise
        except OSError as e:
            raise InvalidArgumentError(f"Cannot write output {path}: {e.strerror or e}") from None

    def _open(self, path: str, binary: bool) -> IO:
        try:
            st: os.stat_result | None = os.stat(path)  # follows symlinks
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise InvalidArgumentError(f"Output {path} is a directory; name a file to write")
        absolute = os.path.abspath(path)
        descriptor = _OWN_DESCRIPTORS.get(absolute)
        m = _FD_PATH.match(absolute)
        if descriptor is None and m and m.group(1) in (None, str(os.getpid())):
            descriptor = int(m.group(2))
        if descriptor is not None:
            return _stream(os.dup(descriptor), binary)
        special = absolute.startswith(_SPECIAL_ROOTS)
        if st is not None and (special or not stat.S_ISREG(st.st_mode)):
            if stat.S_ISSOCK(st.st_mode):
                return _connect(path, binary)
            return _stream(path, binary)
        # A new path or a regular file (also behind symlinks): write beside the real target.
        self._target = os.path.realpath(path)
        folder = os.path.dirname(self._target)
        os.makedirs(folder, exist_ok=True)
        name = f".{os.path.basename(self._target)}.tmp-{uuid.uuid4().hex[:8]}"
        self._tmp = os.path.join(folder, name)
        file = _stream(self._tmp, binary)
        if st is not None:
            os.chmod(self._tmp, stat.S_IMODE(st.st_mode))
        return file

    @property
    def atomic(self) -> bool:
        """Whether the output appears only on commit (False: written in place as it goes)."""
        return self._tmp is not None

    def commit(self) -> None:
        self._close()
        if self._tmp is not None:
            os.replace(self._tmp, self._target)
            self._tmp = None

    def abort(self) -> None:
        try:
            self._close()
        except OSError:
            pass  # e.g. a closed pipe; the output is abandoned anyway
        if self._tmp is not None:
            try:
                os.remove(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None

    def _close(self) -> None:
        if self._closes:
            self.file.close()
        else:
            self.file.flush()


def _stream(target: str | int, binary: bool) -> IO:
    """``target`` (a path or a descriptor to own) opened for writing bytes or UTF-8 text."""
    if binary:
        return open(target, "wb")
    return open(target, "w", encoding="utf-8")


def _connect(path: str, binary: bool) -> IO:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    stream: IO = sock.makefile("wb") if binary else sock.makefile("w", encoding="utf-8")
    sock.close()  # the stream keeps the connection open
    return stream


def refuse_same_file(input_path: str, output_path: str) -> None:
    """Raises InvalidArgumentError if the output is the input (which would destroy it)."""
    if STDIO in (input_path, output_path):
        return
    try:
        same = os.path.samefile(input_path, output_path)
        regular = stat.S_ISREG(os.stat(output_path).st_mode)
    except OSError:  # one of them does not exist
        return
    if same and regular:
        raise InvalidArgumentError(
            f"Output {output_path} is the input file {input_path}; writing it would destroy the "
            "input. Choose another output path"
        )
