"""The module cache: tensorflow_hub's on-disk layout, filled exactly once under concurrency.

Layout (the same as tensorflow_hub's, so both libraries share one cache)::

    <cache>/<key>                  the module directory, complete or absent
    <cache>/<key>.descriptor.txt   "Module: <handle>", download time, host and pid (informational)
    <cache>/<key>.lock             "<hostname>.<pid>.<uid>" while a process fills the entry
    <cache>/<key>.<uid>.tmp        that process's work directory, renamed to <key> when complete

``<key>`` is ``sha1(handle)`` for URLs and ``sha1(absolute path, size, mtime)`` for local
archives (so a changed archive is extracted again). An entry counts as present when its directory
exists and is not empty, which is tensorflow_hub's test as well.

:func:`fill_entry` takes the lock (created atomically, never overwritten), fills the work
directory, writes the descriptor and renames. Processes that find the lock taken wait for it to go
away. They take it over at once when its owner is a process of this host that no longer exists,
and otherwise when the owner's work directory has not grown for ``HUBCORE_LOCK_TIMEOUT_S`` seconds
(default 600, tensorflow_hub's value), so a wait is never unbounded.

Directories are removed without recursion (:func:`remove_tree`): a hostile, deeply nested tree
must not make cleanup fail, and a failed cleanup never blocks later use of the cache.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import logging
import os
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hubcore.errors import FailedPreconditionError, InvalidArgumentError

try:
    import fcntl
except ImportError:  # not on Windows: only the rare same-host lock take-over is unserialized
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_LOCK_TIMEOUT_S",
    "STALE_TMP_SECONDS",
    "LockOwner",
    "cache_root",
    "descriptor_path",
    "entry_path",
    "fill_entry",
    "handle_key",
    "is_present",
    "lock_path",
    "lock_timeout",
    "read_descriptor",
    "read_lock",
    "remove_stale_work_dirs",
    "remove_tree",
    "tmp_path",
    "tree_size",
]

_log = logging.getLogger("hubcore")

DEFAULT_LOCK_TIMEOUT_S = 600.0
STALE_TMP_SECONDS = 3600
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_MAX_POLL_S = 0.5


def cache_root() -> str:
    """The cache directory (created, mode 0o700, if missing).

    ``$HUBCORE_CACHE_DIR``, else ``$TFHUB_CACHE_DIR``, else ``<tempdir>/hubcore_modules``
    (``hubcore_modules_<uid>`` if that one belongs to another user).
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


def handle_key(handle: str) -> str:
    """The entry name of a URL handle: tensorflow_hub's ``sha1(handle).hexdigest()``."""
    return hashlib.sha1(handle.encode("utf-8", "surrogateescape")).hexdigest()


def entry_path(handle: str) -> str:
    return os.path.join(cache_root(), handle_key(handle))


def is_present(entry: str) -> bool:
    """True when the entry is a complete module directory (exists and is not empty)."""
    try:
        with os.scandir(entry) as it:
            return any(True for _ in it)
    except OSError:
        return False


def descriptor_path(entry: str) -> str:
    return entry + ".descriptor.txt"


def read_descriptor(entry: str) -> dict[str, str]:
    """The descriptor's fields ("Module", "Download Time", ...); empty if there is none."""
    try:
        with open(descriptor_path(entry), encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 16)
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            fields[name] = value
    return fields


def _write_descriptor(entry: str, handle: str) -> None:
    text = (
        f"Module: {handle}\nDownload Time: {datetime.datetime.today()}\n"
        f"Downloader Hostname: {socket.gethostname()} (PID:{os.getpid()})"
    )
    _atomic_write(descriptor_path(entry), text)  # informational: replacing is fine


def _atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{uuid.uuid4().hex}"
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# ---- the lock -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockOwner:
    """Who holds a ``.lock``: its contents ``<hostname>.<pid>.<uid>`` (hostnames may hold dots)."""

    hostname: str
    pid: int
    uid: str

    @classmethod
    def parse(cls, contents: str) -> LockOwner | None:
        parts = contents.strip().rsplit(".", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2])

    def is_dead_local_process(self) -> bool:
        if self.hostname != socket.gethostname():
            return False  # another host: only the inactivity timeout can tell
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False  # exists, owned by someone else
        return False


def lock_path(entry: str) -> str:
    return entry + ".lock"


def tmp_path(entry: str, uid: str) -> str:
    return f"{entry}.{uid}.tmp"


def read_lock(lock: str) -> str | None:
    try:
        with open(lock, encoding="utf-8", errors="replace") as f:
            return f.read(4096)
    except FileNotFoundError:
        return None


def _try_lock(lock: str, contents: str) -> bool:
    """Creates ``lock`` holding ``contents`` atomically; False if it exists already."""
    staged = f"{lock}.tmp{uuid.uuid4().hex}"
    try:
        with open(staged, "x", encoding="utf-8") as f:
            f.write(contents)
        try:
            os.link(staged, lock)  # atomic, never replaces, and the contents are complete
        except FileExistsError:
            return False
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # A file system without hard links: create exclusively and write (readers that see
            # the file still empty treat it as held by an unknown owner).
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(contents)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)


@contextlib.contextmanager
def _serialized(root: str) -> Iterator[None]:
    """Serializes lock take-overs among the processes of this host (flock on the cache dir)."""
    if fcntl is None:
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def _take_over(entry: str, contents: str, *, remove_work_dir: bool) -> None:
    """Deletes the lock if it still holds ``contents`` (and the dead owner's work directory)."""
    lock = lock_path(entry)
    with _serialized(os.path.dirname(entry) or "."):
        if read_lock(lock) != contents:
            return  # released or taken over meanwhile
        os.unlink(lock)
    owner = LockOwner.parse(contents)
    if remove_work_dir and owner is not None:
        remove_tree(tmp_path(entry, owner.uid), ignore_errors=True)


def lock_timeout() -> float:
    value = os.environ.get("HUBCORE_LOCK_TIMEOUT_S")
    if not value:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        raise InvalidArgumentError(
            f"HUBCORE_LOCK_TIMEOUT_S must be a number of seconds, got {value!r}"
        ) from None
    if not seconds > 0:
        raise InvalidArgumentError(f"HUBCORE_LOCK_TIMEOUT_S must be positive, got {value!r}")
    return seconds


def _wait_for_lock(handle: str, entry: str, timeout: float) -> None:
    """Returns once the lock is gone: released by its owner, or taken over from a dead one or
    from one whose work directory has not changed for ``timeout`` seconds."""
    lock = lock_path(entry)
    poll = 0.02
    changed_at = time.monotonic()
    last_seen: tuple[str, int] | None = None
    logged = False
    while True:
        contents = read_lock(lock)
        if contents is None or is_present(entry):
            return
        owner = LockOwner.parse(contents)
        if owner is not None and owner.is_dead_local_process():
            _log.warning("hubcore: taking over %s: its process %d is gone", lock, owner.pid)
            _take_over(entry, contents, remove_work_dir=True)
            return
        if not logged:
            _log.info("hubcore: %s is being fetched by %s; waiting", handle, contents.strip())
            logged = True
        # Sampled on every poll, from the first one on: the timeout counts from the owner's last
        # progress (or from when this waiter arrived), never from a later sample.
        work = tmp_path(entry, owner.uid) if owner else None
        seen = (contents, tree_size(work) if work else 0)
        now = time.monotonic()
        if seen != last_seen:  # a new owner, or its download grew
            last_seen, changed_at = seen, now
        elif now - changed_at >= timeout:
            _log.warning("hubcore: taking over %s: no progress for %.0f s", lock, timeout)
            _take_over(entry, contents, remove_work_dir=False)
            return
        time.sleep(poll)
        poll = min(poll * 1.5, _MAX_POLL_S, timeout / 4)


def fill_entry(handle: str, entry: str, fill: Callable[[str], None]) -> None:
    """Makes ``entry`` a complete module directory, calling ``fill(work_dir)`` at most once.

    Across threads and processes sharing the cache, one caller holds the entry's lock and fills
    its own work directory; the others wait and then use the result. If ``fill`` raises, nothing
    is left but what was there before (the error propagates, and a waiter retries on its own).
    """
    if is_present(entry):
        return
    timeout = lock_timeout()
    lock = lock_path(entry)
    uid = uuid.uuid4().hex
    contents = f"{socket.gethostname()}.{os.getpid()}.{uid}"
    work = tmp_path(entry, uid)
    remove_stale_work_dirs(os.path.dirname(entry))
    try:
        while not _try_lock(lock, contents):
            _wait_for_lock(handle, entry, timeout)
            if is_present(entry):
                return
        if is_present(entry):  # completed between our check and our lock
            return
        if os.path.lexists(entry):  # an empty directory (or junk) where the entry belongs
            remove_tree(entry)
        os.mkdir(work, 0o700)
        fill(work)
        _write_descriptor(entry, handle)
        os.chmod(work, 0o755)
        try:
            os.rename(work, entry)
        except OSError as e:
            # Someone else's complete copy won (e.g. tensorflow_hub after stealing our lock).
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not is_present(entry):
                raise
    finally:
        remove_tree(work, ignore_errors=True)
        if read_lock(lock) == contents:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)


# ---- cleaning up --------------------------------------------------------------------------------


def remove_tree(path: str, *, ignore_errors: bool = False) -> None:
    """Removes a directory tree (or a file) without recursion, whatever its depth.

    Walks down one directory at a time through file descriptors (``openat``), so neither the
    Python stack nor PATH_MAX limits it, and never follows symbolic links.
    """
    try:
        _remove_tree(path)
    except OSError:
        if not ignore_errors:
            raise


def _remove_tree(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    fd = os.open(path, _DIR_FLAGS)
    names: list[str] = []  # the directories between ``path`` and ``fd``
    try:
        while True:
            child = None
            with os.scandir(fd) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        child = e.name
                        break
                    os.unlink(e.name, dir_fd=fd)
            if child is not None:
                next_fd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd, names = next_fd, [*names, child]
                continue
            if not names:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def tree_size(path: str) -> int:
    """Bytes of the regular files under ``path`` (0 if it is gone); iterative."""
    total = 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.is_file(follow_symlinks=False):
                        total += e.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


def remove_stale_work_dirs(root: str) -> None:
    """Removes work directories that no lock names and that nobody touched for an hour.

    Failures are ignored: a leftover must never stop the cache from being used.
    """
    now = time.time()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        parts = name.split(".")
        if len(parts) != 3 or parts[2] != "tmp" or len(parts[0]) != 40:
            continue
        path = os.path.join(root, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or now - st.st_mtime < STALE_TMP_SECONDS:
            continue
        owner = LockOwner.parse(read_lock(os.path.join(root, parts[0] + ".lock")) or "")
        if owner is not None and owner.uid == parts[1]:
            continue  # its download is still running (or will be taken over by the lock rules)
        remove_tree(path, ignore_errors=True)
