"""Safe extraction of module archives (``.tar``, ``.tar.gz``, ``.tgz``) into a local cache.

tfhub.dev served TF1 Hub modules as compressed tarballs, and tensorflow_hub's resolver unpacked
them with few checks. :func:`resolve_module_path` lets every hubcore entry point take such an
archive: a directory (or a missing path) is returned unchanged, an archive is extracted once into
a cache directory and the module directory inside it is returned.

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

Cache: ``$HUBCORE_CACHE_DIR``, else ``$TFHUB_CACHE_DIR``, else
``<tempfile.gettempdir()>/hubcore_modules`` (``hubcore_modules_<uid>`` if that directory belongs
to another user). Each archive gets the entry ``<cache>/<sha1(absolute path, size, mtime_ns)>``,
so a changed archive is extracted again. Extraction goes to ``<entry>.<random>.tmp`` beside the
entry and is renamed into place: the entry either exists complete or not at all. When two
processes race, the first rename wins and the loser deletes its copy. Temporary directories left by
a crash are removed by later extractions once they are more than an hour old.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import itertools
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import time
import zlib
from typing import IO, Any

from hubcore.errors import (
    CorruptModuleError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotAModuleError,
    UnsafeArchiveError,
)

__all__ = [
    "ARCHIVE_SUFFIXES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_MEMBERS",
    "cache_root",
    "is_archive",
    "resolve_module_path",
]

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
DEFAULT_MAX_BYTES = 64 << 30
DEFAULT_MAX_MEMBERS = 1_000_000
_MAX_HEADER_BYTES = 1 << 20  # one pax / GNU long-name header
_STALE_TMP_SECONDS = 3600
_COPY_CHUNK = 1 << 20
_FILE_MODE = 0o644
_DIR_MODE = 0o755
_HEADER_TYPES = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)
_MARKER = "tfhub_module.pb"


def resolve_module_path(
    path: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
    max_members: int | None = None,
) -> str:
    """Returns a module directory for ``path``: unchanged unless it is an archive file.

    An archive is extracted safely into the cache (see the module doc) and the directory holding
    ``tfhub_module.pb`` (the archive root or its single top-level directory) is returned.
    Raises UnsafeArchiveError for a hostile member, CorruptModuleError for a broken archive.
    """
    path = os.fspath(path)
    if not is_archive(path):
        return path
    archive = os.path.abspath(path)
    if max_bytes is None:
        max_bytes = _env_int("HUBCORE_ARCHIVE_MAX_BYTES", DEFAULT_MAX_BYTES)
    if max_members is None:
        max_members = _env_int("HUBCORE_ARCHIVE_MAX_MEMBERS", DEFAULT_MAX_MEMBERS)
    with open(archive, "rb") as f:
        st = os.fstat(f.fileno())
        root = cache_root()
        key = f"{archive}\0{st.st_size}\0{st.st_mtime_ns}".encode("utf-8", "surrogateescape")
        entry = os.path.join(root, hashlib.sha1(key).hexdigest())
        if not os.path.isdir(entry):
            _extract_to_entry(archive, f, st, entry, max_bytes, max_members)
    return _module_dir(archive, entry)


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


def cache_root() -> str:
    """The cache directory (created, mode 0o700, if missing).

    The default one, under the shared temp dir, must belong to the current user.
    """
    root = os.environ.get("HUBCORE_CACHE_DIR") or os.environ.get("TFHUB_CACHE_DIR")
    if root:
        os.makedirs(root, mode=0o700, exist_ok=True)
        return root
    root = os.path.join(tempfile.gettempdir(), "hubcore_modules")
    if not hasattr(os, "geteuid"):
        os.makedirs(root, mode=0o700, exist_ok=True)
        return root
    # A shared temp dir: never use (predictably named) entries another user could plant.
    if os.path.isdir(root) and os.stat(root).st_uid != os.geteuid():
        root = f"{root}_{os.geteuid()}"
    os.makedirs(root, mode=0o700, exist_ok=True)
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise FailedPreconditionError(
            f"module cache {root} is not a directory of the current user; "
            "set HUBCORE_CACHE_DIR to a private directory"
        )
    if st.st_mode & 0o022:
        os.chmod(root, 0o700)
    return root


# ---- extraction ---------------------------------------------------------------------------------


def _extract_to_entry(
    archive: str, f: IO[bytes], st: os.stat_result, entry: str, max_bytes: int, max_members: int
) -> None:
    root = os.path.dirname(entry)
    _remove_stale_tmp(root)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(entry) + ".", suffix=".tmp", dir=root)
    try:
        _extract(archive, f, tmp, max_bytes, max_members)
        after = os.fstat(f.fileno())
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            raise CorruptModuleError(f"{archive}: the archive changed while it was being extracted")
        os.chmod(tmp, _DIR_MODE)
        try:
            os.rename(tmp, entry)
        except OSError as e:
            # Another process (or thread) renamed its complete copy first: use theirs.
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not os.path.isdir(entry):
                raise
    finally:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _extract(archive: str, f: IO[bytes], dest: str, max_bytes: int, max_members: int) -> None:
    """Streams the archive in ``f`` into the empty directory ``dest`` with all safety checks."""
    f.seek(0)
    decompressed = _decompressor(f)
    try:
        _extract_stream(archive, decompressed, dest, max_bytes, max_members)
    finally:
        if decompressed is not f:
            decompressed.close()  # does not close f


def _extract_stream(
    archive: str, decompressed: IO[bytes], dest: str, max_bytes: int, max_members: int
) -> None:
    stream = _LimitedReader(archive, decompressed, max_bytes + 2048 * max_members + (16 << 20))
    written = 0
    members = 0
    try:
        with tarfile.open(archive, mode="r|*", fileobj=stream, tarinfo=_GuardedTarInfo) as tar:
            for member in tar:
                members += 1
                if members > max_members:
                    raise UnsafeArchiveError(
                        f"{archive}: member {member.name!r}: more than {max_members} members "
                        "(set HUBCORE_ARCHIVE_MAX_MEMBERS to allow more)"
                    )
                rel = _checked_name(archive, member)
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


def _checked_name(archive: str, member: tarfile.TarInfo) -> str:
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
    if rel.startswith("/") or ".." in rel.split("/"):  # cannot happen after the checks above
        raise reject("name escapes the archive root")
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
            raise UnsafeArchiveError(
                f"{tarfile_.name or 'archive'}: member {self.name!r}: extended header of "
                f"{self.size} bytes exceeds {_MAX_HEADER_BYTES}"
            )
        return super()._proc_member(tarfile_)


class _StreamError(Exception):
    """Reading or decompressing the archive failed (the cause is chained)."""


class _LimitedReader:
    """A read-only stream over the decompressed archive that bounds the bytes read."""

    def __init__(self, archive: str, inner: IO[bytes], limit: int) -> None:
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


def _decompressor(f: IO[bytes]) -> IO[bytes]:
    head = f.read(6)
    f.seek(0)
    kind = _compression(head)
    if kind == "gz":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if kind == "bz2":
        return bz2.BZ2File(f, "rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(f, "rb")  # type: ignore[return-value]
    return f


def _module_dir(archive: str, entry: str) -> str:
    if os.path.isfile(os.path.join(entry, _MARKER)):
        return entry
    children = os.listdir(entry)
    if len(children) == 1:
        top = os.path.join(entry, children[0])
        if os.path.isdir(top) and os.path.isfile(os.path.join(top, _MARKER)):
            return top
    raise NotAModuleError(
        f"{archive}: the archive holds no TF1 Hub module ({_MARKER} neither at its root nor in "
        f"a single top-level directory; extracted to {entry})"
    )


def _remove_stale_tmp(root: str) -> None:
    """Deletes temporary directories that crashed extractions left more than an hour ago."""
    now = time.time()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        if not name.endswith(".tmp") or len(name.split(".")[0]) != 40:
            continue
        path = os.path.join(root, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and now - st.st_mtime > _STALE_TMP_SECONDS:
            shutil.rmtree(path, ignore_errors=True)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}") from None
