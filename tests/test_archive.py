"""Module archives (.tar, .tar.gz, .tgz): safe extraction into the cache, and loading from them."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import hubcore
from hubcore import archive, cli, resolver
from hubcore.cache import cache_root

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
MODULE = DATA / "text_table"  # has variables and an asset (vocabulary) file


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("HUBCORE_CACHE_DIR", str(root))
    for name in ("TFHUB_CACHE_DIR", "HUBCORE_ARCHIVE_MAX_BYTES", "HUBCORE_ARCHIVE_MAX_MEMBERS"):
        monkeypatch.delenv(name, raising=False)
    return root


def pack(path: Path, source: Path = MODULE, arcname: str = ".", extra=(), mode: str = "w:gz"):
    """Writes SOURCE as ARCNAME into a new archive, then the (TarInfo, data) pairs of EXTRA."""
    with tarfile.open(path, mode) as tar:
        tar.add(source, arcname=arcname)
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, type_: bytes = tarfile.REGTYPE, data: bytes | None = None, **attrs):
    info = tarfile.TarInfo(name)
    info.type = type_
    if data is not None:
        info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """relative path -> (inode, mtime_ns, mode) of everything under ROOT."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (
                st.st_ino,
                st.st_mtime_ns,
                st.st_mode,
            )
    return out


def outside_cache(root: Path, cache: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p != cache and cache not in p.parents)


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    z = np.load(DATA / "text_table.golden.npz")
    sentences = z["input.default.default"]
    return sentences, hubcore.Runner(MODULE)(sentences, as_dict=True)


# ---- good archives ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arcname", "suffix", "mode"),
    [(".", ".tar.gz", "w:gz"), ("text_table", ".tgz", "w:gz"), ("m", ".tar", "w")],
)
def test_archive_loads_and_runs_like_the_directory(
    tmp_path, cache, reference, arcname, suffix, mode
):
    path = pack(tmp_path / f"m{suffix}", arcname=arcname, mode=mode)
    spec = hubcore.load_module_spec(path)
    assert Path(spec.path).is_relative_to(cache)
    assert (Path(spec.path) / "tfhub_module.pb").is_file()
    want = hubcore.load_module_spec(MODULE)
    assert spec.get_tags() == want.get_tags()
    assert spec.get_signature_names() == want.get_signature_names()

    runner = hubcore.Runner(str(path))
    assert runner.path == str(path)  # pickles (and reloads) the archive, not the cache entry
    assert runner.__reduce__()[1][0] == str(path)
    sentences, expected = reference
    got = runner(sentences, as_dict=True)
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_show_command_reads_an_archive(tmp_path, capsys):
    path = pack(tmp_path / "m.tar.gz")
    assert cli.main(["show", "--json", str(path)]) == 0
    assert '"format_version": 3' in capsys.readouterr().out


def test_gzip_is_sniffed_without_a_tar_suffix(tmp_path):
    path = pack(tmp_path / "module.bin")
    resolved = resolver.resolve(path)
    assert (Path(resolved) / "tfhub_module.pb").is_file()


def test_second_load_reuses_the_cache(tmp_path, cache):
    path = pack(tmp_path / "m.tar.gz")
    first = resolver.resolve(path)
    before = tree(cache)
    time.sleep(0.01)
    assert resolver.resolve(str(path)) == first
    assert tree(cache) == before  # same inodes and mtimes: nothing extracted again


def test_changed_archive_is_extracted_again(tmp_path, cache):
    path = pack(tmp_path / "m.tar.gz")
    first = Path(resolver.resolve(path))
    pack(path, extra=[member("NOTES.txt", data=b"v2")])
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new mtime for sure
    second = Path(resolver.resolve(path))
    assert second != first
    assert (second / "NOTES.txt").read_bytes() == b"v2"
    assert not (first / "NOTES.txt").exists()
    assert hubcore.load_module_spec(path).path == str(second)


def test_concurrent_extraction_gives_one_entry(tmp_path, cache):
    path = pack(tmp_path / "m.tar.gz")
    barrier = threading.Barrier(4)
    results: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        barrier.wait()
        try:
            results.append(resolver.resolve(path))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1 and len(results) == 4
    entry = Path(results[0])
    # no leftover temp dir or lock
    assert sorted(os.listdir(cache)) == [entry.name, entry.name + ".descriptor.txt"]
    for source in MODULE.rglob("*"):
        if source.is_file():
            assert (entry / source.relative_to(MODULE)).read_bytes() == source.read_bytes()


def test_concurrent_extraction_across_processes(tmp_path, cache):
    """Four processes resolve one archive at once: one extracts, the others wait for it. Each
    extraction appends its pid to a shared file, and holds the lock a while so that the others
    meet it (their waiting is logged)."""
    path = pack(tmp_path / "m.tar.gz")
    extractions = tmp_path / "extractions.txt"
    start = time.time() + 1.0  # all four resolve at about the same moment
    code = (
        f"import logging, os, sys, time; sys.path.insert(0, {str(ROOT / 'python')!r})\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "from hubcore import resolver\n"
        "real = resolver.extract_archive\n"
        "def counted(*args, **kwargs):\n"
        f"    with open({str(extractions)!r}, 'a') as f:\n"
        "        f.write(f'{os.getpid()}\\n')\n"
        "    time.sleep(0.5)\n"
        "    return real(*args, **kwargs)\n"
        "resolver.extract_archive = counted\n"
        f"time.sleep(max(0.0, {start} - time.time()))\n"
        f"print(resolver.resolve({str(path)!r}))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in results]
    outs = [out.strip() for out, _ in results]
    assert len(set(outs)) == 1 and Path(outs[0]).is_relative_to(cache)
    assert len(extractions.read_text().split()) == 1, extractions.read_text()
    assert any("is being fetched by" in err for _, err in results)  # they did contend
    assert sorted(os.listdir(cache)) == [Path(outs[0]).name, Path(outs[0]).name + ".descriptor.txt"]
    assert (Path(outs[0]) / "tfhub_module.pb").read_bytes() == (
        MODULE / "tfhub_module.pb"
    ).read_bytes()


def test_stale_temp_dirs_are_removed(tmp_path, cache):
    cache.mkdir()
    old = cache / (("a" * 40) + ".old.tmp")
    fresh = cache / (("b" * 40) + ".fresh.tmp")
    old.mkdir()
    fresh.mkdir()
    past = time.time() - 7200
    os.utime(old, (past, past))
    resolver.resolve(pack(tmp_path / "m.tar.gz"))
    assert not old.exists()
    assert fresh.exists()  # may belong to a running extraction


def test_cache_root_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("HUBCORE_CACHE_DIR")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "tfhub"))
    assert cache_root() == str(tmp_path / "tfhub")
    monkeypatch.setenv("HUBCORE_CACHE_DIR", str(tmp_path / "hubcore"))
    assert cache_root() == str(tmp_path / "hubcore")
    monkeypatch.delenv("HUBCORE_CACHE_DIR")
    monkeypatch.delenv("TFHUB_CACHE_DIR")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    root = cache_root()
    assert root == str(tmp_path / "tmp" / "hubcore_modules")
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700  # private: entry names are predictable


def test_directories_and_other_paths_are_unchanged(tmp_path, cache):
    assert resolver.resolve(MODULE) == str(MODULE)
    assert resolver.resolve(str(tmp_path / "missing.tar.gz")) == str(tmp_path / "missing.tar.gz")
    with pytest.raises(hubcore.ModulePathNotFoundError):
        hubcore.load_module_spec(tmp_path / "missing.tar.gz")
    plain = tmp_path / "saved_model.pb"
    plain.write_bytes(b"not an archive")
    with pytest.raises(hubcore.NotAModuleError):
        hubcore.load_module_spec(plain)
    assert not cache.exists()  # nothing was extracted


def test_archive_without_a_module(tmp_path):
    path = pack(tmp_path / "m.tar.gz", source=MODULE / "variables")
    with pytest.raises(hubcore.NotAModuleError, match=r"m\.tar\.gz.*tfhub_module\.pb"):
        hubcore.load_module_spec(path)


def test_modes_are_sanitized_not_rejected(tmp_path):
    path = pack(
        tmp_path / "m.tar.gz",
        extra=[
            member("bin", tarfile.DIRTYPE, mode=0o7777),
            member("bin/tool", data=b"#!/bin/sh\n", mode=0o6755, uid=0, gid=0),
        ],
    )
    root = Path(resolver.resolve(path))
    assert stat.S_IMODE((root / "bin").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "bin" / "tool").stat().st_mode) == 0o644
    assert stat.S_IMODE((root / "tfhub_module.pb").stat().st_mode) == 0o644


# ---- hostile and broken archives -----------------------------------------------------------------


HOSTILE = {
    "traversal": (member("../escaped", data=b"x"), "'..'"),
    "nested_traversal": (member("assets/../../escaped", data=b"x"), "'..'"),
    "absolute": (member("/tmp/hubcore_archive_test_escaped", data=b"x"), "absolute"),
    "symlink": (member("assets/etc", tarfile.SYMTYPE, linkname="/etc"), "symbolic link"),
    "hardlink": (member("copy", tarfile.LNKTYPE, linkname="tfhub_module.pb"), "hard link"),
    "char_device": (member("null", tarfile.CHRTYPE, devmajor=1, devminor=3), "device"),
    "block_device": (member("sda", tarfile.BLKTYPE, devmajor=8, devminor=0), "device"),
    "fifo": (member("pipe", tarfile.FIFOTYPE), "fifo"),
    "nul": (member("ok", data=b"x", pax_headers={"path": "a\0b"}), "NUL"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_rejected(tmp_path, cache, case):
    (info, data), reason = HOSTILE[case]
    src = tmp_path / "src"
    src.mkdir()
    path = pack(src / "m.tar.gz", extra=[(info, data)], mode="w:gz")
    outside = outside_cache(tmp_path, cache)
    with pytest.raises(hubcore.UnsafeArchiveError, match=reason) as e:
        hubcore.load_module_spec(path)
    assert "m.tar.gz" in str(e.value)
    assert isinstance(e.value, hubcore.InvalidModuleError)
    assert os.listdir(cache) == []  # neither an entry nor a temp dir is left
    assert outside_cache(tmp_path, cache) == outside
    assert not Path("/tmp/hubcore_archive_test_escaped").exists()


def test_member_count_limit(tmp_path, cache, monkeypatch):
    path = pack(tmp_path / "m.tar.gz")
    monkeypatch.setenv("HUBCORE_ARCHIVE_MAX_MEMBERS", "3")
    with pytest.raises(hubcore.UnsafeArchiveError, match="more than 3 members"):
        resolver.resolve(path)
    assert os.listdir(cache) == []
    monkeypatch.delenv("HUBCORE_ARCHIVE_MAX_MEMBERS")
    assert resolver.resolve(path)


def test_byte_limit(tmp_path, cache, monkeypatch):
    path = pack(tmp_path / "m.tar.gz", extra=[member("blob", data=b"\0" * 20000)])
    limit = sum(p.stat().st_size for p in MODULE.rglob("*") if p.is_file()) + 10000
    monkeypatch.setenv("HUBCORE_ARCHIVE_MAX_BYTES", str(limit))
    with pytest.raises(hubcore.UnsafeArchiveError, match=f"'blob'.*exceed {limit} bytes"):
        resolver.resolve(path)
    assert os.listdir(cache) == []
    monkeypatch.setenv("HUBCORE_ARCHIVE_MAX_BYTES", str(limit + 10000))
    assert (Path(resolver.resolve(path)) / "blob").stat().st_size == 20000


def test_bytes_are_counted_while_copying(tmp_path):
    """The copy loop stops at the limit even if a member yields more data than its header said."""
    info = tarfile.TarInfo("blob")
    info.size = 10
    with pytest.raises(hubcore.UnsafeArchiveError, match="'blob'"):
        archive._write_file("a.tar", info, io.BytesIO(b"x" * 5000), str(tmp_path), "blob", 0, 100)
    assert (tmp_path / "blob").stat().st_size <= 100


def test_lying_size_header_writes_nothing(tmp_path, cache, monkeypatch):
    """A header claiming 1 GB over 1 KiB of data is refused before anything is written."""
    monkeypatch.setenv("HUBCORE_ARCHIVE_MAX_BYTES", str(1 << 20))
    info = tarfile.TarInfo("huge")
    info.size = 1 << 30
    path = tmp_path / "lie.tar"
    path.write_bytes(info.tobuf() + b"x" * 1024)
    with pytest.raises(hubcore.UnsafeArchiveError, match="'huge'"):
        resolver.resolve(path)
    assert os.listdir(cache) == []


def test_oversized_extended_header_is_refused(tmp_path, cache):
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = 1 << 30  # tarfile would read it into memory whole
    path = tmp_path / "pax.tar"
    path.write_bytes(info.tobuf() + b"x" * 1024)
    with pytest.raises(hubcore.UnsafeArchiveError, match="extended header"):
        resolver.resolve(path)


@pytest.mark.parametrize("keep", [0.5, -4])
def test_truncated_gzip_is_corrupt(tmp_path, cache, keep):
    good = pack(tmp_path / "good.tar.gz").read_bytes()
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(good[: int(len(good) * keep)] if keep > 0 else good[:keep])
    with pytest.raises(hubcore.CorruptModuleError, match=r"cut\.tar\.gz"):
        hubcore.load_module_spec(path)
    assert os.listdir(cache) == []


def test_garbage_with_tar_suffix_is_corrupt(tmp_path, cache):
    path = tmp_path / "junk.tgz"
    path.write_bytes(b"\x1f\x8b" + os.urandom(4096))
    with pytest.raises(hubcore.CorruptModuleError, match=r"junk\.tgz"):
        resolver.resolve(path)
    assert os.listdir(cache) == []
