"""``hubcore cache list|verify|remove HANDLE|clean``: look at and manage the module cache.

The cache is shared with tensorflow_hub (see :mod:`hubcore.cache`), so these commands show and
manage what either library downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from typing import Any

from hubcore import cache
from hubcore.errors import Error, FailedPreconditionError, InvalidArgumentError, NotAModuleError
from hubcore.resolver import cached_entry, module_dir

__all__ = ["add_parser", "run"]

_KEY = re.compile(r"^[0-9a-f]{40}$")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "cache", help="list, verify and remove cached modules (shared with tensorflow_hub)"
    )
    actions = p.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="list, verify, remove or clean"
    )
    listing = actions.add_parser("list", help="handle, size and download time of each entry")
    listing.add_argument("--json", action="store_true", help="print machine-readable JSON")
    verify = actions.add_parser("verify", help="load each entry (or HANDLE's) and report")
    verify.add_argument("handle", nargs="?", help="only this handle (or entry name)")
    verify.add_argument("--json", action="store_true", help="print machine-readable JSON")
    remove = actions.add_parser("remove", help="delete one handle's entry")
    remove.add_argument("handle", help="the handle (URL or archive path) or the entry name")
    actions.add_parser(
        "clean", help="delete every entry and what dead downloads left (running ones stay)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except OSError as e:  # the cache is not a directory, unreadable, ...
        raise FailedPreconditionError(
            f"{e.filename or 'the module cache'}: {e.strerror or e} (the module cache must be"
            " a directory this user can read and write)"
        ) from None


def _run(args: argparse.Namespace) -> int:
    root = cache.cache_root()
    if args.action == "list":
        rows = [_describe(root, key, check=False) for key in _keys(root)]
        _print(rows, args.json, root)
        return 0
    if args.action == "verify":
        keys = [_key_of(args.handle)] if args.handle else _keys(root)
        rows = [_describe(root, key, check=True) for key in keys]
        _print(rows, args.json, root)
        return 1 if any(row["loads"] is False for row in rows) else 0
    if args.action == "remove":
        entry = os.path.join(root, _key_of(args.handle))
        if not os.path.lexists(entry):
            raise InvalidArgumentError(f"{args.handle}: not in the module cache {root}")
        _remove_entry(entry)
        print(f"removed {entry}")
        return 0
    removed = _clean(root)
    print(f"removed {removed} entries and leftovers from {root}")
    return 0


def _keys(root: str) -> list[str]:
    return sorted(
        name
        for name in os.listdir(root)
        if _KEY.match(name) and os.path.isdir(os.path.join(root, name))
    )


def _key_of(handle: str) -> str:
    if _KEY.match(handle):
        return handle
    try:
        return os.path.basename(cached_entry(handle))
    except FileNotFoundError:  # an archive's entry is keyed by the file, which is gone
        raise InvalidArgumentError(
            f"{handle}: no such file; name its entry instead (see hubcore cache list)"
        ) from None


def _describe(root: str, key: str, *, check: bool) -> dict[str, Any]:
    entry = os.path.join(root, key)
    fields = cache.read_descriptor(entry)
    row: dict[str, Any] = {
        "entry": entry,
        "handle": fields.get("Module"),
        "bytes": cache.tree_size(entry),
        "downloaded": fields.get("Download Time"),
    }
    if check:
        row["loads"], row["error"] = _loads(row["handle"] or key, entry)
    return row


def _loads(handle: str, entry: str) -> tuple[bool | None, str | None]:
    """(True, None) if the entry loads as a TF1 Hub module, (False, why) if it is broken, and
    (None, what) for a TF2 SavedModel that tensorflow_hub downloaded into the shared cache."""
    from hubcore import _core  # only for verify

    if not os.path.isdir(entry):
        return False, "not in the cache"
    try:
        _core.ModuleSpec.load(module_dir(handle, entry))
    except NotAModuleError as e:
        if os.path.isfile(os.path.join(entry, "saved_model.pb")):
            return None, "a TF2 SavedModel (tensorflow_hub's hub.load), not a TF1 Hub module"
        return False, str(e)
    except Error as e:
        return False, str(e)
    return True, None


def _print(rows: list[dict[str, Any]], as_json: bool, root: str) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print(f"{root}: no cached modules")
        return
    for row in rows:
        status = ""
        if "loads" in row:
            status = {True: "ok    ", False: "BROKEN", None: "other "}[row["loads"]]
        print(
            f"{status}{' ' if status else ''}{_size(row['bytes']):>9}  "
            f"{(row['downloaded'] or '?')[:19]:19}  {row['handle'] or '?'}  ({row['entry']})"
        )
        if row.get("error"):
            print(f"       {row['error']}")


def _size(n: int) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    value, i = float(n), 0
    while value >= 1024 and i < len(units) - 1:
        value, i = value / 1024, i + 1
    return f"{n} B" if i == 0 else f"{value:.1f} {units[i]}"


def _remove_entry(entry: str) -> None:
    cache.remove_tree(entry)
    descriptor = cache.descriptor_path(entry)
    if os.path.lexists(descriptor):
        os.unlink(descriptor)


def _clean(root: str) -> int:
    removed = 0
    for key in _keys(root):
        _remove_entry(os.path.join(root, key))
        removed += 1
    for name in os.listdir(root):
        path = os.path.join(root, name)
        key = name.split(".")[0]
        if not _KEY.match(key) or name == key:
            continue
        lock = os.path.join(root, key + ".lock")
        owner = cache.LockOwner.parse(cache.read_lock(lock) or "")
        if owner is not None and not owner.is_dead_local_process():
            continue  # a download in progress (here or on another host): leave its files
        if name.endswith(".descriptor.txt") or name.endswith(".lock") or name.endswith(".tmp"):
            cache.remove_tree(path, ignore_errors=True)
    return removed
