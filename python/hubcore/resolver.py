"""``hubcore.resolve(handle)``: the local directory of a module named by a path or a URL.

Every entry point (``load_module_spec``, ``Module``, ``Runner``, the CLI, the Beam transform)
resolves its handle here first. A handle is one of:

- a local directory, returned unchanged (a missing path too: the loader reports it);
- a local ``.tar``/``.tar.gz``/``.tgz`` archive (or a file with gzip/bzip2/xz/tar magic):
  extracted safely into the cache once, keyed by its absolute path, size and modification time;
- a ``file://`` URL: the same as its local path;
- an ``http://`` or ``https://`` URL: downloaded once into the cache (:mod:`hubcore.download`);
- a URL of any other scheme that TensorFlow's file systems know (``gs://``, ``s3://`` with TF's
  plugins, ``hdfs://``, ``ram://``): read through ``tf.io.gfile`` as an archive, or as a directory
  that is copied into the cache.

The cache is tensorflow_hub's (see :mod:`hubcore.cache`): URL handles live in
``<cache>/<sha1(handle)>``, so a module either library downloaded is used by the other without
network access. With ``HUBCORE_OFFLINE=1`` URL handles resolve only from the cache.

The returned directory is the entry itself when ``tfhub_module.pb`` or ``saved_model.pb`` is at its
root, else the entry's single top-level directory holding one (how many archives are packed).
"""

from __future__ import annotations

import os
import re
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from hubcore import cache
from hubcore.archive import archive_limits, extract_archive, is_archive
from hubcore.errors import (
    CorruptModuleError,
    DownloadError,
    Error,
    FailedPreconditionError,
    InvalidArgumentError,
    ModulePathNotFoundError,
    NotAModuleError,
    OfflineError,
    UnsafeArchiveError,
)

__all__ = ["cached_entry", "module_dir", "normalize_handle", "offline", "resolve", "url_scheme"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_MARKERS = ("tfhub_module.pb", "saved_model.pb", "saved_model.pbtxt")
_COPY_CHUNK = 1 << 20


def _handle_str(handle: str | os.PathLike[str]) -> str:
    """``handle`` as a str, or InvalidArgumentError (not fspath's TypeError) naming it."""
    path = os.fspath(handle) if isinstance(handle, os.PathLike) else handle
    if not isinstance(path, str):
        raise InvalidArgumentError(f"a module handle must be a str path or URL, got {handle!r}")
    return path


def resolve(handle: str | os.PathLike[str]) -> str:
    """Returns the local directory of the module ``handle`` names, fetching it if needed.

    Raises ``hubcore.DownloadError`` subclasses for download failures (``HandleNotFoundError``,
    ``TruncatedDownloadError``, ``NotAnArchiveError``, ``OfflineError``), ``UnsafeArchiveError``
    / ``CorruptModuleError`` for bad archives, ``NotAModuleError`` when a fetched archive holds
    no module, and ``FailedPreconditionError`` when the cache cannot be written (permissions, a
    full disk).
    """
    handle = _handle_str(handle)
    try:
        scheme = url_scheme(handle)
        if scheme is None:
            return _resolve_local(handle)
        if scheme == "file":
            return _resolve_local(_file_url_path(handle))
        if scheme in ("http", "https"):
            from hubcore.download import download

            return _resolve_cached(handle, download)
        return _resolve_cached(handle, _fetch_with_gfile)
    except Error:
        raise
    except OSError as e:
        # The cache (or the archive) cannot be read or written: permissions, a full disk, ...
        where = f" ({e.filename})" if e.filename else ""
        raise FailedPreconditionError(f"{handle}: {e.strerror or e}{where}") from None


def url_scheme(handle: str) -> str | None:
    """The lower-cased scheme of a URL handle (``https``, ``gs``, ...); None for a local path."""
    match = _SCHEME.match(handle)
    return match.group(1).lower() if match else None


def normalize_handle(handle: str | os.PathLike[str]) -> str:
    """A handle that means the same from any working directory: URLs as they are, paths absolute.

    Runner and the Beam transform pickle this, so a worker resolves it with its own cache.
    """
    handle = _handle_str(handle)
    if not handle or url_scheme(handle):
        return handle  # "" stays "": not a module, rather than the current directory
    return os.path.abspath(handle)


def cached_entry(handle: str) -> str:
    """The cache entry a handle uses (whether or not it is there yet)."""
    scheme = url_scheme(handle)
    if scheme is not None and scheme != "file":
        return cache.entry_path(handle)
    path = os.path.abspath(_file_url_path(handle) if scheme == "file" else handle)
    return os.path.join(cache.cache_root(), _archive_key(path, os.stat(path)))


def offline() -> bool:
    return os.environ.get("HUBCORE_OFFLINE", "").lower() not in ("", "0", "false", "no")


def module_dir(handle: str, entry: str) -> str:
    """The module directory inside a cache entry (its root or its single top-level directory)."""
    if _has_marker(entry):
        return entry
    children = os.listdir(entry)
    if len(children) == 1:
        top = os.path.join(entry, children[0])
        if os.path.isdir(top) and not os.path.islink(top) and _has_marker(top):
            return top
    raise NotAModuleError(
        f"{handle}: holds no module (neither tfhub_module.pb nor saved_model.pb at its root or in "
        f"a single top-level directory; the files are in {entry})"
    )


# ---- the kinds of handles -----------------------------------------------------------------------


def _resolve_local(path: str) -> str:
    if not is_archive(path):
        return path
    archive = os.path.abspath(path)
    with open(archive, "rb") as f:
        st = os.fstat(f.fileno())
        entry = os.path.join(cache.cache_root(), _archive_key(archive, st))

        def extract(work: str) -> None:
            f.seek(0)
            extract_archive(archive, f, work)
            after = os.fstat(f.fileno())
            if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                raise CorruptModuleError(
                    f"{archive}: the archive changed while it was being extracted"
                )

        cache.fill_entry(archive, entry, extract)
    return module_dir(archive, entry)


def _resolve_cached(handle: str, fetch: Callable[[str, str], None]) -> str:
    entry = cache.entry_path(handle)
    if not cache.is_present(entry):
        if offline():
            raise OfflineError(
                f"{handle}: not in the module cache {os.path.dirname(entry)} (as {entry}), and "
                "HUBCORE_OFFLINE is set",
                handle,
            )
        cache.fill_entry(handle, entry, lambda work: fetch(handle, work))
    return module_dir(handle, entry)


def _archive_key(path: str, st: os.stat_result) -> str:
    # Not tensorflow_hub's key (it has no local archives): size and mtime make a changed archive
    # a new entry.
    return cache.handle_key(f"{path}\0{st.st_size}\0{st.st_mtime_ns}")


def _file_url_path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InvalidArgumentError(
            f"{url}: file URLs on another host ({parts.netloc}) are not supported"
        )
    return urllib.request.url2pathname(parts.path)


def _has_marker(directory: str) -> bool:
    return any(os.path.isfile(os.path.join(directory, m)) for m in _MARKERS)


# ---- tf.io.gfile (gs://, s3://, hdfs://, ram://, ...) --------------------------------------------


def _fetch_with_gfile(handle: str, work: str) -> None:
    gfile = _gfile()
    errors = _tf_errors()
    try:
        if gfile.isdir(handle):
            _copy_gfile_tree(gfile, handle, work)
            return
        if not gfile.exists(handle):
            raise ModulePathNotFoundError(f"{handle}: no such module (file or directory)") from None
        with gfile.GFile(handle, "rb") as f:
            extract_archive(handle, f, work)
    except errors.UnimplementedError:
        raise InvalidArgumentError(
            f"{handle}: TensorFlow has no file system for this URL scheme (is its plugin, e.g. "
            "tensorflow-io for s3://, installed?)"
        ) from None
    except errors.NotFoundError:
        raise ModulePathNotFoundError(f"{handle}: no such module (file or directory)") from None
    except errors.OpError as e:
        raise DownloadError(f"{handle}: {e.message}", handle) from None


def _copy_gfile_tree(gfile: Any, src: str, dest: str) -> None:
    """Copies a remote module directory: regular files and directories, within the limits."""
    max_bytes, max_members, max_depth = archive_limits()
    written = members = 0
    pending = [""]  # relative directories still to copy; no recursion
    while pending:
        rel = pending.pop()
        for name in gfile.listdir(src.rstrip("/") + "/" + rel if rel else src):
            name = name.rstrip("/")
            child = f"{rel}/{name}" if rel else name
            if not name or name in (".", "..") or "\0" in name or "/" in name:
                raise UnsafeArchiveError(f"{src}: entry {child!r}: not a plain name")
            members += 1
            if members > max_members or child.count("/") + 1 > max_depth:
                raise UnsafeArchiveError(
                    f"{src}: entry {child!r}: more than {max_members} entries or {max_depth} "
                    "levels (see HUBCORE_ARCHIVE_MAX_MEMBERS / _MAX_DEPTH)"
                )
            remote = src.rstrip("/") + "/" + child
            local = os.path.join(dest, *child.split("/"))
            if gfile.isdir(remote):
                os.mkdir(local, 0o755)
                pending.append(child)
                continue
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            with (
                gfile.GFile(remote, "rb") as f,
                os.fdopen(os.open(local, flags, 0o644), "wb") as out,
            ):
                while chunk := f.read(_COPY_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise UnsafeArchiveError(
                            f"{src}: entry {child!r}: copying it would exceed {max_bytes} bytes "
                            "(set HUBCORE_ARCHIVE_MAX_BYTES to allow more)"
                        )
                    out.write(chunk)


def _gfile() -> Any:
    import tensorflow as tf  # only for URL schemes the standard library cannot read

    return tf.io.gfile


def _tf_errors() -> Any:
    import tensorflow as tf

    return tf.errors
