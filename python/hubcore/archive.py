"""Safe extraction of module archives (``.tar``, ``.tar.gz``, ``.tgz``, also bzip2/xz).

tfhub.dev served TF1 Hub modules as compressed tarballs, and tensorflow_hub's resolver unpacked
them with few checks. :func:`extract_archive` unpacks one, from a local file or straight from a
download, into an empty directory; :mod:`hubcore.resolver` decides where (the cache) and when.

Why the standard library's ``tarfile`` plus checks of our own: ``tarfile`` is well maintained and
parses the many tar dialects (ustar, GNU, pax) correctly, but its ``extract``/``extractall`` trust
the archive (links, absolute and ``..`` names, device nodes, setuid modes), and the extraction
filters of Python 3.12+ neither exist on every supported Python nor limit sizes. So hubcore only
uses ``tarfile`` to *parse* the stream (mode ``r|*``: one sequential pass, nothing seeks, nothing is
buffered whole) and writes the files itself:

- only regular files and directories; symlinks, hard links, devices, fifos and sparse files are
  rejected (:class:`hubcore.UnsafeArchiveError` naming the member and the reason);
- names must be relative, free of NUL and of ``..`` components; they are normalized and every
  file is created (``O_NOFOLLOW``) inside a fresh private directory that holds nothing but what
  we wrote, so there is no link to follow;
- modes are never taken from the archive: files are 0o644, directories 0o755, owners unchanged;
- the number of members and the total bytes written are limited (``HUBCORE_ARCHIVE_MAX_MEMBERS``,
  ``HUBCORE_ARCHIVE_MAX_BYTES``); the byte limit is checked against each header before reading and
  against the bytes actually written while copying, and the decompressed stream as a whole (headers
  included) is bounded too, so neither a lying header nor a decompression bomb can write or buffer
  more than the limit allows;
- gzip/bzip2/xz are decompressed by the ``gzip``/``bz2``/``lzma`` modules, which check the
  trailer (CRC, end of stream), so a truncated or corrupt archive raises
  :class:`hubcore.CorruptModuleError` naming the archive instead of yielding a partial module.

The member depth is limited too (``HUBCORE_ARCHIVE_MAX_DEPTH``, default 64 levels): nothing in a
module is nested that deep, and a tree thousands of levels deep is only good for breaking the tools
that walk it.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import os
import posixpath
import stat
import tarfile
import zlib
from dataclasses import dataclass
from typing import IO, Any, Protocol, cast

from hubcore.errors import (
    CorruptModuleError,
    InvalidArgumentError,
    UnsafeArchiveError,
)

__all__ = [
    "ARCHIVE_SUFFIXES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_MEMBERS",
    "Readable",
    "archive_limits",
    "extract_archive",
    "is_archive",
]


class Readable(Protocol):
    """What extraction reads from: a binary stream's ``read`` (a file, a response, a GFile)."""

    def read(self, size: int = ..., /) -> bytes: ...


ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
DEFAULT_MAX_BYTES = 64 << 30
DEFAULT_MAX_MEMBERS = 1_000_000
DEFAULT_MAX_DEPTH = 64
_MAX_HEADER_BYTES = 1 << 20  # one pax / GNU long-name header
_COPY_CHUNK = 1 << 20
_SNIFF_BYTES = 6  # the longest magic number: xz
_FILE_MODE = 0o644
_DIR_MODE = 0o755
_HEADER_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


def is_archive(path: str) -> bool:
    """True for a regular file named like a tarball or starting with gzip/bzip2/xz/tar magic."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        if path.lower().endswith(ARCHIVE_SUFFIXES):
            return True
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return _compression(head) is not None or (len(head) == 512 and head[257:262] == b"ustar")


def archive_limits() -> tuple[int, int, int]:
    """(max bytes, max members, max depth) from the environment, else the defaults."""
    return (
        _env_int("HUBCORE_ARCHIVE_MAX_BYTES", DEFAULT_MAX_BYTES),
        _env_int("HUBCORE_ARCHIVE_MAX_MEMBERS", DEFAULT_MAX_MEMBERS),
        _env_int("HUBCORE_ARCHIVE_MAX_DEPTH", DEFAULT_MAX_DEPTH),
    )


def extract_archive(
    name: str,
    stream: Readable,
    dest: str,
    *,
    max_bytes: int | None = None,
    max_members: int | None = None,
    max_depth: int | None = None,
) -> None:
    """Extracts the archive read from ``stream`` into the empty directory ``dest``, safely.

    ``stream`` is read once, front to back (it may be a network response); its compression
    (gzip, bzip2, xz or none) is sniffed from the first bytes. ``name`` (a path or handle) is what
    error messages call the archive. Limits not given come from the environment (see the module
    doc). Raises UnsafeArchiveError for a hostile member, CorruptModuleError for a broken archive.
    """
    env_bytes, env_members, env_depth = archive_limits()
    limits = _Limits(
        env_bytes if max_bytes is None else max_bytes,
        env_members if max_members is None else max_members,
        env_depth if max_depth is None else max_depth,
    )
    sniffed = _Sniffed(stream)
    decompressed = _decompressor(sniffed)
    try:
        _extract_stream(name, decompressed, dest, limits)
    finally:
        if decompressed is not sniffed:
            cast(IO[bytes], decompressed).close()  # a decompressor; does not close the stream


class _Sniffed:
    """``stream`` with its first bytes read ahead (to tell the compression) and then replayed.

    ``read`` passes each call through as it is, so a network stream is extracted as it arrives
    (a buffered reader would wait for a full buffer)."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        head = b""
        while len(head) < _SNIFF_BYTES:
            more = stream.read(_SNIFF_BYTES - len(head))
            if not more:
                break
            head += more
        self.head = head
        self._pending = head

    def read(self, size: int = -1) -> bytes:
        if self._pending:
            if size is None or size < 0:
                size = len(self._pending)
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return self._stream.read(size)


@dataclass(frozen=True)
class _Limits:
    max_bytes: int
    max_members: int
    max_depth: int


def _extract_stream(archive: str, decompressed: Readable, dest: str, limits: _Limits) -> None:
    max_bytes, max_members = limits.max_bytes, limits.max_members
    stream = _LimitedReader(archive, decompressed, max_bytes + 2048 * max_members + (16 << 20))
    written = 0
    members = 0
    try:
        fileobj = cast(IO[bytes], stream)  # tarfile's stream mode only calls read()
        with tarfile.open(archive, mode="r|*", fileobj=fileobj, tarinfo=_GuardedTarInfo) as tar:
            for member in tar:
                members += 1
                if members > max_members:
                    raise UnsafeArchiveError(
                        f"{archive}: member {member.name!r}: more than {max_members} members "
                        "(set HUBCORE_ARCHIVE_MAX_MEMBERS to allow more)"
                    )
                rel = _checked_name(archive, member, limits.max_depth)
                if member.isdir():
                    if rel:
                        _make_dirs(archive, member, dest, rel)
                    continue
                if written + member.size > max_bytes:
                    raise _too_big(archive, member, max_bytes)
                parent = posixpath.dirname(rel)
                if parent:
                    _make_dirs(archive, member, dest, parent)
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                written = _write_file(archive, member, source, dest, rel, written, max_bytes)
        stream.drain()  # reach the compressed stream's end: its trailer (CRC) is checked
    except _StreamError as e:
        raise CorruptModuleError(
            f"{archive}: not a valid or complete archive ({e.__cause__ or e})"
        ) from None
    except tarfile.TarError as e:
        raise CorruptModuleError(f"{archive}: not a valid or complete tar archive ({e})") from None


def _checked_name(archive: str, member: tarfile.TarInfo, max_depth: int) -> str:
    """The member's normalized relative name ('' for the root); rejects anything unsafe."""
    name = member.name

    def reject(reason: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"{archive}: member {name!r}: {reason}")

    if member.issym():
        raise reject(f"symbolic link (to {member.linkname!r}) is not allowed")
    if member.islnk():
        raise reject(f"hard link (to {member.linkname!r}) is not allowed")
    if member.ischr() or member.isblk():
        raise reject("device file is not allowed")
    if member.isfifo():
        raise reject("fifo is not allowed")
    if member.issparse():
        raise reject("sparse file is not allowed")
    if not (member.isreg() or member.isdir()):
        raise reject(f"member type {member.type!r} is not allowed")
    if "\0" in name:
        raise reject("name contains a NUL character")
    if name.startswith("/") or os.path.isabs(name):
        raise reject("absolute name is not allowed")
    if ".." in name.split("/"):
        raise reject("'..' component is not allowed")
    rel = posixpath.normpath(name)
    if rel == ".":
        if member.isdir():
            return ""
        raise reject("a file cannot be the archive root")
    parts = rel.split("/")
    if rel.startswith("/") or ".." in parts:  # cannot happen after the checks above
        raise reject("name escapes the archive root")
    if len(parts) > max_depth:
        raise reject(
            f"{len(parts)} levels deep, more than {max_depth} "
            "(set HUBCORE_ARCHIVE_MAX_DEPTH to allow more)"
        )
    return rel


def _make_dirs(archive: str, member: tarfile.TarInfo, dest: str, rel: str) -> None:
    path = dest
    for part in rel.split("/"):
        path = os.path.join(path, part)
        try:
            os.mkdir(path, _DIR_MODE)
        except FileExistsError:
            if not os.path.isdir(path) or os.path.islink(path):
                raise UnsafeArchiveError(
                    f"{archive}: member {member.name!r}: a directory conflicts with a file "
                    f"of the same name"
                ) from None
            continue
        os.chmod(path, _DIR_MODE)  # exact mode, whatever the umask


def _write_file(
    archive: str,
    member: tarfile.TarInfo,
    source: IO[bytes],
    dest: str,
    rel: str,
    written: int,
    max_bytes: int,
) -> int:
    """Copies one member's data; returns the new total of bytes written."""
    target = os.path.join(dest, rel)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, _FILE_MODE)
    except (IsADirectoryError, NotADirectoryError, FileExistsError) as e:
        raise UnsafeArchiveError(
            f"{archive}: member {member.name!r}: conflicts with another member ({e.strerror})"
        ) from None
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), _FILE_MODE)
        for i in itertools.count(1):
            chunk = source.read(_COPY_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > max_bytes:  # never trust the header's size alone
                raise _too_big(archive, member, max_bytes)
            out.write(chunk)
            if i % 256 == 0:
                os.utime(dest)  # a long copy must not look like a stale temp dir
    return written


def _too_big(archive: str, member: tarfile.TarInfo, max_bytes: int) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"{archive}: member {member.name!r}: extracting it would exceed {max_bytes} bytes "
        "(set HUBCORE_ARCHIVE_MAX_BYTES to allow more)"
    )


class _GuardedTarInfo(tarfile.TarInfo):
    """Refuses oversized pax / GNU long-name headers before tarfile reads them into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:
        if self.type in _HEADER_TYPES and self.size > _MAX_HEADER_BYTES:
            where = os.fsdecode(tarfile_.name or "archive")
            raise UnsafeArchiveError(
                f"{where}: member {self.name!r}: extended header of {self.size} bytes exceeds "
                f"{_MAX_HEADER_BYTES}"
            )
        return super()._proc_member(tarfile_)  # type: ignore[misc]  # tarfile's private hook


class _StreamError(Exception):
    """Reading or decompressing the archive failed (the cause is chained)."""


class _LimitedReader:
    """A read-only stream over the decompressed archive that bounds the bytes read."""

    def __init__(self, archive: str, inner: Readable, limit: int) -> None:
        self._archive = archive
        self._inner = inner
        self._limit = limit
        self._count = 0
        self.name = archive

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > _COPY_CHUNK:
            size = _COPY_CHUNK
        try:
            data = self._inner.read(size)
        except (EOFError, OSError, zlib.error, lzma.LZMAError) as e:
            raise _StreamError(str(e)) from e
        self._count += len(data)
        if self._count > self._limit:
            raise UnsafeArchiveError(
                f"{self._archive}: decompresses to more than {self._limit} bytes "
                "(set HUBCORE_ARCHIVE_MAX_BYTES to allow more)"
            )
        return data

    def drain(self) -> None:
        while self.read(_COPY_CHUNK):
            pass


def _compression(head: bytes) -> str | None:
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    return None


def _decompressor(f: _Sniffed) -> Readable:
    kind = _compression(f.head)
    raw = cast(IO[bytes], f)  # the decompressors only ever call read()
    if kind == "gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(raw, "rb")
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb")
    return f


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}") from None
