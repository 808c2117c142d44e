"""Module handles: URLs served by a local HTTP server, the shared cache, locks, faults, offline.

The server runs on 127.0.0.1 in a thread and serves the fixture modules as gzipped tarballs.
The first path component picks its behaviour: ``/ok/NAME`` (the module, only when asked with
``tf-hub-format=compressed`` unless NAME ends in ``.tar.gz``), ``/slow``, ``/truncated``,
``/garbage``, ``/missing`` (404), ``/flaky`` (503 once, then the module), ``/busy`` (429 with
``Retry-After: 1`` once, then the module), ``/reset`` (the connection closed without an answer
once, then the module), ``/down`` (always 503), ``/stall`` (half a body, then silence),
``/redirect`` and ``/redirect-host`` (302 to ``/ok`` on 127.0.0.1 or on ``localhost``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import hubcore
from conftest import cli_command
from hubcore import archive, cache, cli, download, resolver

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
HUB015_PYTHON = os.environ.get("HUBCORE_TFHUB015_PYTHON", "/work/venvs/hub015/bin/python")


def tarball(source: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source, arcname=".")
    return buffer.getvalue()


class ModuleServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.chunk_delay = 0.05  # seconds between the last 10 chunks of a /slow body
        self.served: dict[str, int] = {}
        self._tarballs: dict[str, bytes] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, mode: str, name: str = "tiny") -> str:
        return f"{self.base}/{mode}/{name}"

    def count(self, mode: str, name: str = "tiny") -> int:
        return sum(1 for path, _, _ in self.requests if path == f"/{mode}/{name}")

    def tarball(self, name: str) -> bytes:
        fixture = name.removesuffix(".tar.gz")
        if fixture not in self._tarballs:
            self._tarballs[fixture] = tarball(DATA / fixture)
        return self._tarballs[fixture]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ModuleServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        self.server.requests.append((parts.path, parts.query, dict(self.headers)))
        mode, _, name = parts.path.strip("/").partition("/")
        compressed = ("tf-hub-format", "compressed") in urllib.parse.parse_qsl(parts.query)
        if mode in ("redirect", "redirect-host"):
            host = "localhost" if mode == "redirect-host" else "127.0.0.1"
            target = f"http://{host}:{self.server.server_address[1]}/ok/{name}?{parts.query}"
            return self._send(302, b"", {"Location": target})
        if mode == "missing":
            return self._send(404, b"no such module")
        if mode == "down" or (mode == "flaky" and self.server.served.get(self.path, 0) == 0):
            self.server.served[self.path] = self.server.served.get(self.path, 0) + 1
            return self._send(503, b"busy")
        if mode in ("busy", "reset") and self.server.served.get(self.path, 0) == 0:
            self.server.served[self.path] = 1
            if mode == "busy":
                return self._send(429, b"slow down", {"Retry-After": "1"})
            self.close_connection = True  # no status line at all
            return None
        if mode == "garbage":
            return self._send(200, b"<html><body>Sign in to continue</body></html>" * 20)
        if not compressed and not name.endswith(".tar.gz"):
            return self._send(400, b"expected ?tf-hub-format=compressed")
        body = self.server.tarball(name)
        if mode == "truncated":
            self._head(200, len(body))
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return None
        if mode == "stall":
            self._head(200, len(body))
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(5)  # far longer than the client's timeout; bounded so the thread ends
            self.close_connection = True
            return None
        if mode == "slow":  # most at once (files appear), then the rest in 10 delayed chunks
            self._head(200, len(body))
            half = len(body) * 9 // 10
            self.wfile.write(body[:half])
            step = (len(body) - half) // 10 + 1
            for start in range(half, len(body), step):
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
                time.sleep(self.server.chunk_delay)
            return None
        return self._send(200, body)

    def _head(self, status: int, length: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._head(status, len(body), headers)
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[ModuleServer]:
    srv = ModuleServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("HUBCORE_CACHE_DIR", str(root))
    monkeypatch.setenv("HUBCORE_DOWNLOAD_RETRIES", "0")
    monkeypatch.setenv("HUBCORE_HTTP_TIMEOUT_S", "10")
    for name in (
        "TFHUB_CACHE_DIR",
        "HUBCORE_OFFLINE",
        "HUBCORE_LOCK_TIMEOUT_S",
        "HUBCORE_HTTP_HEADERS_FILE",
        "TFHUB_DOWNLOAD_PROGRESS",
        "HUBCORE_ARCHIVE_MAX_DEPTH",
    ):
        monkeypatch.delenv(name, raising=False)
    return root


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def golden(name: str = "tiny") -> np.lib.npyio.NpzFile:
    return np.load(DATA / f"{name}.golden.npz")


def same_tree(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
        (a / f).read_bytes() == (b / f).read_bytes() for f in files
    )


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), env.get("PYTHONPATH", "")])
    return env


def resolve_in_threads(handle: str, count: int) -> list[str]:
    """Resolves ``handle`` from ``count`` threads released at once; returns their results."""
    barrier = threading.Barrier(count)
    results: list[str] = []

    def work() -> None:
        barrier.wait(timeout=10)
        results.append(hubcore.resolve(handle))

    threads = [threading.Thread(target=work) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == count
    return results


RESOLVE_CODE = (
    "import sys, time\n"
    "from hubcore.resolver import resolve\n"
    "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
    "print(resolve(sys.argv[1]))\n"
)


# ---- resolving URLs -----------------------------------------------------------------------------


def test_url_resolves_into_tensorflow_hubs_cache_layout(server, cache_dir):
    handle = server.url("ok")
    path = hubcore.resolve(handle)
    assert path == str(cache_dir / sha1(handle))
    assert same_tree(Path(path), DATA / "tiny")
    descriptor = (cache_dir / f"{sha1(handle)}.descriptor.txt").read_text()
    assert descriptor.startswith(f"Module: {handle}\nDownload Time: ")
    assert "Downloader Hostname: " in descriptor
    assert sorted(os.listdir(cache_dir)) == [sha1(handle), f"{sha1(handle)}.descriptor.txt"]
    (path_, query, _), *_ = server.requests
    assert (path_, query) == ("/ok/tiny", "tf-hub-format=compressed")

    assert hubcore.resolve(handle) == path  # the second resolve makes no request
    assert len(server.requests) == 1


def test_query_is_merged_and_archive_urls_are_fetched_as_they_are(server):
    assert download.request_url("https://h/m/1?a=b&c=") == (
        "https://h/m/1?a=b&c=&tf-hub-format=compressed"
    )
    assert download.request_url("https://h/m.tar.gz?sig=x") == "https://h/m.tar.gz?sig=x"
    hubcore.resolve(server.url("ok", "tiny.tar.gz"))
    assert server.requests[0][:2] == ("/ok/tiny.tar.gz", "")
    hubcore.resolve(server.url("ok") + "?version=2")
    assert server.requests[1][1] == "version=2&tf-hub-format=compressed"


def test_runner_module_load_and_show_take_a_url(server, capsys):
    handle = server.url("ok")
    z = golden()
    runner = hubcore.Runner(handle)
    assert runner.path == handle  # pickles the handle: a worker resolves it from its own cache
    np.testing.assert_allclose(runner(z["input.default.x"]), z["default.default"], rtol=1e-6)

    import tensorflow as tf

    with tf.Graph().as_default():
        module = hubcore.Module(handle)
        out = module(z["input.default.x"])
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            np.testing.assert_allclose(session.run(out), z["default.default"], rtol=1e-6)

    loaded = hubcore.load(handle)  # TF2 tf.Module over the same cache entry
    np.testing.assert_allclose(loaded(z["input.default.x"]), z["default.default"], rtol=1e-6)

    assert cli.main(["show", "--json", handle]) == 0
    assert json.loads(capsys.readouterr().out)["format_version"] == 3
    assert server.count("ok") == 1  # one download served all four


def test_beam_transform_takes_a_url(server):
    beam = pytest.importorskip("apache_beam")
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that

    import hubcore.beam

    z = golden()
    rows, want = list(z["input.default.x"]), z["default.default"]

    def check(outputs: list) -> None:
        got = sorted(outputs, key=lambda v: float(v.sum()))
        expected = sorted(want, key=lambda v: float(v.sum()))
        np.testing.assert_allclose(np.stack(got), np.stack(expected), rtol=1e-5)

    options = PipelineOptions(flags=[], runner="DirectRunner", direct_num_workers=1)
    with beam.Pipeline(options=options) as p:
        out = p | beam.Create(rows) | hubcore.beam.RunModule(server.url("ok"), batch_size=2)
        assert_that(out, check)
    assert server.count("ok") == 1


def test_run_command_takes_a_url(server, tmp_path, capsys):
    z = golden()
    src, out = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, x=z["input.default.x"])
    assert cli.main(["run", server.url("ok"), "-i", str(src), "-o", str(out)]) == 0
    np.testing.assert_allclose(np.load(out)["default"], z["default.default"], rtol=1e-6)


def test_show_command_in_a_subprocess_takes_a_url(server):
    out = subprocess.run(
        [*cli_command(), "show", server.url("ok")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Graph variant tags={}" in out.stdout
    assert out.stderr == ""  # no TensorFlow start-up noise, no progress bar


def test_redirects_are_followed(server, cache_dir):
    handle = server.url("redirect")
    assert same_tree(Path(hubcore.resolve(handle)), DATA / "tiny")
    assert [p for p, _, _ in server.requests] == ["/redirect/tiny", "/ok/tiny"]
    assert os.path.isdir(cache_dir / sha1(handle))  # cached under the handle, not the target


def test_four_processes_one_download(server, cache_dir):
    server.chunk_delay = 0.1  # about a second per download: the four overlap
    handle = server.url("slow")
    start = time.time() + 1.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RESOLVE_CODE, handle, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in results]
    assert {out.strip() for out, _ in results} == {str(cache_dir / sha1(handle))}
    assert server.count("slow") == 1
    assert sorted(os.listdir(cache_dir)) == [sha1(handle), f"{sha1(handle)}.descriptor.txt"]


def test_threads_share_one_download(server):
    server.chunk_delay = 0.02
    handle = server.url("slow")
    assert len(set(resolve_in_threads(handle, 4))) == 1
    assert server.count("slow") == 1


def test_dead_process_lock_is_taken_over_in_seconds(server, cache_dir):
    server.chunk_delay = 2.0  # the victim stays mid-download for 20 s unless killed
    handle = server.url("slow")
    entry = cache_dir / sha1(handle)
    victim = subprocess.Popen(
        [sys.executable, "-c", RESOLVE_CODE, handle, "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=subprocess_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while not (
            Path(f"{entry}.lock").exists() and list(cache_dir.glob("*.tmp/*"))
        ):  # lock taken, temp dir filling
            assert time.monotonic() < deadline and victim.poll() is None
            time.sleep(0.05)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    owner = Path(f"{entry}.lock").read_text()
    _host, pid, uid = owner.rsplit(".", 2)
    assert int(pid) == victim.pid and (cache_dir / f"{sha1(handle)}.{uid}.tmp").is_dir()

    server.chunk_delay = 0.0
    started = time.monotonic()
    assert hubcore.resolve(handle) == str(entry)
    assert time.monotonic() - started < 5
    assert sorted(os.listdir(cache_dir)) == [sha1(handle), f"{sha1(handle)}.descriptor.txt"]


def test_lock_of_another_host_is_taken_over_after_the_timeout(server, cache_dir, monkeypatch):
    handle = server.url("ok")
    entry = cache_dir / sha1(handle)
    cache_dir.mkdir()
    Path(f"{entry}.lock").write_text("elsewhere.example.com.4242.0123abcd")
    (cache_dir / f"{sha1(handle)}.0123abcd.tmp").mkdir()  # its download made no progress
    monkeypatch.setenv("HUBCORE_LOCK_TIMEOUT_S", "0.3")
    started = time.monotonic()
    assert hubcore.resolve(handle) == str(entry)
    assert time.monotonic() - started < 5
    assert not Path(f"{entry}.lock").exists()


def test_lock_timeout_counts_from_the_last_growth(server, cache_dir, monkeypatch):
    """A partial download that stopped is taken over one timeout after the waiter first sees it
    (not two); one that keeps growing is left alone while it grows."""
    cache_dir.mkdir()

    def foreign_lock(handle: str) -> Path:
        Path(f"{cache_dir / sha1(handle)}.lock").write_text("elsewhere.example.com.4242.0123abcd")
        work = cache_dir / f"{sha1(handle)}.0123abcd.tmp"
        work.mkdir()
        (work / "partial").write_bytes(b"x" * 1000)
        return work

    stalled = server.url("ok")
    foreign_lock(stalled)
    monkeypatch.setenv("HUBCORE_LOCK_TIMEOUT_S", "2")
    started = time.monotonic()
    assert hubcore.resolve(stalled) == str(cache_dir / sha1(stalled))
    assert time.monotonic() - started < 3.5

    growing = server.url("ok", "text_table")
    work = foreign_lock(growing)
    monkeypatch.setenv("HUBCORE_LOCK_TIMEOUT_S", "0.5")
    grow_until = time.monotonic() + 2.0

    def grow() -> None:
        with open(work / "partial", "ab") as f:
            while time.monotonic() < grow_until:
                f.write(b"x")
                f.flush()
                time.sleep(0.1)

    grower = threading.Thread(target=grow)
    grower.start()
    try:
        assert hubcore.resolve(growing) == str(cache_dir / sha1(growing))
        assert time.monotonic() >= grow_until  # not taken over while it grew
    finally:
        grower.join(timeout=10)


# ---- faults -------------------------------------------------------------------------------------


FAULTS = {
    "missing": (hubcore.HandleNotFoundError, 404, "HTTP 404"),
    "truncated": (hubcore.TruncatedDownloadError, 200, "ended after"),
    "garbage": (hubcore.NotAnArchiveError, 200, "not a module archive"),
    "down": (hubcore.DownloadError, 503, "HTTP 503"),
}


@pytest.mark.parametrize("mode", sorted(FAULTS))
def test_fault_raises_its_error_and_leaves_an_empty_cache(server, cache_dir, mode):
    error, status, message = FAULTS[mode]
    handle = server.url(mode)
    with pytest.raises(error, match=message) as e:
        hubcore.load_module_spec(handle)
    assert type(e.value) is error
    assert e.value.handle == handle and e.value.status == status
    assert handle in str(e.value) and str(status) in str(e.value)
    assert os.listdir(cache_dir) == []
    assert isinstance(e.value, hubcore.Error) and isinstance(e.value, OSError)


def test_not_found_is_also_a_missing_module_path(server):
    with pytest.raises(hubcore.ModulePathNotFoundError):
        hubcore.resolve(server.url("missing"))


def test_stalled_body_times_out(server, cache_dir, monkeypatch):
    monkeypatch.setenv("HUBCORE_HTTP_TIMEOUT_S", "0.3")
    started = time.monotonic()
    with pytest.raises(hubcore.DownloadError, match="timed out") as e:
        hubcore.resolve(server.url("stall"))
    assert time.monotonic() - started < 4  # the client gave up; it did not wait for the server
    assert e.value.status == 200 and type(e.value) is hubcore.DownloadError
    assert os.listdir(cache_dir) == []


def test_transient_failures_are_retried(server, cache_dir, monkeypatch):
    monkeypatch.setenv("HUBCORE_DOWNLOAD_RETRIES", "2")
    assert same_tree(Path(hubcore.resolve(server.url("flaky"))), DATA / "tiny")
    assert server.count("flaky") == 2  # 503, then the module

    with pytest.raises(hubcore.DownloadError, match="HTTP 503"):
        hubcore.resolve(server.url("down"))
    assert server.count("down") == 3  # the first try and two retries

    with pytest.raises(hubcore.TruncatedDownloadError):
        hubcore.resolve(server.url("truncated"))
    assert server.count("truncated") == 3
    assert sorted(os.listdir(cache_dir)) == sorted(
        [sha1(server.url("flaky")), f"{sha1(server.url('flaky'))}.descriptor.txt"]
    )

    with pytest.raises(hubcore.HandleNotFoundError):
        hubcore.resolve(server.url("missing"))
    assert server.count("missing") == 1  # a 404 is final


def test_rate_limits_and_dropped_connections_are_retried(server, monkeypatch):
    monkeypatch.setenv("HUBCORE_DOWNLOAD_RETRIES", "1")
    started = time.monotonic()
    assert same_tree(Path(hubcore.resolve(server.url("busy"))), DATA / "tiny")
    assert server.count("busy") == 2  # 429, then the module
    assert time.monotonic() - started >= 1.0  # after the Retry-After, not the 0.5 s backoff
    assert same_tree(Path(hubcore.resolve(server.url("reset"))), DATA / "tiny")
    assert server.count("reset") == 2


def test_unsafe_archive_from_a_url_is_refused(server, cache_dir, tmp_path):
    deep = tmp_path / "deep"
    shutil.copytree(DATA / "tiny", deep)
    (deep / "/".join(["d"] * 70)).mkdir(parents=True)
    server._tarballs["deep"] = tarball(deep)
    with pytest.raises(hubcore.UnsafeArchiveError, match="levels deep"):
        hubcore.resolve(server.url("ok", "deep"))
    assert os.listdir(cache_dir) == []


# ---- offline, headers, progress -----------------------------------------------------------------


def test_offline_mode(server, cache_dir, monkeypatch):
    cached = server.url("ok")
    hubcore.resolve(cached)
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    requests = len(server.requests)
    assert hubcore.resolve(cached) == str(cache_dir / sha1(cached))
    other = server.url("ok", "text_table")
    with pytest.raises(hubcore.OfflineError) as e:
        hubcore.resolve(other)
    assert other in str(e.value) and str(cache_dir) in str(e.value)
    assert len(server.requests) == requests
    assert hubcore.resolve(DATA / "tiny") == str(DATA / "tiny")  # local paths still work


def test_headers_from_file_and_hook_stay_on_their_host(server, tmp_path, monkeypatch):
    headers = tmp_path / "headers"
    headers.write_text("# a private mirror\nAuthorization: Bearer s3cret\n\nX-Team: ml\n")
    monkeypatch.setenv("HUBCORE_HTTP_HEADERS_FILE", str(headers))
    seen_urls = []

    def hook(url: str) -> dict[str, str]:
        seen_urls.append(url)
        return {"X-Hook": "yes"}

    hubcore.set_http_headers_hook(hook)
    try:
        hubcore.resolve(server.url("redirect-host"))
    finally:
        hubcore.set_http_headers_hook(None)
    (_, _, first), (_, _, second) = server.requests
    assert first["Authorization"] == "Bearer s3cret" and first["X-Team"] == "ml"
    assert "Authorization" not in second and "X-Team" not in second  # another host
    assert first["X-Hook"] == second["X-Hook"] == "yes"  # the hook decides per URL
    assert [urllib.parse.urlsplit(u).hostname for u in seen_urls] == ["127.0.0.1", "localhost"]


def test_header_values_never_appear_in_errors(server, tmp_path, monkeypatch):
    headers = tmp_path / "headers"
    headers.write_text("Authorization: Bearer s3cret\n")
    monkeypatch.setenv("HUBCORE_HTTP_HEADERS_FILE", str(headers))
    with pytest.raises(hubcore.HandleNotFoundError) as e:
        hubcore.resolve(server.url("missing"))
    assert "s3cret" not in str(e.value)
    headers.write_text("Bearer s3cret\n")
    with pytest.raises(hubcore.InvalidArgumentError, match="line 1") as e:
        hubcore.resolve(server.url("ok"))
    assert "s3cret" not in str(e.value)


def test_progress_only_when_asked(server, monkeypatch, capfd):
    hubcore.resolve(server.url("ok"))
    assert capfd.readouterr().err == ""  # not a terminal: quiet
    monkeypatch.setenv("TFHUB_DOWNLOAD_PROGRESS", "1")
    hubcore.resolve(server.url("ok", "text_table"))
    err = capfd.readouterr().err
    assert f"Downloading {server.url('ok', 'text_table')}" in err and "B/s" in err


# ---- local handles ------------------------------------------------------------------------------


def test_file_url_and_local_archive(tmp_path, cache_dir):
    assert hubcore.resolve((DATA / "tiny").as_uri()) == str(DATA / "tiny")
    path = tmp_path / "tiny.tar.gz"
    path.write_bytes(tarball(DATA / "tiny"))
    entry = hubcore.resolve(path)
    assert Path(entry).parent == cache_dir and same_tree(Path(entry), DATA / "tiny")
    assert hubcore.resolve(path.as_uri()) == entry
    assert cache.read_descriptor(entry)["Module"] == str(path)
    z = golden()
    np.testing.assert_allclose(
        hubcore.Runner(path.as_uri())(z["input.default.x"]), z["default.default"], rtol=1e-6
    )


def test_gfile_scheme_directory_and_archive(cache_dir):
    tf = pytest.importorskip("tensorflow")
    base = f"ram://hubcore-test-{os.getpid()}"
    for source in (DATA / "tiny").rglob("*"):
        target = f"{base}/tiny/{source.relative_to(DATA / 'tiny')}"
        if source.is_dir():
            tf.io.gfile.makedirs(target)
        else:
            tf.io.gfile.makedirs(os.path.dirname(target))
            with tf.io.gfile.GFile(target, "wb") as f:
                f.write(source.read_bytes())
    # (another directory: the ram file system lists "tiny.tar.gz" inside "tiny" as ".tar.gz")
    with tf.io.gfile.GFile(f"{base}-archives/tiny.tar.gz", "wb") as f:
        f.write(tarball(DATA / "tiny"))
    for handle in (f"{base}/tiny", f"{base}-archives/tiny.tar.gz"):
        path = hubcore.resolve(handle)
        assert path == str(cache_dir / sha1(handle)) and same_tree(Path(path), DATA / "tiny")
    with pytest.raises(hubcore.ModulePathNotFoundError):
        hubcore.resolve(f"{base}/missing")


# ---- archive extraction: depth, cleanup, once ---------------------------------------------------


def deep_tar(path: Path, depth: int) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(DATA / "tiny", arcname=".")
        info = tarfile.TarInfo("/".join(["d"] * depth) + "/leaf")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    return path


def test_deep_members_are_refused_and_leave_nothing(tmp_path, cache_dir, monkeypatch):
    path = deep_tar(tmp_path / "deep.tar.gz", 100)
    with pytest.raises(hubcore.UnsafeArchiveError, match="101 levels deep, more than 64"):
        hubcore.resolve(path)
    assert os.listdir(cache_dir) == []
    monkeypatch.setenv("HUBCORE_ARCHIVE_MAX_DEPTH", "101")
    assert (Path(hubcore.resolve(path)) / "tfhub_module.pb").is_file()


def test_a_stale_deep_temp_dir_does_not_poison_the_cache(tmp_path, cache_dir):
    """A tree deeper than the recursion limit (shutil.rmtree fails on it) is removed."""
    cache_dir.mkdir()
    stale = cache_dir / f"{'a' * 40}.{'0' * 32}.tmp"
    stale.mkdir()
    fd = os.open(stale, os.O_RDONLY)
    for _ in range(300):
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(fd)
    past = time.time() - 2 * cache.STALE_TMP_SECONDS
    os.utime(stale, (past, past))
    path = tmp_path / "tiny.tar.gz"
    path.write_bytes(tarball(DATA / "tiny"))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # shallower than the tree: a recursive removal would fail
    try:
        assert (Path(hubcore.resolve(path)) / "tfhub_module.pb").is_file()
    finally:
        sys.setrecursionlimit(limit)
    assert not stale.exists()


def test_concurrent_extraction_happens_once(tmp_path, cache_dir, monkeypatch):
    path = tmp_path / "tiny.tar.gz"
    path.write_bytes(tarball(DATA / "tiny"))
    calls = []
    real = resolver.extract_archive

    def counted(*args, **kwargs):
        calls.append(args[0])
        time.sleep(0.2)  # keep the lock long enough for everyone to meet it
        return real(*args, **kwargs)

    monkeypatch.setattr(resolver, "extract_archive", counted)
    assert len(set(resolve_in_threads(str(path), 4))) == 1
    assert calls == [str(path)]


# ---- hubcore cache ------------------------------------------------------------------------------


def test_cache_command(server, cache_dir, tmp_path, capsys):
    handle = server.url("ok")
    entry = hubcore.resolve(handle)
    broken = hubcore.resolve(server.url("ok", "text_table"))
    (Path(broken) / "saved_model.pb").write_bytes(b"junk")
    saved_model = tmp_path / "saved_model"  # a SavedModel without tfhub_module.pb (TF2-style)
    shutil.copytree(DATA / "tiny", saved_model, ignore=shutil.ignore_patterns("tfhub_module.pb"))
    server._tarballs["saved_model"] = tarball(saved_model)
    hubcore.resolve(server.url("ok", "saved_model"))

    assert cli.main(["cache", "list", "--json"]) == 0
    rows = {row["handle"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {handle, server.url("ok", "text_table"), server.url("ok", "saved_model")}
    assert rows[handle]["entry"] == entry
    assert rows[handle]["bytes"] == sum(
        p.stat().st_size for p in (DATA / "tiny").rglob("*") if p.is_file()
    )
    assert rows[handle]["downloaded"]

    assert cli.main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert "ok      " in out and "BROKEN" in out and "saved_model.pb" in out
    assert "other " in out and "TF2 SavedModel" in out  # tensorflow_hub's, not broken
    assert cli.main(["cache", "verify", handle]) == 0
    capsys.readouterr()

    assert cli.main(["cache", "remove", server.url("ok", "text_table")]) == 0
    assert not os.path.exists(broken) and not os.path.exists(broken + ".descriptor.txt")
    assert cli.main(["cache", "remove", server.url("ok", "text_table")]) == 1
    assert "not in the module cache" in capsys.readouterr().err

    assert cli.main(["cache", "clean"]) == 0
    assert os.listdir(cache_dir) == []


def test_cache_command_on_bad_input(cache_dir, tmp_path, monkeypatch, capsys):
    """A gone archive path and a cache path that is a file: one-line errors naming them."""
    gone = tmp_path / "gone.tar.gz"
    assert cli.main(["cache", "remove", str(gone)]) == 1
    assert f"{gone}: no such file" in capsys.readouterr().err
    not_a_dir = tmp_path / "cache-file"
    not_a_dir.write_text("mine")
    monkeypatch.setenv("HUBCORE_CACHE_DIR", str(not_a_dir))
    for action in ("list", "verify", "clean"):
        assert cli.main(["cache", action]) == 1
        err = capsys.readouterr().err
        assert f"{not_a_dir}: " in err and "Traceback" not in err
    assert not_a_dir.read_text() == "mine"


# ---- interoperability with tensorflow_hub 0.15's cache ------------------------------------------


HUB_RESOLVE = (
    "import sys\n"
    "from tensorflow_hub import compressed_module_resolver as c\n"
    "for handle in sys.argv[1:]:\n"
    "    print(c.HttpCompressedFileResolver()(handle))\n"
)


@pytest.mark.skipif(not os.path.exists(HUB015_PYTHON), reason="no tensorflow_hub 0.15 venv")
def test_cache_is_shared_with_tensorflow_hub_both_ways(server, cache_dir):
    """hubcore fetches B; tensorflow_hub 0.15 then resolves B (from the cache) and fetches A;
    hubcore then resolves A from the cache. The server sees exactly one request per handle."""
    a, b = server.url("ok"), server.url("ok", "text_table")
    hubcore.resolve(b)
    env = dict(os.environ, TFHUB_CACHE_DIR=str(cache_dir), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("HUBCORE_CACHE_DIR")
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [HUB015_PYTHON, "-c", HUB_RESOLVE, b, a],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    if out.returncode != 0 and "No module named" in out.stderr:
        pytest.skip(f"tensorflow_hub is not importable in {HUB015_PYTHON}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(cache_dir / sha1(b)), str(cache_dir / sha1(a))]
    assert [p for p, _, _ in server.requests] == ["/ok/text_table", "/ok/tiny"]
    assert (cache_dir / f"{sha1(a)}.descriptor.txt").read_text().startswith(f"Module: {a}\n")

    assert hubcore.resolve(a) == str(cache_dir / sha1(a))
    assert len(server.requests) == 2  # tensorflow_hub's download served hubcore
    assert same_tree(cache_dir / sha1(a), DATA / "tiny")


def test_unusable_cache_is_a_hubcore_error(server, tmp_path, monkeypatch):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setenv("HUBCORE_CACHE_DIR", str(not_a_dir))
    with pytest.raises(hubcore.FailedPreconditionError, match=str(not_a_dir)):
        hubcore.resolve(server.url("ok"))
    assert not server.requests


def test_handle_normalization_and_schemes(tmp_path):
    assert resolver.url_scheme("HTTPS://x/y") == "https"
    assert resolver.url_scheme("/a/b") is None and resolver.url_scheme("C:\\x") is None
    assert resolver.normalize_handle("gs://b/m") == "gs://b/m"
    assert resolver.normalize_handle("rel") == os.path.abspath("rel")
    with pytest.raises(hubcore.ModulePathNotFoundError):
        hubcore.Runner("")  # not the current directory: the same error as load_module_spec("")
    assert archive.DEFAULT_MAX_DEPTH == 64


# ---- docs/handles.md ----------------------------------------------------------------------------


def doc_snippets() -> list[str]:
    text = (ROOT / "docs" / "handles.md").read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_doc_snippets_run(tmp_path, capsys):
    from hubcore import examples

    example = examples.write_example("text-embedding", tmp_path / "hubcore-example")
    serve, hook = doc_snippets()
    exec(compile(serve.replace("/tmp/hubcore-example", str(example)), "handles.md", "exec"), {})
    resolved, shape = capsys.readouterr().out.split("\n")[:2]
    assert Path(resolved).parent == Path(os.environ["HUBCORE_CACHE_DIR"]) and shape == "(1, 16)"
    exec(compile(hook, "handles.md", "exec"), {})
    assert download._headers_hook is None
